"""Render a whole scene in-process (`render_scene`), or the videos of a set of scenes one process per
video, in parallel and in shards (`render_set`)."""
from __future__ import annotations

import json
import platform
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ipadgen.render.style import FrameFinisher
from ipadgen.render.worker import BUSY
from ipadgen.scene import VideoPlan, plan_video, scene_camera, scene_device, video_jobs
from ipadgen.spec import SceneSpec
from ipadgen.writer import SceneWriter, stage_dir


def scene_record(spec: SceneSpec) -> dict:
    """scene.json: the full spec (device parameters resolved), seed and tool versions."""
    device = scene_device(spec)
    full = spec.model_copy(update={"params": device.values})
    versions = {"ipad": metadata.version("ipad-vad"), "python": platform.python_version()}
    try:
        import bpy
        versions["blender"] = bpy.app.version_string
    except ImportError:
        pass
    return {"spec": json.loads(full.model_dump_json()), "seed": spec.seed, "versions": versions,
            "camera": scene_camera(spec, device).__dict__}


def render_video(renderer, writer: SceneWriter, plan: VideoPlan, quality: int,
                 bar: tqdm | None = None) -> bool:
    """Render one video into its work folder and place it whole; False when another process
    placed the same video first."""
    program, n = plan.program, plan.n_frames
    finish = FrameFinisher(renderer.spec, plan.seed)
    writer.start_video(plan.split, plan.index)
    for f in range(n):
        nuisance = plan.nuisance.frame(f)
        writer.write_frame(plan.split, plan.index, f, n,
                           finish.frame(renderer.render(program.poses[f], nuisance)), quality)
        if plan.split == "testing":
            mask = np.zeros((renderer.spec.resolution,) * 2, dtype=bool)
            if program.labels[f]:
                parts = {p for ev in program.events for p in ev["parts"]
                         if ev["first_frame"] is not None
                         and ev["first_frame"] <= f <= ev["last_frame"]}
                # where the anomaly is: the affected parts as they are and as they should be
                mask = finish.mask(renderer.render_mask(program.poses[f], nuisance, parts)
                                   | renderer.render_mask(program.reference_poses[f], nuisance, parts))
            writer.write_mask(plan.index, f, n, mask)
        if bar is not None:
            bar.update(1)
    return writer.finish_video(plan.split, plan.index, program.cycle, program.phase,
                               program.labels if plan.split == "testing" else None, plan.meta())


def render_scene(spec: SceneSpec, out_root: Path, progress: bool = True) -> Path:
    """Render every video of a scene into `<out_root>/<spec.name>/`; resumes an interrupted run."""
    from ipadgen.render.blender import BlenderRenderer  # bpy only when rendering

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


# --------------------------------------------------------------------------- sets, at scale
#
# `render_set` renders the videos of many scenes, one video per task, each task in its own
# process (`python -m ipadgen.render.worker`), so Blender's memory cannot build up over a long
# run. A task writes into its scene's staging folder; a video is done when its meta file exists
# (written last). Whichever run finds every video of a scene done commits the scene (one
# rename), so shards need no coordinator: rendered into one shared folder, the shard that
# finishes a scene's last video commits it; rendered into separate folders, copying the folders
# together and running `render-set` once more without --shard commits what is complete (and
# renders whatever a failed shard left undone).


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ValueError(f"--shard expects K/N with 1 <= K <= N, e.g. 1/4 (got {text!r})")
    return int(k), int(n)


def set_tasks(specs: list[SceneSpec]) -> list[tuple[str, str, int]]:
    """Every (scene, split, video) of a set, in one fixed order (sorted), the same everywhere."""
    return sorted((spec.name, split, index) for spec in specs for split, index in video_jobs(spec))


def shard_tasks(tasks: list[tuple[str, str, int]], k: int, n: int) -> list[tuple[str, str, int]]:
    """Shard K of N: every N-th task of the sorted list, starting at the K-th."""
    return [t for i, t in enumerate(tasks) if i % n == k - 1]


@dataclass
class SetResult:
    share: int = 0  # tasks in this run's share
    rendered: int = 0
    already_done: int = 0
    failed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # videos another run renders now (their locks)
    committed: list[str] = field(default_factory=list)  # committed by this run
    complete: list[str] = field(default_factory=list)  # committed before this run
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)  # scene -> (done, total)


