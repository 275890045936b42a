"""Detector figures, printed (never asserted):

1. parameters and forward FLOPs per clip of every model kind in both configs;
2. forward time of our Swin encoder against torchvision's swin3d_t on the same input, in the
   same run (ratio ours / torchvision; target <= 1.0x);
3. tiny config training and inference clips/s on this machine's CPU, and the training loader's
   clips/s beside them (uint8 clips from the memory-mapped frame cache, made float on the device);
4. with --device cuda: the paper config's training and inference clips/s with bf16 autocast,
   eager and compiled (`--compile`: torch.compile with FlexAttention), at each --gpu-batch and at
   the largest batch that fits, with the fraction of the GPU's bf16 datasheet peak and of the rate
   a large bf16 matrix product reaches on it in the same run, peak memory and compile time; and the
   loader's clips/s at the paper's 256 px, so the loader is never the limit;

Accuracy is bench/accuracy.py's.

    python bench/detect.py                      # 1-3 on the CPU
    python bench/detect.py --device cuda        # 1-4 on a GPU (bench/gpu.sh: the prepared GPU run)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ipad_detect.compiled import compile_model
from ipad_detect.config import get_config
from ipad_detect.data import ClipDataset, FrameCache, Uint8Clips, clips_to_float, load_scene
from ipad_detect.models import build_model, count_flops, count_parameters
from ipad_detect.models.swin3d import SwinEncoder3d
from ipad_detect.registry import model_kinds
from ipad_detect.train import training_loader

# Dense bf16 tensor-core peak in TFLOP/s, from the vendors' datasheets (SXM parts).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                   "RTX 4090": 165.0, "V100": 125.0}


def timed(fn, repeats: int, sync=lambda: None) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    return timed_with_first(fn, repeats, sync)[0]


def timed_with_first(fn, repeats: int, sync=lambda: None) -> tuple[float, float]:
    """(median seconds of `repeats` calls, seconds of the warm-up call before them: a compile's)."""
    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def sizes_and_flops() -> None:
    print("== parameters and forward FLOPs per clip (torch's counter: multiply-add = 2 FLOPs)")
    print(f"{'config':<7}{'model':<8}{'input':>18}{'params (M)':>12}{'GFLOPs':>10}")
    for name in ("tiny", "paper"):
        cfg = get_config(name)
        for kind in model_kinds(learned=True):
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


class Speed:
    """Training and inference clips/s of one model at one batch, what compiling took, peak memory."""

    def __init__(self, train: float, infer: float, compile_s: float, peak_gib: float):
        self.train, self.infer, self.compile_s, self.peak_gib = train, infer, compile_s, peak_gib


def training_speed(config_name: str, device: torch.device, batch: int, steps: int, bf16: bool,
                   model: torch.nn.Module | None = None) -> Speed:
    """Training and inference clips/s of the full model (or `model`, e.g. compiled) on random clips."""
    torch.manual_seed(0)
    cfg = get_config(config_name)
    model = model if model is not None else build_model("full", cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    clips = torch.rand(batch, 3, cfg.clip_len, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    torch._dynamo.maybe_mark_dynamic(clips, 0)  # a compiled model compiles once for every batch size
    target = torch.randint(0, cfg.phase_bins, (batch,), device=device)
    on_gpu = device.type == "cuda"
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

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

    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    train_s, train_first = timed_with_first(step, steps, sync)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if on_gpu else 0.0
    model.eval()
    infer_s, infer_first = timed_with_first(infer, steps, sync)
    return Speed(batch / train_s, batch / infer_s, train_first - train_s + infer_first - infer_s, peak)


def cpu_speed(batch: int, steps: int) -> None:
    speed = training_speed("tiny", torch.device("cpu"), batch, steps, bf16=False)
    print(f"== tiny config, full model, CPU ({torch.get_num_threads()} threads), batch {batch}, median of {steps}")
    print(f"training {speed.train:.2f} clips/s, inference {speed.infer:.2f} clips/s")
    print(f"training loader {loader_speed('tiny', torch.device('cpu'), batch):.0f} clips/s")


def loader_speed(config_name: str, device: torch.device, batch: int, frames: int = 240, videos: int = 2) -> float:
    """Clips/s of the training loader (`train.training_loader`) over a scene written here, its frames
    decoded once into the memory-mapped cache: an epoch's pass, workers' start included, the clips
    copied to `device` and made float there."""
    cfg = get_config(config_name)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "data"
        for v in range(videos):
            video_dir = root / "S01" / "training" / "frames" / f"{v + 1:02d}"
            video_dir.mkdir(parents=True)
            for i in range(frames):
                picture = rng.integers(0, 256, (cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
                Image.fromarray(picture).save(video_dir / f"{i:03d}.jpg", quality=90)
        clips = ClipDataset(load_scene(root, "S01", splits=("training",)).training, cfg.image_size, cfg.clip_len,
                            cache=FrameCache(cfg.image_size, Path(folder) / "cache"))
        for video in clips.videos:
            clips.cache.get(video)  # decoded once, as training does before its loader starts
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        start = time.perf_counter()
        for batch_clips, _ in training_loader(Uint8Clips(clips), batch, device, generator=torch.Generator()):
            clips_to_float(batch_clips.to(device, non_blocking=True))
        sync()
        return len(clips) / (time.perf_counter() - start)


def matmul_ceiling(device: torch.device, size: int = 8192, repeats: int = 10) -> float:
    """TFLOP/s of a large bf16 matrix product on this GPU: the ceiling this machine really reaches."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    seconds = timed(lambda: a @ b, repeats, torch.cuda.synchronize)
    return 2 * size**3 / seconds / 1e12


def largest_batch(per_clip_gib: float, fixed_gib: float, device: torch.device) -> int:
    """The largest multiple of 8 clips whose training step should fit in 90% of the GPU's memory,
    from peak memory measured at two batch sizes."""
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    return max(8, int((0.9 * total - fixed_gib) / per_clip_gib) // 8 * 8)


def gpu_speed(batches: list[int], steps: int, peak_tflops: float | None, compiled: bool) -> None:
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
    print(f"training loader at {cfg.image_size} px, batch 32: {loader_speed('paper', device, 32):.0f} clips/s")

    def row(label: str, batch: int, model: torch.nn.Module | None) -> Speed | None:
        try:
            speed = training_speed("paper", device, batch, steps, bf16=True, model=model)
        except torch.OutOfMemoryError:
            print(f"{label} batch {batch}: out of memory")
            torch.cuda.empty_cache()
            return None
        except Exception as error:  # a compile that fails on this torch: say so, keep the other rows
            print(f"{label} batch {batch}: failed: {type(error).__name__}: {' '.join(str(error).split())[:400]}")
            return None
        achieved = 3 * flops * speed.train / 1e12  # forward + backward ~ 3x forward
        peak_text = f"{achieved / peak_tflops:.1%} of the datasheet peak, " if peak_tflops else ""
        compile_text = f", compiling {speed.compile_s:.0f} s" if model is not None else ""
        print(f"{label} batch {batch}: training {speed.train:.1f} clips/s ({achieved:.1f} TFLOP/s: {peak_text}"
              f"{achieved / ceiling:.1%} of the measured matrix-product rate), inference {speed.infer:.1f} clips/s, "
              f"peak memory {speed.peak_gib:.1f} GiB{compile_text}", flush=True)
        return speed

    measured = {batch: row("eager", batch, None) for batch in batches}
    low, high = min(batches), max(batches)
    per_clip = (measured[high].peak_gib - measured[low].peak_gib) / (high - low) \
        if measured.get(low) and measured.get(high) and high > low else 0.0
    if per_clip > 0:
        largest = largest_batch(per_clip, measured[low].peak_gib - low * per_clip, device)
        while largest > high and row("eager", largest, None) is None:
            largest = largest * 3 // 4 // 8 * 8
        batches = batches + ([largest] if largest > high else [])
    if compiled:
        model = compile_model(build_model("full", cfg).to(device), device)  # one compile for every batch size
        for batch in batches:
            if row("compiled", batch, model) is None:
                break
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
    parser.add_argument("--no-compile", action="store_true", help="on the GPU, the eager rows only")
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
        gpu_speed(args.gpu_batch, max(args.repeats, 10), args.peak_tflops, compiled=not args.no_compile)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
