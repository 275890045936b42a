"""The reference scenes S01-S12 render the same pixels and labels as when their frames were kept.

A few frames of each scene's first test video (the first, one in the middle, the middle of each
anomaly), rendered at 64 px with the scene's own light, camera and finish, are kept in
tests/data/reference_pixels.npz with the video's frame labels. A refactor of the devices, the
program or the renderer must leave them identical; a change that is meant to alter pixels writes
the file anew and says so in its commit:

    python tests/test_reference_pixels.py --write tests/data/reference_pixels.npz

The file was first written by the code as it stood before issue 14's refactor of the device motion
(commit 138c466~1), so this test also shows that the refactor kept every family's pixels.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from ipadgen.render.blender import BlenderRenderer  # noqa: E402
from ipadgen.render.style import FrameFinisher  # noqa: E402
from ipadgen.scene import plan_video, scene_camera, scene_device  # noqa: E402
from ipadgen.sets import load_scene_file  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
SCENES = Path(__file__).resolve().parents[1] / "scenes"
KEPT = Path(__file__).resolve().parent / "data" / "reference_pixels.npz"
RESOLUTION = 64


def kept_frames(spec_file: Path) -> dict[str, np.ndarray]:
    """'<scene>-labels' and '<scene>-frame<F>' of the first test video of one scene file."""
    spec = load_scene_file(spec_file)
    spec = spec.model_copy(update={"render": spec.render.model_copy(update={"resolution": RESOLUTION})})
    device = scene_device(spec)
    plan = plan_video(spec, device, "testing", 1)
    program = plan.program
    chosen = {0, plan.n_frames // 2}
    chosen |= {(event["first_frame"] + event["last_frame"]) // 2 for event in program.events
               if event["first_frame"] is not None}
    renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
    try:
        finish = FrameFinisher(spec.render, plan.seed)
        kept = {f"{spec.name}-labels": np.asarray(program.labels, dtype=np.uint8)}
        for f in sorted(chosen):
            kept[f"{spec.name}-frame{f}"] = finish.frame(renderer.render(program.poses[f], plan.nuisance.frame(f)))
    finally:
        renderer.close()
    return kept


@pytest.mark.parametrize("spec_file", sorted(SCENES.glob("S*.yaml")), ids=lambda p: p.stem)
def test_reference_scene_renders_its_kept_pixels_and_labels(spec_file):
    with np.load(KEPT) as kept:
        expected = {k: kept[k] for k in kept.files if k.startswith(f"{spec_file.stem}-")}
    assert expected, f"{KEPT} keeps nothing of {spec_file.stem}: write it anew (see the module docstring)"
    now = kept_frames(spec_file)
    assert sorted(now) == sorted(expected), "other frames chosen: the anomalies moved"
    np.testing.assert_array_equal(now[f"{spec_file.stem}-labels"], expected[f"{spec_file.stem}-labels"])
    for key in now:
        difference = np.abs(now[key].astype(int) - expected[key].astype(int))
        assert not difference.any(), f"{key}: {int((difference.max(axis=-1) > 0).sum())} pixels changed, " \
                                     f"by up to {difference.max()}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="write the kept frames of S01-S12")
    parser.add_argument("--write", type=Path, required=True, help="the .npz file to write")
    args = parser.parse_args()
    frames = {}
    for spec_file in sorted(SCENES.glob("S*.yaml")):
        frames.update(kept_frames(spec_file))
        print(spec_file.stem, flush=True)
    args.write.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.write, **frames)
