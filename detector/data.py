"""Reader of the IPAD dataset layout and the 16-frame clip sampler.

Layout (README, "Data format"; the names are `ipadgen.contract`'s, shared with the generator)::

    <root>/<scene>/training/frames/<NN>/<iii>.jpg
    <root>/<scene>/testing/frames/<NN>/<iii>.jpg
    <root>/<scene>/test_label/<NNN>.npy            video folder 01 pairs with 001.npy
    <root>/<scene>/{training,testing}/period/<NN>.npy   ours: per frame cycle index and phase
    <root>/<scene>/{training,testing}/meta/<NN>.json    ours: cycle boundaries, anomalies

A video may also be a file in its folder's place, `<split>/frames/<NN>.mp4` (any file opencv's
VideoCapture opens, footage.py): its frames are decoded when first used, every one as it is.

The IPAD authors' evaluation code reads one array `<scene>/frame_labels_<scene>.npy` of shape
(1, all test frames joined in sorted video order) instead of `test_label/`; a scene that has only
that file is read too, split by the test videos' frame counts.

Real IPAD label arrays are sometimes longer or shorter than their video. We warn, naming the
video, and align: a longer array is truncated to the number of frames, a shorter one is padded
by repeating its last value (the state at the end of the video continues).

Released IPAD has no period files. For such videos `period_estimation` estimates the cycle length
from the normal training videos and the phase of every frame.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ipad_detect.footage import VIDEO_SUFFIXES, count_frames, decode_video, is_video_file
from ipadgen.contract import (
    FRAME_NAME,
    FRAMES,
    SPLITS,
    TEST_LABEL,
    label_path,
    meta_path,
    period_path,
    release_labels_path,
)


class DataError(ValueError):
    """A dataset on disk does not follow the IPAD layout; the message says what and where."""


@dataclass
class Video:
    """One video of a split: its frame files and whatever labels exist beside it."""

    scene: str
    split: str
    name: str  # the frame folder name, e.g. "01"
    frame_paths: list[Path]  # empty for a video file
    labels: np.ndarray | None = None  # uint8 [N], 1 = anomalous; testing videos only
    phase: np.ndarray | None = None  # float [N] in [0, 1)
    cycle: np.ndarray | None = None  # int [N]
    meta: dict | None = None
    file: Path | None = None  # a video file in place of the frame folder
    file_frames: int = 0  # ... and how many frames it decodes to

    @property
    def num_frames(self) -> int:
        return self.file_frames if self.file is not None else len(self.frame_paths)

    @property
    def frame_dir(self) -> Path:
        """Where the video is: its frame folder, or its file."""
        return self.file if self.file is not None else self.frame_paths[0].parent

    def read(self, image_size: int) -> np.ndarray:
        """Its frames, uint8 [N, image_size, image_size, 3]."""
        if self.file is None:
            return read_frames(self.frame_paths, image_size)
        frames = decode_video(self.file, image_size, resample=False).frames
        if len(frames) != self.file_frames:
            raise DataError(f"{self.file} decoded to {len(frames)} frames, {self.file_frames} when counted")
        return frames

    def __str__(self) -> str:
        return f"{self.scene}/{self.split}/frames/{self.name}"


@dataclass
class Scene:
    root: Path
    name: str
    training: list[Video] = field(default_factory=list)
    testing: list[Video] = field(default_factory=list)


# ----------------------------------------------------------------------------- layout reading


def list_scenes(root: Path | str) -> list[str]:
    """Names of the folders under `root` that contain a training or testing split."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any((p / s).is_dir() for s in SPLITS))


def check_scene_name(scene: str) -> None:
    """Refuse a scene name that is not one plain folder name: output paths are built from it
    (`<out>/<scene>/`, `runs/<scene>-...`), and `../x` would send them outside their folder."""
    if not scene or scene in (".", "..") or "/" in scene or "\\" in scene or Path(scene).name != scene:
        raise DataError(f"scene name {scene!r} is not allowed: give the name of one folder under the data root "
                        f"(no '/', '\\' or '..')")


def load_scene(root: Path | str, scene: str, splits: tuple[str, ...] = SPLITS) -> Scene:
    """Read the layout of one scene (file lists and labels; frames are decoded later)."""
    check_scene_name(scene)
    root = Path(root)
    scene_dir = root / scene
    if not scene_dir.is_dir():
        existing = ", ".join(list_scenes(root)) or "none"
        raise DataError(f"scene folder {scene_dir} does not exist; scenes under {root}: {existing}")
    result = Scene(root=root, name=scene)
    for split in splits:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        frames_dir = scene_dir / split / FRAMES
        if not frames_dir.is_dir():
            existing = ", ".join(list_scenes(root)) or "none"
            raise DataError(
                f"split folder {frames_dir} does not exist (expected <root>/<scene>/{split}/frames/<NN>/); "
                f"scenes under {root}: {existing}"
            )
        videos = [_read_video(scene_dir, scene, split, d) for d in _video_entries(frames_dir)]
        if split == "testing" and not (scene_dir / TEST_LABEL).is_dir():
            _read_release_labels(scene_dir, videos)
        if split == "training":
            result.training = videos
        else:
            result.testing = videos
    return result


