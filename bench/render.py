"""Render speed and memory of ipadgen, in one run of a few minutes.

1. end to end vs bare: planning, labels, Blender renders, id-pass masks for anomalous frames,
   JPEG/PNG/npy writing (`render_scene`) against the same poses set on the same Blender objects and
   `bpy.ops.render.render(write_still=True)`, nothing else. Target: end to end >= 0.8x bare
   (Workbench).
2. devices: frames per second of every device family, Workbench (a short normal video) and
   Cycles at 16 samples (a few frames).
3. workers: wall time of `ipadgen render-set` on the same small videos with --workers 1 and 2;
   target speed-up >= 1.7x on 2 free cores (each video is its own process, so the start-up of
   Python + Blender is in both figures).
4. memory: resident memory of ONE process rendering 30 small videos one after the other (what
   render-set's one-process-per-video avoids); target growth from video 1 to 30 under 5%.

    python bench/render.py [--resolution 256] [--engine workbench] [--cycles 2]
                           [--sections e2e,devices,workers,memory]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bpy
import yaml

from ipadgen.devices import DEVICES, get_device
from ipadgen.render.blender import BlenderRenderer, _quiet
from ipadgen.render.run import render_scene, scene_record
from ipadgen.scene import plan_video, scene_camera, scene_device, video_jobs
from ipadgen.spec import NuisanceSpec, RenderSpec, SceneSpec, resolve_anomalies
from ipadgen.writer import SceneWriter


def bare_fps(spec: SceneSpec, out: Path) -> tuple[float, int]:
    device = scene_device(spec)
    plans = [plan_video(spec, device, split, i) for split, i in video_jobs(spec)]
    renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
    bpy.context.scene.render.filepath = str(out / "bare.png")
    n, start = 0, None
    for plan in plans:
        for f, pose in enumerate(plan.program.poses):
            renderer._apply(pose, plan.nuisance.frame(f), None)
            with _quiet():
                bpy.ops.render.render(write_still=True)
            if start is None:  # the first render compiles shaders; leave it out of both figures
                start = time.perf_counter()
            else:
                n += 1
    renderer.close()
    return n / (time.perf_counter() - start), n + 1


def end_to_end_vs_bare(args) -> None:
    cls = get_device(args.device)
    spec = SceneSpec(name="bench", device=args.device, anomalies=resolve_anomalies(cls, "all"),
                     train_videos=1, test_videos=2, cycles=args.cycles,
                     render=RenderSpec(resolution=args.resolution, engine=args.engine))
    with tempfile.TemporaryDirectory() as tmp:
        bare, frames = bare_fps(spec, Path(tmp))
        start = time.perf_counter()
        render_scene(spec, Path(tmp), progress=False)
        e2e = frames / (time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"device {args.device}, {args.engine}, {args.resolution}x{args.resolution}, "
          f"{frames} frames (1 training + 2 testing videos, all anomaly kinds)")
    print(f"bare bpy render      {bare:7.2f} frames/s")
    print(f"ipadgen end to end   {e2e:7.2f} frames/s")
    print(f"ratio end-to-end/bare {e2e / bare:6.2f}x   (target >= 0.80x)")
    print(f"peak resident memory {peak:7.0f} MiB")


def device_fps(args) -> None:
    """Frames per second per family: Workbench over a short normal video, Cycles (16 samples)
    over a few frames; the first render of each (shader compilation) is left out."""
    print(f"\nframes per second per device, {args.resolution}x{args.resolution} "
          f"(Workbench: {args.wb_frames} frames; Cycles 16 samples: {args.cycles_frames} frames)")
    print(f"{'device':14s} {'workbench':>10s} {'cycles':>10s}")
    for name, cls in DEVICES.items():
        row = []
        for engine, n in (("workbench", args.wb_frames), ("cycles", args.cycles_frames)):
            spec = SceneSpec(name="fps", device=name, anomalies=(next(iter(cls.anomalies)),),
                             train_videos=1, test_videos=0, cycles=1, fps=10,
                             render=RenderSpec(resolution=args.resolution, engine=engine, samples=16))
            device = scene_device(spec)
            plan = plan_video(spec, device, "training", 1)
            idx = [round(i * (plan.n_frames - 1) / n) for i in range(n + 1)]  # n + 1: one warm-up
            r = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
            r.render(plan.program.poses[idx[0]], plan.nuisance.frame(idx[0]))
            start = time.perf_counter()
            for f in idx[1:]:
                r.render(plan.program.poses[f], plan.nuisance.frame(f))
            row.append(n / (time.perf_counter() - start))
            r.close()
        print(f"{name:14s} {row[0]:10.2f} {row[1]:10.2f}")


def _small_set(folder: Path, videos: int, resolution: int) -> Path:
    spec = {"name": "W", "device": "lifter", "anomalies": ["stall"], "seed": 1,
            "train_videos": videos, "test_videos": 0, "cycles": 2, "fps": 5,
            "render": {"resolution": resolution}}
    path = folder / "W.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def workers_speedup(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = _small_set(Path(tmp), args.videos, 128)
        times = {}
        for workers in (1, 2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ipadgen.cli", "render-set", str(spec), "--out",
                            str(Path(tmp) / f"w{workers}"), "--workers", str(workers), "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
            times[workers] = time.perf_counter() - start
    print(f"\nrender-set, {args.videos} lifter videos (2 cycles, 5 fps, 128x128), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run")
    print(f"--workers 1          {times[1]:7.1f} s")
    print(f"--workers 2          {times[2]:7.1f} s")
    print(f"speed-up             {times[1] / times[2]:7.2f}x   (target >= 1.70x on 2 free cores)")


MEMORY_CHILD = """
import sys
from pathlib import Path
from ipadgen.render.worker import render_task
stage, n = Path(sys.argv[1]), int(sys.argv[2])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
for i in range(1, n + 1):
    render_task(stage, "training", i)
    print(f"{i} {rss():.1f}", flush=True)
