"""One video in one process: `python -m ipadgen.render.worker STAGE_DIR SPLIT INDEX`.

`render-set` starts one of these per video, so Blender's memory is returned to the system after
every video. STAGE_DIR is a scene's staging folder (`<out>/.<scene>.partial`, holding
scene.json); the video is planned from that spec exactly as an in-process `render` would plan it,
so where a video is rendered does not change a byte of its labels.
A worker holds the video's lock while it renders and ends within a second of its parent (a
`render-set` killed with -9 leaves no orphan rendering on).
Exit status: 0 rendered (or already done), 1 failed (traceback on stderr), 2 bad arguments,
3 another process holds the video's lock (it renders it now).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from ipadgen.scene import SPLITS, plan_video, scene_camera, scene_device
from ipadgen.spec import SceneSpec
from ipadgen.writer import SceneWriter

BUSY = 3  # exit status: the video's lock is held by another process


class VideoBusy(Exception):
    """Another process holds the video's lock."""


def render_task(stage: Path, split: str, index: int) -> bool:
    """Render video (split, index) of the staged scene under its lock; False when it was already
    done (or another process finished it meanwhile)."""
    writer = SceneWriter.attach(Path(stage))
    if writer.is_done(split, index):
        return False
    holder = writer.lock_video(split, index)
    if holder is not None:
        raise VideoBusy(f"{split} video {index:02d} is being rendered by {holder}")
    try:
        return _render_locked(writer, split, index)
    finally:
        writer.unlock_video(split, index)


def _render_locked(writer: SceneWriter, split: str, index: int) -> bool:
    if writer.is_done(split, index):
        return False
    from ipadgen.render.blender import BlenderRenderer  # bpy only here
    from ipadgen.render.run import render_video

    record = json.loads((writer.stage / "scene.json").read_text())
    spec = SceneSpec.model_validate(record["spec"])
    jobs = {"training": spec.train_videos, "testing": spec.test_videos}
    if split not in SPLITS or not 1 <= index <= jobs[split]:
        raise ValueError(f"scene {spec.name} has no {split} video {index}")
    device = scene_device(spec)
    plan = plan_video(spec, device, split, index)
    renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
    try:
        return render_video(renderer, writer, plan, spec.render.jpeg_quality)
    finally:
        renderer.close()


def _die_with_parent(period_s: float = 0.5) -> None:
    """End this process soon after the one that started it (reparented: its parent is gone)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(period_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[1] not in SPLITS or not argv[2].isdigit():
        print("usage: python -m ipadgen.render.worker STAGE_DIR {training,testing} INDEX",
              file=sys.stderr)
        return 2
    _die_with_parent()
    try:
        render_task(Path(argv[0]), argv[1], int(argv[2]))
    except VideoBusy as busy:
        print(busy, file=sys.stderr)
        return BUSY
    except Exception:  # noqa: BLE001 - reported to the parent, which names the video
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