def entry_name(entry: Path) -> str:
    """A video's name in its split: its folder's name, or its file's without the suffix."""
    return entry.stem if entry.is_file() else entry.name


def _video_entries(frames_dir: Path) -> list[Path]:
    """The videos of a split: frame folders and video files, in name order; one of each name is
    ambiguous."""
    entries = sorted((p for p in frames_dir.iterdir()
                      if p.is_dir() or (p.is_file() and is_video_file(p) and not p.name.startswith("."))),
                     key=entry_name)
    if not entries:
        raise DataError(f"empty scene: {frames_dir} holds no video folders or files (expected 01/, 02/, … "
                        f"or 01.mp4, 02.mp4, …)")
    names = [entry_name(p) for p in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{frames_dir} holds video {twice[0]} twice (a folder and a file, or two files); "
                        f"keep one")
    return entries


def video_from_frame_dir(frame_dir: Path | str) -> Video:
    """One video folder or video file, with the labels, period and meta found next to it in the
    layout.

    `<scene>/<split>/frames/<NN>` (or `<NN>.mp4`) is read like `load_scene` reads it; a folder or
    file outside the layout is read as bare frames (no labels).
    """
    frame_dir = Path(frame_dir).resolve()
    if not frame_dir.is_dir() and not (frame_dir.is_file() and is_video_file(frame_dir)):
        raise DataError(f"{frame_dir} is not a folder of frames or a video file; pass a video folder such as "
                        f"<root>/<scene>/testing/frames/01 holding 000.jpg, 001.jpg, …, or a video file "
                        f"({', '.join(VIDEO_SUFFIXES)})")
    split_dir = frame_dir.parent.parent
    name = entry_name(frame_dir)
    if frame_dir.parent.name == FRAMES and split_dir.name in SPLITS and name.isdigit():
        scene_dir, split = split_dir.parent, split_dir.name
        if split == "testing" and not (scene_dir / TEST_LABEL).is_dir():  # as load_scene reads labels
            siblings = [_read_video(scene_dir, scene_dir.name, split, p) for p in _video_entries(frame_dir.parent)]
            _read_release_labels(scene_dir, siblings)
            return next(v for v in siblings if v.name == name)
        return _read_video(scene_dir, scene_dir.name, split, frame_dir)
    return _video_at("", "", name, frame_dir)


def _video_at(scene: str, split: str, name: str, entry: Path) -> Video:
    """The video of a frame folder or a video file (its frames counted)."""
    if entry.is_file():
        return Video(scene=scene, split=split, name=name, frame_paths=[], file=entry, file_frames=count_frames(entry))
    return Video(scene=scene, split=split, name=name, frame_paths=_frame_paths(entry))


def _read_video(scene_dir: Path, scene: str, split: str, entry: Path) -> Video:
    name = entry_name(entry)
    if not name.isdigit():
        kind = "file" if entry.is_file() else "folder"
        raise DataError(f"video {kind} {entry} is not numbered; allowed: 01, 02, … (digits only)")
    video = _video_at(scene, split, name, entry)
    if split == "testing":
        video.labels = _read_labels(label_path(scene_dir, name), video)
    period_file = period_path(scene_dir, split, name)
    if period_file.is_file():
        video.cycle, video.phase = read_period(period_file, video.num_frames)
    meta_file = meta_path(scene_dir, split, name)
    if meta_file.is_file():
        video.meta = json.loads(meta_file.read_text())
    return video


def _frame_paths(video_dir: Path) -> list[Path]:
    files = [p for p in video_dir.iterdir() if not p.name.startswith(".")]
    if not files:
        raise DataError(f"empty video: {video_dir} holds no frames (expected 000.jpg, 001.jpg, …)")
    numbered = {}
    for path in files:
        match = FRAME_NAME.match(path.name)
        if not match:
            raise DataError(f"unexpected file {path}; allowed frame names: 000.jpg, 001.jpg, … (zero-based, .jpg)")
        numbered[int(match.group(1))] = path
    missing = sorted(set(range(len(numbered))) - set(numbered))
    if missing:
        raise DataError(
            f"frames of {video_dir} are not numbered 000.jpg … {len(numbered) - 1:03d}.jpg without gaps; "
            f"first missing index: {missing[0]:03d}"
        )
    return [numbered[i] for i in range(len(numbered))]