"""


def worker_memory(args) -> None:
    n = 30
    with tempfile.TemporaryDirectory() as tmp:
        spec = SceneSpec(name="M", device="lifter", anomalies=("stall",), seed=2, train_videos=n,
                         test_videos=0, cycles=1, fps=3, nuisance=NuisanceSpec(),
                         render=RenderSpec(resolution=64))
        writer = SceneWriter(Path(tmp), spec.name, scene_record(spec))
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(writer.stage), str(n)],
                             check=True, capture_output=True, text=True).stdout
    rss = [float(line.split()[1]) for line in out.split("\n") if line.strip()]
    growth = (rss[-1] - rss[0]) / rss[0] * 100
    print(f"\nresident memory of one process over {n} consecutive videos (lifter, 1 cycle, 3 fps, 64x64)")
    print(f"after video 1        {rss[0]:7.1f} MiB")
    print(f"after video 10       {rss[9]:7.1f} MiB")
    print(f"after video {n}       {rss[-1]:7.1f} MiB   (max {max(rss):.1f})")
    print(f"growth 1 -> {n}        {growth:6.1f} %     (target < 5%; render-set runs one process per "
          f"video anyway)")


SECTIONS = {"e2e": end_to_end_vs_bare, "devices": device_fps, "workers": workers_speedup,
            "memory": worker_memory}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="lifter")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--engine", default="workbench", choices=["workbench", "cycles"])
    p.add_argument("--cycles", type=int, default=2, help="work cycles per video")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma list of {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--wb-frames", type=int, default=20, help="Workbench frames per device")
    p.add_argument("--cycles-frames", type=int, default=3, help="Cycles frames per device")
    p.add_argument("--videos", type=int, default=4, help="videos of the workers speed-up run")
    args = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures as they come, also into a file
    for name in args.sections.split(","):
        if name not in SECTIONS:
            p.error(f"unknown section {name!r}; allowed: {', '.join(SECTIONS)}")
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
