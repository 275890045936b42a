"""The on-disk data contract: the IPAD layout as ipadgen writes it and ipad-detect reads it.

One module for both packages (README, "Data format"): the folder and file names and the period
record. It imports numpy only, so the detector imports it without bpy and the generator without
torch::

    <root>/<scene>/{training,testing}/frames/<NN>/<iii>.jpg   NN = 01, 02 …; iii = 000, 001 …
    <root>/<scene>/testing/masks/<NN>/<iii>.png               ours: the anomalous parts, white
    <root>/<scene>/test_label/<NNN>.npy                       1-D uint8 per test video (01 ↔ 001.npy)
    <root>/<scene>/frame_labels_<scene>.npy                   the same, joined, as the IPAD authors'
                                                              evaluation code reads them: shape (1, N)
    <root>/<scene>/{training,testing}/period/<NN>.npy         ours: PERIOD_DTYPE per frame
    <root>/<scene>/{training,testing}/meta/<NN>.json          ours: cycle boundaries, anomalies
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import numpy as np

SPLITS = ("training", "testing")
FRAMES, MASKS, PERIOD, META = "frames", "masks", "period", "meta"  # folders of a split
TEST_LABEL = "test_label"  # folder of a scene
FRAME_SUFFIX, MASK_SUFFIX = ".jpg", ".png"

# period/<NN>.npy: per frame the cycle index and the phase in [0, 1) within that cycle.
PERIOD_DTYPE = np.dtype([("cycle", "<i4"), ("phase", "<f8")])

# A frame file as readers accept it: zero-based, at least three digits (000.jpg … 1234.jpg).
FRAME_NAME = re.compile(r"^(\d{3,})\.jpg$")


def video_name(index: int) -> str:
    """Video folder (or file stem) of the 1-based video `index`: 01, 02 …"""
    return f"{index:02d}"


def label_name(video: int | str) -> str:
    """IPAD pairs video folder 01 with label file 001.npy; `video` is the index or the folder name."""
    return f"{int(video):03d}.npy"


def frame_name(i: int, n_frames: int) -> str:
    """Stem of frame `i` of a video of `n_frames`: 000, 001 …, wider when the video needs it."""
    return f"{i:0{max(3, len(str(n_frames - 1)))}d}"


def label_path(scene_dir: Path, video: int | str) -> Path:
    return Path(scene_dir) / TEST_LABEL / label_name(video)


def release_labels_name(scene: str) -> str:
    """The one label file of scene `scene` that the IPAD authors' evaluation code reads."""
    return f"frame_labels_{scene}.npy"


def release_labels_path(scene_dir: Path) -> Path:
    """Where the IPAD authors' evaluation code looks for a scene's frame labels."""
    scene_dir = Path(scene_dir)
    return scene_dir / release_labels_name(scene_dir.name)


def period_path(scene_dir: Path, split: str, video: str) -> Path:
    return Path(scene_dir) / split / PERIOD / f"{video}.npy"


def meta_path(scene_dir: Path, split: str, video: str) -> Path:
    return Path(scene_dir) / split / META / f"{video}.json"


# A write that fails for want of room (a full disk, a quota, a read-only mount): the CLIs say so in
# one line, as a data error; any other OSError is a bug and keeps its traceback.
OUT_OF_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def write_atomically(path: Path, write) -> None:
    """A file written whole or not at all: `write(fh)` fills a temporary beside it, which is then
    renamed into place; a write that fails (a full disk) leaves neither the file nor the temporary."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as fh:
            write(fh)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def process_running(pid: int) -> bool:
    """Whether process `pid` runs: the owner of a lock or a temporary left behind (both packages
    ask). A zombie (killed, not yet reaped: a container's init may never reap it) does not: its lock
    or temporary is stale."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    if not Path("/proc/self").exists():  # no procfs: a zombie cannot be told apart
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # it ended meanwhile
    return state != "Z"
