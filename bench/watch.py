"""`ipad-detect watch` figures, printed (never asserted): the frame rate it sustains, the latency
from a frame's arrival to its clip's score, and resident memory over a long stream, with torch and
with the exported ONNX graph side by side in one run.

A lifter scene is rendered (`ipadgen render`, 64 px, or `--data`/`--scene` of your own), the tiny
default detector is trained on it (`--clips` clips), calibrated, exported, and one of its test
videos, written as an mp4, is looped for `--frames` frames through `watch` (no --realtime: every
frame is scored, so the rate is what the scorer sustains). Memory is read from /proc every 100
frames; "growth after warm-up" is the largest resident size after the first `--warmup` frames
minus the size at that point. Each scorer runs at every `--batches` size (clips scored at once).

    python bench/watch.py                       # 10,000 frames each for torch and ONNX
    python bench/watch.py --frames 1000         # a quicker look
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ipad_detect.calibrate import Threshold
from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.cli import main as detect
from ipad_detect.data import load_scene
from ipad_detect.watch import watch

TARGET_FPS = 25.0


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames.shape[2:0:-1])
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def run(checkpoint, video: Path, frames: int, warmup: int, onnx: Path | None, batch: int) -> dict:
    samples: dict[int, int] = {}

    def sample(count: int) -> None:
        if count % 100 == 0 or count == warmup:
            samples[count] = _resident_bytes()

    summary = watch(checkpoint, video, Threshold.load(checkpoint.path), loop=True, max_frames=frames,
                    report=lambda line: None, on_frame=sample, onnx=onnx, batch=batch)
    base = samples.get(warmup, min(samples.values()))
    after = [v for k, v in samples.items() if k >= warmup]
    return {"fps": summary.fps, "latency_ms": 1000 * summary.latency_mean_s,
            "latency_max_ms": 1000 * summary.latency_max_s, "peak_mb": max(samples.values()) / 2**20,
            "growth_mb": (max(after) - base) / 2**20, "alarms": len(summary.alarms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench_out/watch"))
    parser.add_argument("--data", type=Path, default=None, help="dataset root (default: render a lifter scene)")
    parser.add_argument("--scene", default="lifter")
    parser.add_argument("--clips", type=int, default=800, help="training clips of the detector (default 800)")
    parser.add_argument("--frames", type=int, default=10_000, help="frames watched per scorer (default 10,000)")
    parser.add_argument("--warmup", type=int, default=500, help="frames before memory growth is counted")
    parser.add_argument("--batches", default="1,4,8", help="clips scored at once, each a row (default 1,4,8)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    root = args.data
    if root is None:
        root = args.work / "data"
        if not (root / args.scene).is_dir():
            subprocess.run([str(Path(sys.executable).with_name("ipadgen")), "render", "--device", "lifter",
                            "--out", str(root), "--scene-name", args.scene, "--resolution", "64",
                            "--train-videos", "3", "--test-videos", "2", "--cycles", "3", "--quiet"], check=True)
    run_dir = args.work / "run"
    for command in (["train", "--data", str(root), "--scene", args.scene, "--config", "tiny", "--epochs", "2",
                     "--max-clips", str(args.clips // 2), "--out", str(run_dir), "--quiet"],
                    ["calibrate", "--checkpoint", str(run_dir), "--data", str(root), "--scene", args.scene, "--quiet"],
                    ["export", "--checkpoint", str(run_dir)]):
        if detect(command) != 0:
            raise SystemExit(f"ipad-detect {command[0]} failed")
    checkpoint = load_checkpoint(run_dir)
    test = load_scene(root, args.scene, splits=("testing",)).testing[0]
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "test.mp4"
        _mp4(test.read(checkpoint.config.image_size), video, 10.0)
        rows = {}
        for batch in map(int, args.batches.split(",")):
            rows[f"torch, batch {batch}"] = run(checkpoint, video, args.frames, args.warmup, None, batch)
            rows[f"onnx, batch {batch}"] = run(checkpoint, video, args.frames, args.warmup,
                                               checkpoint.path / "model.onnx", batch)
    print(f"\nwatch, tiny default detector ({checkpoint.kind}), {args.frames} frames of a looped 64 px mp4 "
          f"(target >= {TARGET_FPS:g} fps, no memory growth after {args.warmup} frames):\n")
    print("| scorer | frames/s | latency ms (mean / max) | peak resident MB | growth after warm-up MB |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        print(f"| {name} | {row['fps']:.1f} | {row['latency_ms']:.1f} / {row['latency_max_ms']:.1f} | "
              f"{row['peak_mb']:.0f} | {row['growth_mb']:.1f} |")
    print("\nbatch N: N clips scored at once (`watch --batch N`), so a score comes up to N - 1 frames later")


if __name__ == "__main__":
    main()
