"""Detector figures, printed (never asserted):

1. parameters and forward FLOPs per clip of every model kind in both configs;
2. forward time of our Swin encoder against torchvision's swin3d_t on the same input, in the
   same run (ratio ours / torchvision; target <= 1.0x);
3. tiny config training and inference clips/s on this machine's CPU;
4. with --device cuda: the paper config's training clips/s with bf16 autocast at each
   --gpu-batch, and the fraction of the GPU's bf16 peak that reaches, beside the rate a large bf16
   matrix product reaches on it in the same run;
5. with --accuracy ROOT: frame AUC per scene and mean of every model kind on an IPAD-layout root,
   plus the ablation of the paper's table 4. --render DIR first renders a benchmark set with
   `ipadgen render` (one scene per device and anomaly category) and then scores it.

    python bench/detect.py                      # 1-3 on the CPU
    python bench/detect.py --device cuda        # 1-4 on a GPU
    python bench/detect.py --skip-speed --accuracy ipad_out --epochs 5
    python bench/detect.py --skip-speed --render bench_data --devices lifter,conveyor
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ipad_detect.config import get_config
from ipad_detect.data import list_scenes
from ipad_detect.evaluate import dataset_auc, evaluate_scene
from ipad_detect.models import MODEL_KINDS, build_model, count_flops, count_parameters
from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.models.swin3d import SwinEncoder3d
from ipad_detect.scoring import score_scene
from ipad_detect.train import TrainOptions, train

# Dense bf16 tensor-core peak in TFLOP/s, from the vendors' datasheets (SXM parts).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                   "RTX 4090": 165.0, "V100": 125.0}
CATEGORIES = ("appearance", "position", "motion", "logic")


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


def render_benchmark(out: Path, devices: list[str], seed: int, extra: list[str]) -> None:
    """One scene per device and anomaly category, rendered by `ipadgen render`."""
    for device in devices:
        for category in CATEGORIES:
            name = f"{device}-{category}"
            if (out / name / "scene.json").is_file():
                continue
            command = [str(Path(sys.executable).parent / "ipadgen"), "render", "--device", device, "--anomalies", category, "--out", str(out),
                       "--scene-name", name, "--seed", str(seed), "--quiet", *extra]
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True)


# Rows of the ablation (paper table 4): (label, model run, phase score weight; None = config's)
ABLATION = [
    ("reconstruction only (V-Swin-T)", "vswin", 0.0),
    ("period only (E_p score)", "full", 1.0),
    ("window only (no memory)", "full-no-memory", None),
    ("memory only (no window score)", "full", 0.0),
    ("both (ours)", "full", None),
]


def accuracy(root: Path, scenes: list[str], config_name: str, epochs: int, batch: int, device: str,
             max_clips: int | None, runs: Path) -> None:
    cfg = get_config(config_name)
    variants = {kind: (kind, cfg) for kind in (*MODEL_KINDS, "phase-nn")}
    variants["full-no-memory"] = ("full", cfg.model_copy(update={"use_memory": False}))
    table: dict[str, dict[str, float | None]] = {}
    ablation: dict[str, dict[str, float | None]] = {label: {} for label, _, _ in ABLATION}
    for scene in scenes:
        for variant, (kind, variant_cfg) in variants.items():
            options = TrainOptions(kind=kind, epochs=epochs, batch_size=batch, device=device, max_clips=max_clips,
                                   lr=1e-3 if config_name == "tiny" else 1e-4, progress=False)
            start = time.perf_counter()
            run = train(root, [scene], variant_cfg, runs / f"{scene}-{variant}", options)
            checkpoint = load_checkpoint(run.checkpoint, device)
            scores, _ = score_scene(checkpoint, root, scene, batch_size=batch, device=device, progress=False)

            def auc(weight: float | None) -> float | None:
                weight = variant_cfg.phase_score_weight if weight is None else weight
                return evaluate_scene(scores, phase_weight=weight, clip_len=variant_cfg.clip_len).auc

            table.setdefault(variant, {})[scene] = auc(None)
            for label, source, weight in ABLATION:
                if source == variant:
                    ablation[label][scene] = auc(weight)
            print(f"  {scene} {variant}: AUC {_pct(auc(None))} ({time.perf_counter() - start:.0f} s)", flush=True)

    def print_table(title: str, rows: dict[str, dict[str, float | None]]) -> None:
        print(title)
        print(f"{'':<34}" + "".join(f"{s[:14]:>15}" for s in scenes) + f"{'mean':>8}")
        for row, values in rows.items():
            cells = "".join(f"{_pct(values.get(s)):>15}" for s in scenes)
            print(f"{row:<34}{cells}{_pct(dataset_auc(values)):>8}")

    print(f"== frame AUC (%), {config_name} config, {epochs} epoch(s), scene-wide normalisation, root {root}")
    print_table("-- models (paper table 2)", {k: v for k, v in table.items() if k != "full-no-memory"})
    print_table("-- ablation (paper table 4)", ablation)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--skip-speed", action="store_true", help="only the accuracy table")
    parser.add_argument("--encoder-size", type=int, default=224, help="frame size of the encoder timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-batch", type=int, nargs="+", default=[8, 32], help="training batch sizes on the GPU")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak of the GPU, if not in the table")
    parser.add_argument("--accuracy", type=Path, default=None, metavar="DATA_ROOT",
                        help="accuracy table on every scene under an IPAD-layout root")
    parser.add_argument("--render", type=Path, default=None, metavar="DIR",
                        help="render the benchmark set into DIR with ipadgen first, then --accuracy DIR")
    parser.add_argument("--devices", default="all",
                        help="comma list of ipadgen devices for --render (default all in the device library)")
    parser.add_argument("--render-args", default="--resolution 128 --train-videos 3 --test-videos 3 --cycles 3",
                        help="extra `ipadgen render` options")
    parser.add_argument("--scenes", default=None, help="comma list of scenes (default: all under the root)")
    parser.add_argument("--config", choices=("tiny", "paper"), default="tiny")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-clips", type=int, default=None, help="training clips per epoch (default all)")
    parser.add_argument("--runs", type=Path, default=None, help="folder for the checkpoints (default a temp dir)")
    args = parser.parse_args()
    if min(args.gpu_batch) < 1:
        parser.error(f"--gpu-batch {' '.join(map(str, args.gpu_batch))} is not allowed; give positive batch sizes")

    torch.manual_seed(0)
    if not args.skip_speed:
        sizes_and_flops()
        on_gpu = args.device == "cuda"
        encoder_speed(torch.device(args.device), args.encoder_size, args.gpu_batch[0] if on_gpu else 1,
                      max(args.repeats, 10) if on_gpu else args.repeats)
        cpu_speed(batch=4, steps=max(args.repeats, 8))
        if on_gpu:
            gpu_speed(args.gpu_batch, max(args.repeats, 10), args.peak_tflops)
    root = args.accuracy
    if args.render is not None:
        if args.devices == "all":
            from ipadgen.devices import DEVICES  # only here: the detector itself never imports ipadgen

            devices = sorted(DEVICES)
        else:
            devices = args.devices.split(",")
        render_benchmark(args.render, devices, seed=0, extra=args.render_args.split())
        root = args.render
    if root is not None:
        scenes = args.scenes.split(",") if args.scenes else list_scenes(root)
        if not scenes:
            sys.exit(f"no scenes under {root}")
        with tempfile.TemporaryDirectory() as temporary:
            accuracy(root, scenes, args.config, args.epochs, args.batch_size, args.device, args.max_clips,
                     args.runs or Path(temporary))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