def _worker_command(stage: Path, split: str, index: int) -> list[str]:
    return [sys.executable, "-m", "ipadgen.render.worker", str(stage), split, str(index)]


class _Workers:
    """The worker processes running now, so that an interrupted run stops them too."""

    def __init__(self):
        self.live: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, stage: Path, final: Path, split: str, index: int) -> tuple[str, str]:
        if final.exists():  # another shard committed the scene meanwhile
            return "done", ""
        with self.lock:
            if self.stopping:
                return "failed", "interrupted"
            proc = subprocess.Popen(_worker_command(stage, split, index), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            self.live.add(proc)
        out, _ = proc.communicate()
        with self.lock:
            self.live.discard(proc)
        if proc.returncode == 0:
            return "rendered", ""
        if final.exists():
            return "done", ""
        if proc.returncode == BUSY:
            return "busy", out.strip().splitlines()[-1] if out.strip() else "locked by another run"
        lines = [ln for ln in out.splitlines() if ln.strip() and "EGL" not in ln]
        return "failed", lines[-1] if lines else f"worker exit status {proc.returncode}"

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.live:
                proc.kill()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def render_set(specs: list[SceneSpec], out_root: Path, workers: int = 1,
               shard: tuple[int, int] = (1, 1), progress: bool = True) -> SetResult:
    """Render this run's share of the videos of `specs` into `out_root`, `workers` processes at
    a time; commit every scene whose videos are all done. Resumes: done videos are skipped,
    interrupted ones redone."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    result = SetResult()
    writers: dict[str, SceneWriter] = {}
    jobs = {spec.name: video_jobs(spec) for spec in specs}
    share = shard_tasks(set_tasks(specs), *shard)
    result.share = len(share)
    in_share = {name for name, _, _ in share}
    for spec in specs:
        record = scene_record(spec)
        final, stage = out_root / spec.name, stage_dir(out_root, spec.name)
        if final.exists():
            previous = final / "scene.json"
            if not previous.is_file() or json.loads(previous.read_text()).get("spec") != record["spec"]:
                raise FileExistsError(f"{final} exists and is not a render of this spec "
                                      f"({spec.name}); remove it or rename the scene")
            result.complete.append(spec.name)
            # a staging folder beside a committed scene only repeats videos the scene has
            # (copied in when shard folders were merged): drop it
            shutil.rmtree(stage, ignore_errors=True)
            continue
        if spec.name in in_share or stage.exists():  # a shard touches only its own scenes
            writers[spec.name] = SceneWriter(out_root, spec.name, record)

    todo = [t for t in share if t[0] in writers and not writers[t[0]].is_done(t[1], t[2])]
    result.already_done = len(share) - len(todo)

    def try_commit(name: str) -> None:
        w = writers[name]
        if name not in result.committed and w.stage.exists() and w.is_complete(jobs[name]):
            w.commit()
            result.committed.append(name)

    running = _Workers()
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    # SIGTERM (a preempted Slurm task, a deleted pod) stops the workers like Ctrl-C does; the
    # next run resumes. Only the main thread may set a handler.
    previous = (signal.signal(signal.SIGTERM, _raise_interrupt)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        with tqdm(total=len(share), initial=result.already_done, unit="video",
                  disable=not progress,
                  desc="render-set" + (f" shard {shard[0]}/{shard[1]}" if shard[1] > 1 else "")) as bar:
            futures = {pool.submit(running.run, writers[name].stage, writers[name].final, split,
                                   index): (name, split, index) for name, split, index in todo}
            for fut in as_completed(futures):
                name, split, index = futures[fut]
                status, why = fut.result()
                if status == "failed":
                    result.failed.append(f"{name} {split} video {index:02d}: {why}")
                elif status == "busy":
                    result.busy.append(f"{name}: {why}")
                elif status == "rendered":
                    result.rendered += 1
                else:
                    result.already_done += 1
                bar.update(1)
                if status in ("rendered", "done"):
                    try_commit(name)
    except BaseException:
        running.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    pool.shutdown()
    for name, w in writers.items():
        if name in result.committed:
            continue
        if w.final.exists() and not w.stage.exists():
            result.complete.append(name)  # committed by another shard
            continue
        try_commit(name)
        if name not in result.committed:
            done = sum(w.is_done(s, i) for s, i in jobs[name])
            result.pending[name] = (done, len(jobs[name]))
    return result