def _read_release_labels(scene_dir: Path, videos: list[Video]) -> None:
    """Labels of the test videos from `frame_labels_<scene>.npy` (shape (1, all test frames), in
    sorted video order), when the scene has no `test_label/`."""
    path = release_labels_path(scene_dir)
    if not path.is_file():
        return
    try:
        joined = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"label file {path} cannot be read as a numpy array ({error})") from None
    joined = joined.reshape(-1)
    total = sum(v.num_frames for v in videos)
    if len(joined) != total:
        raise DataError(f"label file {path} has {len(joined)} entries but the {len(videos)} test videos have "
                        f"{total} frames together; it must hold one label per test frame, videos in name order")
    start = 0
    for video in videos:
        video.labels = joined[start:start + video.num_frames].astype(np.uint8)
        start += video.num_frames


def _read_labels(path: Path, video: Video) -> np.ndarray | None:
    if not path.is_file():
        return None
    labels = np.load(path, allow_pickle=False).reshape(-1).astype(np.uint8)
    n = video.num_frames
    if len(labels) > n:
        warnings.warn(f"label file {path} has {len(labels)} entries but video {video} has {n} frames; "
                      f"truncated the labels to {n}", stacklevel=2)
        labels = labels[:n]
    elif len(labels) < n:
        last = labels[-1] if len(labels) else 0
        warnings.warn(f"label file {path} has {len(labels)} entries but video {video} has {n} frames; "
                      f"padded the labels with the last value ({int(last)}) to {n}", stacklevel=2)
        labels = np.concatenate([labels, np.full(n - len(labels), last, dtype=np.uint8)])
    return labels


def read_period(path: Path, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Cycle index and phase per frame from a period file.

    Accepts a structured array with fields "cycle" and "phase", or an (N, 2) array whose
    columns are [cycle, phase].
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # not .npy, cut short, or pickled objects
        raise DataError(f"period file {path} cannot be read as a numpy array ({error})") from None
    if not isinstance(data, np.ndarray):
        raise DataError(f"period file {path} is an .npz archive; allowed: one .npy array")
    if data.dtype.names and {"cycle", "phase"} <= set(data.dtype.names):
        cycle, phase = data["cycle"], data["phase"]
    elif data.ndim == 2 and data.shape[1] == 2:
        cycle, phase = data[:, 0], data[:, 1]
    else:
        raise DataError(f"period file {path} has shape {data.shape} and dtype {data.dtype}; allowed: "
                        f"(N, 2) [cycle, phase] or a structured array with fields 'cycle' and 'phase'")
    if len(phase) != num_frames:
        raise DataError(f"period file {path} has {len(phase)} entries but its video has {num_frames} frames")
    phase = np.ascontiguousarray(phase, dtype=np.float64)  # a structured array's field is a strided view
    if phase.size and not (np.isfinite(phase).all() and phase.min() >= 0 and phase.max() < 1):
        raise DataError(f"period file {path} has phases outside [0, 1)")
    return np.ascontiguousarray(cycle, dtype=np.int64), phase


# ----------------------------------------------------------------------------- frames


def read_frames(paths: list[Path], image_size: int) -> np.ndarray:
    """Decode frames to uint8 [N, H, W, 3], resized to image_size × image_size.

    Every frame must have the size of the video's first frame; a different one is an error
    (naming the file), as is a file PIL cannot read.
    """
    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    first_size = None
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"cannot read frame {path}: {error}") from None
        if first_size is None:
            first_size = image.size
        elif image.size != first_size:
            raise DataError(f"frame {path} is {image.size[0]}x{image.size[1]} but the video's first frame is "
                            f"{first_size[0]}x{first_size[1]}; all frames of a video must have one size")
        if image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.BILINEAR)
        out[i] = np.asarray(image)
    return out


def clips_to_float(clips: torch.Tensor) -> torch.Tensor:
    """uint8 clips [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1], contiguous, on the clips'
    device: the training loader moves uint8 clips and they become float on the GPU."""
    return clips.permute(0, 4, 1, 2, 3).to(torch.float32, memory_format=torch.contiguous_format) / 127.5 - 1.0


