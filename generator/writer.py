"""The IPAD layout on disk, written so that nothing half-written is ever visible.

A scene is rendered into a hidden staging folder `<out>/.<scene>.partial/` and renamed to
`<out>/<scene>/` when every video is there. Inside the staging folder a video counts as done when
its `meta/NN.json` exists; that file is written last, atomically, so an interrupted render resumes
by redoing only the videos without it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
from PIL import Image

PERIOD_DTYPE = np.dtype([("cycle", "<i4"), ("phase", "<f8")])


def video_name(index: int) -> str:
    return f"{index:02d}"


def label_name(index: int) -> str:
    """IPAD pairs video folder 01 with label file 001.npy."""
    return f"{index:03d}.npy"


def frame_name(i: int, n_frames: int) -> str:
    return f"{i:0{max(3, len(str(n_frames - 1)))}d}"


def _atomic_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        write(fh)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    _atomic_bytes(path, lambda fh: fh.write(json.dumps(data, indent=1).encode()))


def write_npy(path: Path, array: np.ndarray) -> None:
    _atomic_bytes(path, lambda fh: np.save(fh, array, allow_pickle=False))


def stage_dir(out_root: Path, scene: str) -> Path:
    return Path(out_root) / f".{scene}.partial"


class SceneWriter:
    """Writes one scene's videos into its staging folder; `commit` makes the scene visible.

    Several processes (the workers of one `render-set`, or shards on several machines sharing a
    file system) may write different videos of the same scene at once: creating the staging
    folder and committing it are both single renames, and whichever process loses a race finds
    the other's result in place.
    """

    def __init__(self, out_root: Path, scene: str, spec_json: dict):
        self.final = Path(out_root) / scene
        self.stage = stage_dir(out_root, scene)
        if self.final.exists():
            raise FileExistsError(f"{self.final} already exists; remove it or choose another "
                                  f"--scene-name")
        if not self.stage.exists():
            # a name of our own, so that two processes creating the stage never share a temp dir
            tmp = Path(out_root) / f".{scene}.partial.new-{socket.gethostname()}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            write_json(tmp / "scene.json", spec_json)
            try:
                os.replace(tmp, self.stage)
            except OSError:  # another process made it first (the rename finds a non-empty dir)
                shutil.rmtree(tmp, ignore_errors=True)
        previous = json.loads((self.stage / "scene.json").read_text())
        if previous.get("spec") != spec_json.get("spec"):
            raise FileExistsError(
                f"{self.stage} holds an unfinished render of a different spec; remove it to "
                f"start over")

    @classmethod
    def attach(cls, stage: Path) -> "SceneWriter":
        """A writer for a staging folder that exists (a worker process renders into it)."""
        self = cls.__new__(cls)
        self.stage = Path(stage)
        name = self.stage.name
        if not (name.startswith(".") and name.endswith(".partial")) \
                or not (self.stage / "scene.json").is_file():
            raise FileNotFoundError(f"{stage} is not a staging folder (.<scene>.partial with "
                                    f"scene.json)")
        self.final = self.stage.with_name(name[1:-len(".partial")])
        return self

    def is_complete(self, jobs) -> bool:
        return all(self.is_done(split, index) for split, index in jobs)

    def is_done(self, split: str, index: int) -> bool:
        return (self.stage / split / "meta" / f"{video_name(index)}.json").exists()

    def start_video(self, split: str, index: int) -> None:
        """Clear whatever an interrupted run left of this video."""
        for sub in ("frames", "masks") if split == "testing" else ("frames",):
            folder = self.stage / split / sub / video_name(index)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)

    def frame_path(self, split: str, index: int, i: int, n_frames: int) -> Path:
        return self.stage / split / "frames" / video_name(index) / f"{frame_name(i, n_frames)}.jpg"

    def write_frame(self, split: str, index: int, i: int, n_frames: int, rgb: np.ndarray,
                    quality: int) -> None:
        Image.fromarray(rgb).save(self.frame_path(split, index, i, n_frames), quality=quality,
                                  subsampling=0, optimize=False)

    def write_mask(self, index: int, i: int, n_frames: int, mask: np.ndarray) -> None:
        path = self.stage / "testing" / "masks" / video_name(index) / f"{frame_name(i, n_frames)}.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)

    def finish_video(self, split: str, index: int, cycle: np.ndarray, phase: np.ndarray,
                     labels: np.ndarray | None, meta: dict) -> None:
        name = video_name(index)
        period = np.empty(len(cycle), dtype=PERIOD_DTYPE)
        period["cycle"], period["phase"] = cycle, phase
        (self.stage / split / "period").mkdir(parents=True, exist_ok=True)
        write_npy(self.stage / split / "period" / f"{name}.npy", period)
        if labels is not None:
            (self.stage / "test_label").mkdir(exist_ok=True)
            write_npy(self.stage / "test_label" / label_name(index), labels.astype(np.uint8))
        (self.stage / split / "meta").mkdir(parents=True, exist_ok=True)
        write_json(self.stage / split / "meta" / f"{name}.json", meta)  # last: marks it done

    def commit(self) -> Path:
        """Rename the complete staging folder to the scene folder. Temp files an interrupted
        writer left behind go first; a commit that lost a race to another process is fine."""
        for tmp in self.stage.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        try:
            os.replace(self.stage, self.final)
        except OSError:
            if self.stage.exists() or not self.final.exists():
                raise
        return self.final
