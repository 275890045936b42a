"""Render speed of ipadgen against bare bpy renders of the same frames, in one run.

End to end = planning, labels, Blender renders, id-pass masks for anomalous frames, JPEG/PNG/npy
writing (`render_scene`). Bare = the same poses set on the same Blender objects and
`bpy.ops.render.render(write_still=True)`, nothing else. Target: end to end >= 0.8x bare (Workbench).

    python bench/render.py [--resolution 256] [--engine workbench] [--cycles 2]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import bpy

from ipadgen.devices import get_device
from ipadgen.render.blender import BlenderRenderer, _quiet
from ipadgen.render.run import render_scene
from ipadgen.scene import plan_video, scene_camera, scene_device, video_jobs
from ipadgen.spec import RenderSpec, SceneSpec, resolve_anomalies


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="lifter")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--engine", default="workbench", choices=["workbench", "cycles"])
    p.add_argument("--cycles", type=int, default=2, help="work cycles per video")
    args = p.parse_args()
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


if __name__ == "__main__":
    main()
