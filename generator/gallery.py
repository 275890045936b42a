"""The gallery: per device, every anomaly kind beside its normal twin, so a person can judge them.

For each kind the anomaly is planned in the second cycle of a nuisance-free video; the tile pair
shows the twin's frame (normal) and the anomalous frame in the middle of the labelled span, its
mask outlined.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ipadgen.devices import DEVICES
from ipadgen.preview import annotate, grid
from ipadgen.scene import plan_video, scene_camera, scene_device
from ipadgen.spec import NuisanceSpec, RenderSpec, SceneSpec

PAIRS_PER_ROW = 4


def device_sheet(name: str, resolution: int = 192) -> Image.Image:
    from ipadgen.render.blender import BlenderRenderer  # bpy only when rendering

    cls = DEVICES[name]
    spec = SceneSpec(name="gallery", device=name, anomalies=tuple(cls.anomalies), cycles=3,
                     fps=5, nuisance=NuisanceSpec.off(), render=RenderSpec(resolution=resolution))
    device = scene_device(spec)
    plan = plan_video(spec, device, "testing", 1)
    renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
    tiles = []
    try:
        for kind in cls.anomalies.values():
            event = kind.plan(device, plan.schedule, 1, np.random.default_rng(0))
            program = device.play(plan.schedule, plan.n_frames, [event])
            meta = program.events[0]
            f = (meta["first_frame"] + meta["last_frame"]) // 2
            nuisance = plan.nuisance.frame(f)
            parts = set(meta["parts"])
            mask = (renderer.render_mask(program.poses[f], nuisance, parts)
                    | renderer.render_mask(program.reference_poses[f], nuisance, parts))
            tiles.append(annotate(renderer.render(program.reference_poses[f], nuisance), None,
                                  f"{name} normal f{f}", False))
            tiles.append(annotate(renderer.render(program.poses[f], nuisance), mask,
                                  f"{kind.category} {kind.name}", True))
    finally:
        renderer.close()
    step = 2 * PAIRS_PER_ROW
    return grid([tiles[i:i + step] for i in range(0, len(tiles), step)])


def write_gallery(out: Path, devices: list[str] | None = None, resolution: int = 192) -> list[Path]:
    """One PNG per device in `out`, plus index.md linking them."""
    out.mkdir(parents=True, exist_ok=True)
    written, lines = [], ["# Gallery: every anomaly kind beside its normal twin", ""]
    for name in devices or list(DEVICES):
        path = out / f"{name}.png"
        device_sheet(name, resolution).save(path)
        written.append(path)
        lines += [f"## {name}", "", f"![{name}]({path.name})", ""]
    (out / "index.md").write_text("\n".join(lines))
    return written
