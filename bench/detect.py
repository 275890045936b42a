"""Detector figures, printed (never asserted):

1. parameters and forward FLOPs per clip of every model kind in both configs;
2. forward time of our Swin encoder against torchvision's swin3d_t on the same input, in the
   same run (ratio ours / torchvision; target <= 1.0x);
3. tiny config training and inference clips/s on this machine's CPU;
4. with --device cuda: the paper config's training clips/s with bf16 autocast at each
   --gpu-batch, and the fraction of the GPU's bf16 peak that reaches, beside the rate a large bf16
   matrix product reaches on it in the same run;

Accuracy is bench/accuracy.py's.

    python bench/detect.py                      # 1-3 on the CPU
    python bench/detect.py --device cuda        # 1-4 on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ipad_detect.config import get_config
from ipad_detect.models import MODEL_KINDS, build_model, count_flops, count_parameters
from ipad_detect.models.swin3d import SwinEncoder3d

# Dense bf16 tensor-core peak in TFLOP/s, from the vendors' datasheets (SXM parts).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                   "RTX 4090": 165.0, "V100": 125.0}


def timed(fn, repeats: int, sync=lambda: None) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sizes_and_flops() -> None:
    print("== parameters and forward FLOPs per clip (torch's counter: multiply-add = 2 FLOPs)")
    print(f"{'config':<7}{'model':<8}{'input':>18}{'params (M)':>12}{'GFLOPs':>10}")
    for name in ("tiny", "paper"):
        cfg = get_config(name)
        for kind in MODEL_KINDS:
            with torch.device("meta"):  # shapes only: no memory, no compute
                model = build_model(kind, cfg)
                clips = torch.zeros(1, 3, cfg.clip_len, cfg.image_size, cfg.image_size)
            flops = count_flops(model, clips)
            shape = f"{cfg.clip_len}x{cfg.image_size}x{cfg.image_size}"
            print(f"{name:<7}{kind:<8}{shape:>18}{count_parameters(model) / 1e6:>12.2f}{flops / 1e9:>10.2f}")


def torchvision_encoder(x: torch.Tensor, model) -> torch.Tensor:
    """torchvision swin3d_t up to (not including) its pooling and head, like our encoder."""
    return model.norm(model.features(model.pos_drop(model.patch_embed(x))))


@torch.no_grad()
def encoder_speed(device: torch.device, size: int, batch: int, repeats: int) -> None:
    from torchvision.models.video import swin3d_t

    cfg = get_config("paper")
    ours = SwinEncoder3d.from_config(cfg).to(device).eval()
    theirs = swin3d_t(weights=None).to(device).eval()
    x = torch.randn(batch, 3, cfg.clip_len, size, size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    assert torchvision_encoder(x, theirs).shape == ours(x).shape
    t_ours = timed(lambda: ours(x), repeats, sync)
    t_theirs = timed(lambda: torchvision_encoder(x, theirs), repeats, sync)
    print(f"== encoder forward, paper sizes, input {batch}x3x{cfg.clip_len}x{size}x{size} on {device}, "
          f"median of {repeats}")
    print(f"ours {t_ours * 1e3:.1f} ms, torchvision swin3d_t {t_theirs * 1e3:.1f} ms, "
          f"ratio {t_ours / t_theirs:.2f}x (target <= 1.0x)")


def training_speed(config_name: str, device: torch.device, batch: int, steps: int, bf16: bool) -> tuple[float, float]:
    """Training and inference clips/s of the full model on random clips."""
    torch.manual_seed(0)
    cfg = get_config(config_name)
    model = build_model("full", cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    clips = torch.rand(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    target = torch.randint(0, cfg.phase_bins, (batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast():
            out = model(clips)
        loss = model.loss(out, clips, target)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer():
        with autocast():
            model(clips)

    model.train()
    train_s = timed(step, steps, sync)
    model.eval()
    infer_s = timed(infer, steps, sync)
    return batch / train_s, batch / infer_s


def cpu_speed(batch: int, steps: int) -> None:
    train_rate, infer_rate = training_speed("tiny", torch.device("cpu"), batch, steps, bf16=False)
    print(f"== tiny config, full model, CPU ({torch.get_num_threads()} threads), batch {batch}, median of {steps}")
    print(f"training {train_rate:.2f} clips/s, inference {infer_rate:.2f} clips/s")


def matmul_ceiling(device: torch.device, size: int = 8192, repeats: int = 10) -> float:
    """TFLOP/s of a large bf16 matrix product on this GPU: the ceiling this machine really reaches."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    seconds = timed(lambda: a @ b, repeats, torch.cuda.synchronize)
    return 2 * size**3 / seconds / 1e12


def gpu_speed(batches: list[int], steps: int, peak_tflops: float | None) -> None:
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    cfg = get_config("paper")
    with torch.device("meta"):
        flops = count_flops(build_model("full", cfg), torch.zeros(1, 3, cfg.clip_len, cfg.image_size, cfg.image_size))
    if peak_tflops is None:
        peak_tflops = next((v for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)
    ceiling = matmul_ceiling(device)
    print(f"== paper config, full model, {name}, bf16 autocast, median of {steps} steps, torch {torch.__version__}")
    print(f"bf16 8192^3 matrix product on this GPU: {ceiling:.0f} TFLOP/s"
          + (f" ({ceiling / peak_tflops:.0%} of the {peak_tflops:.0f} TFLOP/s datasheet peak)" if peak_tflops else ""))
    for batch in batches:
        torch.cuda.reset_peak_memory_stats(device)
        train_rate, infer_rate = training_speed("paper", device, batch, steps, bf16=True)
        achieved = 3 * flops * train_rate / 1e12  # forward + backward ~ 3x forward
        peak_text = f"{achieved / peak_tflops:.1%} of the datasheet peak, " if peak_tflops else ""
        print(f"batch {batch}: training {train_rate:.1f} clips/s ({achieved:.1f} TFLOP/s: {peak_text}"
              f"{achieved / ceiling:.1%} of the measured matrix-product rate), inference {infer_rate:.1f} clips/s, "
              f"peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    if not peak_tflops:
        print("bf16 datasheet peak of this GPU unknown; pass --peak-tflops for that fraction")


# ----------------------------------------------------------------------------- accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--encoder-size", type=int, default=224, help="frame size of the encoder timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-batch", type=int, nargs="+", default=[8, 32], help="training batch sizes on the GPU")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak of the GPU, if not in the table")
    args = parser.parse_args()
    if min(args.gpu_batch) < 1:
        parser.error(f"--gpu-batch {' '.join(map(str, args.gpu_batch))} is not allowed; give positive batch sizes")

    torch.manual_seed(0)
    sizes_and_flops()
    on_gpu = args.device == "cuda"
    encoder_speed(torch.device(args.device), args.encoder_size, args.gpu_batch[0] if on_gpu else 1,
                  max(args.repeats, 10) if on_gpu else args.repeats)
    cpu_speed(batch=4, steps=max(args.repeats, 8))
    if on_gpu:
        gpu_speed(args.gpu_batch, max(args.repeats, 10), args.peak_tflops)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
