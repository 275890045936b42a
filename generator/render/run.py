"""Render a whole scene: plan every video, render its frames and masks, write the layout."""
from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..scene import VideoPlan, plan_video, scene_camera, scene_device, video_jobs
from ..spec import SceneSpec
from ..writer import SceneWriter


def scene_record(spec: SceneSpec) -> dict:
    """scene.json: the full spec (device parameters resolved), seed and tool versions."""
    device = scene_device(spec)
    full = spec.model_copy(update={"params": device.values})
    versions = {"ipad": metadata.version("ipad"), "python": platform.python_version()}
    try:
        import bpy
        versions["blender"] = bpy.app.version_string
    except ImportError:
        pass
    return {"spec": json.loads(full.model_dump_json()), "seed": spec.seed, "versions": versions,
            "camera": scene_camera(spec, device).__dict__}


def render_video(renderer, writer: SceneWriter, plan: VideoPlan, quality: int,
                 bar: tqdm | None = None) -> None:
    program, n = plan.program, plan.n_frames
    writer.start_video(plan.split, plan.index)
    for f in range(n):
        nuisance = plan.nuisance.frame(f)
        writer.write_frame(plan.split, plan.index, f, n, renderer.render(program.poses[f], nuisance),
                           quality)
        if plan.split == "testing":
            mask = np.zeros((renderer.spec.resolution,) * 2, dtype=bool)
            if program.labels[f]:
                parts = {p for ev in program.events for p in ev["parts"]
                         if ev["first_frame"] is not None
                         and ev["first_frame"] <= f <= ev["last_frame"]}
                # where the anomaly is: the affected parts as they are and as they should be
                mask = (renderer.render_mask(program.poses[f], nuisance, parts)
                        | renderer.render_mask(program.reference_poses[f], nuisance, parts))
            writer.write_mask(plan.index, f, n, mask)
        if bar is not None:
            bar.update(1)
    writer.finish_video(plan.split, plan.index, program.cycle, program.phase,
                        program.labels if plan.split == "testing" else None, plan.meta())


def render_scene(spec: SceneSpec, out_root: Path, progress: bool = True) -> Path:
    """Render every video of a scene into `<out_root>/<spec.name>/`; resumes an interrupted run."""
    from .blender import BlenderRenderer  # bpy only when rendering

    writer = SceneWriter(Path(out_root), spec.name, scene_record(spec))
    device = scene_device(spec)
    todo = [job for job in video_jobs(spec) if not writer.is_done(*job)]
    plans = [plan_video(spec, device, split, index) for split, index in todo]
    renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
    try:
        with tqdm(total=sum(p.n_frames for p in plans), unit="frame", disable=not progress,
                  desc=f"render {spec.name}") as bar:
            for plan in plans:
                render_video(renderer, writer, plan, spec.render.jpeg_quality, bar)
    finally:
        renderer.close()
    return writer.commit()
