"""One video in one process: `python -m ipadgen.render.worker STAGE_DIR SPLIT INDEX`.

`render-set` starts one of these per video, so Blender's memory is returned to the system after
every video. STAGE_DIR is a scene's staging folder (`<out>/.<scene>.partial`, holding
scene.json); the video is planned from that spec exactly as an in-process `render` would plan it,
so where a video is rendered does not change a byte of its labels.
Exit status: 0 rendered (or already done), 1 failed (traceback on stderr), 2 bad arguments.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from ..scene import SPLITS, plan_video, scene_camera, scene_device
from ..spec import SceneSpec
from ..writer import SceneWriter


def render_task(stage: Path, split: str, index: int) -> bool:
    """Render video (split, index) of the staged scene; False when it was already done."""
    writer = SceneWriter.attach(Path(stage))
    if writer.is_done(split, index):
        return False
    from .blender import BlenderRenderer  # bpy only here
    from .run import render_video

    record = json.loads((writer.stage / "scene.json").read_text())
    spec = SceneSpec.model_validate(record["spec"])
    jobs = {"training": spec.train_videos, "testing": spec.test_videos}
    if split not in SPLITS or not 1 <= index <= jobs[split]:
        raise ValueError(f"scene {spec.name} has no {split} video {index}")
    device = scene_device(spec)
    plan = plan_video(spec, device, split, index)
    renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
    try:
        render_video(renderer, writer, plan, spec.render.jpeg_quality)
    finally:
        renderer.close()
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[1] not in SPLITS or not argv[2].isdigit():
        print("usage: python -m ipadgen.render.worker STAGE_DIR {training,testing} INDEX",
              file=sys.stderr)
        return 2
    try:
        render_task(Path(argv[0]), argv[1], int(argv[2]))
    except Exception:  # noqa: BLE001 - reported to the parent, which names the video
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
