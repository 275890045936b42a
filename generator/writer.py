"""The IPAD layout on disk, written so that nothing half-written is ever visible.

A scene is rendered into a hidden staging folder `<out>/.<scene>.partial/` and renamed to
`<out>/<scene>/` when every video is there. A video's frames and masks are written into a work
folder of the process's own (`.work/<split>-<NN>-<host>-<pid>/` in the stage) and renamed into
place whole; then its period, labels and, last, its `meta/NN.json`, which marks it done. So an
interrupted render resumes by redoing only the videos without meta, and two processes that render
the same video never write into one folder: the first to finish places it, the other drops its
copy (`render.run` also keeps a lock per video, so that it rarely comes to that).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
from PIL import Image

from ipadgen.contract import (
    FRAME_SUFFIX,
    FRAMES,
    MASK_SUFFIX,
    MASKS,
    META,
    PERIOD,
    PERIOD_DTYPE,
    TEST_LABEL,
    frame_name,
    label_name,
    meta_path,
    period_path,
    process_running,
    release_labels_name,
    video_name,
    write_atomically,
)


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, lambda fh: fh.write(json.dumps(data, indent=1).encode()))


def write_npy(path: Path, array: np.ndarray) -> None:
    write_atomically(path, lambda fh: np.save(fh, array, allow_pickle=False))


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
            try:
                write_json(tmp / "scene.json", spec_json)
            except OSError:  # a full or read-only disk: leave no stray temporary for nobody to remove
                shutil.rmtree(tmp, ignore_errors=True)
                raise
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
        return meta_path(self.stage, split, video_name(index)).exists()

    def lock_video(self, split: str, index: int) -> str | None:
        """Take the video's lock file (`.locks/<split>-<NN>.lock`, naming host and pid): None when
        taken, else who holds it. A lock left by a process of this host that no longer runs is
        taken over; one of another host is not (its owner may still run): remove the file by hand
        if no run renders there any more."""
        folder = self.stage / ".locks"
        folder.mkdir(exist_ok=True)
        path = folder / f"{split}-{video_name(index)}.lock"
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = path.read_text().strip() if path.exists() else ""
                host, _, pid = holder.partition(" ")
                if host == socket.gethostname() and pid.isdigit() and not process_running(int(pid)):
                    path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                return f"{holder or 'another process'} (lock file {path})"
            with os.fdopen(fd, "w") as f:
                f.write(me)
            return None
        return f"another process (lock file {path})"

    def unlock_video(self, split: str, index: int) -> None:
        (self.stage / ".locks" / f"{split}-{video_name(index)}.lock").unlink(missing_ok=True)

    def work_dir(self, split: str, index: int) -> Path:
        """This process's own folder for a video being rendered."""
        return self.stage / ".work" / f"{split}-{video_name(index)}-{socket.gethostname()}-{os.getpid()}"

    def start_video(self, split: str, index: int) -> None:
        """A fresh work folder for the video (whatever this process left of it before goes)."""
        work = self.work_dir(split, index)
        shutil.rmtree(work, ignore_errors=True)
        for sub in (FRAMES, MASKS) if split == "testing" else (FRAMES,):
            (work / sub).mkdir(parents=True)

    def frame_path(self, split: str, index: int, i: int, n_frames: int) -> Path:
        return self.work_dir(split, index) / FRAMES / f"{frame_name(i, n_frames)}{FRAME_SUFFIX}"

    def write_frame(self, split: str, index: int, i: int, n_frames: int, rgb: np.ndarray,
                    quality: int) -> None:
        Image.fromarray(rgb).save(self.frame_path(split, index, i, n_frames), quality=quality,
                                  subsampling=0, optimize=False)

    def write_mask(self, index: int, i: int, n_frames: int, mask: np.ndarray) -> None:
        path = self.work_dir("testing", index) / MASKS / f"{frame_name(i, n_frames)}{MASK_SUFFIX}"
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)

    def finish_video(self, split: str, index: int, cycle: np.ndarray, phase: np.ndarray,
                     labels: np.ndarray | None, meta: dict) -> bool:
        """Place the video's frames and masks, then its period, labels and meta (last: done).
        False when another process finished the same video first (this copy is dropped)."""
        name = video_name(index)
        work = self.work_dir(split, index)
        if self.is_done(split, index):
            shutil.rmtree(work, ignore_errors=True)
            return False
        for sub in (FRAMES, MASKS) if split == "testing" else (FRAMES,):
            target = self.stage / split / sub / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)  # left by an interrupted run, never done
            os.replace(work / sub, target)
        shutil.rmtree(work, ignore_errors=True)
        period = np.empty(len(cycle), dtype=PERIOD_DTYPE)
        period["cycle"], period["phase"] = cycle, phase
        (self.stage / split / PERIOD).mkdir(parents=True, exist_ok=True)
        write_npy(period_path(self.stage, split, name), period)
        if labels is not None:
            (self.stage / TEST_LABEL).mkdir(exist_ok=True)
            write_npy(self.stage / TEST_LABEL / label_name(index), labels.astype(np.uint8))
        (self.stage / split / META).mkdir(parents=True, exist_ok=True)
        write_json(meta_path(self.stage, split, name), meta)  # last: marks it done
        return True

    def _write_release_labels(self) -> None:
        """`frame_labels_<scene>.npy` as the IPAD authors' evaluation code reads it: shape (1, N), every
        test video's labels joined in sorted video order."""
        files = sorted((self.stage / TEST_LABEL).glob("[0-9]*.npy"))
        if files:
            joined = np.concatenate([np.load(f, allow_pickle=False).reshape(-1) for f in files])
            write_npy(self.stage / release_labels_name(self.final.name), joined[None].astype(np.uint8))

    def commit(self) -> Path:
        """Rename the complete staging folder to the scene folder. Temp files an interrupted
        writer left behind go first; a commit that lost a race to another process is fine."""
        for tmp in self.stage.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        shutil.rmtree(self.stage / ".work", ignore_errors=True)
        shutil.rmtree(self.stage / ".locks", ignore_errors=True)
        self._write_release_labels()
        try:
            os.replace(self.stage, self.final)
        except OSError:
            if self.stage.exists() or not self.final.exists():
                raise
        return self.final