def to_clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1]."""
    return clips_to_float(torch.from_numpy(np.ascontiguousarray(frames))[None])[0]


def clip_starts(num_frames: int, clip_len: int = 16, stride: int = 1) -> range:
    """First frame of every clip; a video of N frames gives N - clip_len + 1 clips at stride 1."""
    return range(0, max(num_frames - clip_len + 1, 0), stride)


# ----------------------------------------------------------------------------- phase and cycle length


def mean_phase_advance(videos: list[Video]) -> float | None:
    """Mean phase advance per frame over videos with period labels (None if none have them)."""
    steps = [np.mod(np.diff(v.phase), 1.0) for v in videos if v.phase is not None and v.num_frames > 1]
    if not steps:
        return None
    return float(np.concatenate(steps).mean())


def cycle_length_from_labels(videos: list[Video]) -> float | None:
    """Cycle length in frames from the period labels (None when no video has them)."""
    advance = mean_phase_advance(videos)
    return None if not advance else 1.0 / advance


def phase_bin(phase: float | np.ndarray, phase_bins: int) -> np.ndarray:
    """floor(phase * bins), kept inside [0, bins) against rounding at 1."""
    return np.minimum((np.asarray(phase) * phase_bins).astype(np.int64), phase_bins - 1)


# ----------------------------------------------------------------------------- clip dataset


class FrameCache:
    """Decoded frames per video, read on first use (uint8, so a scene fits in memory).

    With `folder`, each video is decoded once into `<folder>/<scene>/<split>-<name>-<size>px.npy`
    and read back memory-mapped (copy-on-write): a later run, and every DataLoader worker, reads
    those pages instead of decoding JPEGs again. A file older than its video's folder or file, or of another frame
    count, is decoded anew; files are written under a temporary name and renamed into place."""

    def __init__(self, image_size: int, folder: Path | str | None = None):
        self.image_size = image_size
        self.folder = Path(folder) if folder is not None else None
        self._frames: dict[str, np.ndarray] = {}

    def get(self, video: Video) -> np.ndarray:
        key = str(video.frame_dir)
        if key not in self._frames:
            self._frames[key] = video.read(self.image_size) if self.folder is None else self._mapped(video)
        return self._frames[key]

    def _mapped(self, video: Video) -> np.ndarray:
        name = f"{video.split or 'frames'}-{video.name}-{self.image_size}px.npy"
        path = self.folder / (video.scene or "videos") / name
        shape = (video.num_frames, self.image_size, self.image_size, 3)
        if path.is_file() and path.stat().st_mtime >= video.frame_dir.stat().st_mtime:
            frames = np.load(path, mmap_mode="c")
            if frames.shape == shape and frames.dtype == np.uint8:
                return frames
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as f:  # a file object: np.save would add ".npy" to the name
            np.save(f, video.read(self.image_size))
        os.replace(temporary, path)
        return np.load(path, mmap_mode="c")


class ClipDataset(Dataset):
    """Clips of `clip_len` frames at `stride` from a list of videos.

    Item: (clip float [3, T, H, W] in [-1, 1], phase bin of the centre frame as int, or -1 when
    the video has no phase).
    """

    def __init__(self, videos: list[Video], image_size: int, clip_len: int = 16, stride: int = 1,
                 phase_bins: int | None = None, cache: FrameCache | None = None):
        if stride < 1:
            raise DataError(f"clip stride {stride} is not allowed; use a positive integer")
        self.videos = videos
        self.clip_len = clip_len
        self.phase_bins = phase_bins
        self.cache = cache or FrameCache(image_size)
        self.index = [(v, s) for v in videos for s in clip_starts(v.num_frames, clip_len, stride)]
        if not self.index:
            shortest = min(v.num_frames for v in videos) if videos else 0
            raise DataError(f"no clips: every video is shorter than one clip of {clip_len} frames "
                            f"(shortest has {shortest})")

    @property
    def centre(self) -> int:
        return self.clip_len // 2

    def __len__(self) -> int:
        return len(self.index)

    def frames(self, i: int) -> tuple[np.ndarray, int]:
        """Clip i as uint8 frames [T, H, W, 3] and its phase bin target."""
        video, start = self.index[i]
        target = -1
        if self.phase_bins and video.phase is not None:
            target = int(phase_bin(video.phase[start + self.centre], self.phase_bins))
        return self.cache.get(video)[start:start + self.clip_len], target

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        frames, target = self.frames(i)
        return to_clip_tensor(frames), target


class Uint8Clips(Dataset):
    """The clips of a ClipDataset as uint8 tensors [T, H, W, 3]: a quarter of the float bytes to
    collate, pin and copy; the training loop makes them float on its device (`clips_to_float`)."""

    def __init__(self, clips: ClipDataset):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        frames, target = self.clips.frames(i)
        return torch.from_numpy(np.array(frames)), target
