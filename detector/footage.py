"""Video files in, through opencv-python's VideoCapture: decoding, and turning footage into the layout.

Factory footage comes as files (mp4, avi, mkv, … anything VideoCapture opens) or streams. Every
command that reads a video folder of the IPAD layout also reads a video file in its place
(`<split>/frames/<NN>.mp4` beside or instead of `<split>/frames/<NN>/`, data.py), and
`ipad-detect import` writes footage into the layout as numbered JPEG frames, once, so that
training reads it as fast as generated data.

Frame rate: a file whose frame timestamps are irregular (variable frame rate, common from phones
and network cameras) is resampled to a constant rate by its timestamps (each output instant takes
the newest frame shown by then), and the report says so; `fps` asks for a rate of one's own (the
same resampling). The detector's clips assume a constant rate: its phase and motion are per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".ts")
IRREGULAR = 0.25  # frame intervals further than this share from their median: a variable frame rate


class FootageError(ValueError):
    """A video file or stream that cannot be used; the message says what and what is allowed."""


def is_video_file(path: Path | str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class Crop:
    """A rectangle of the source picture in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> "Crop":
        parts = text.split(",")
        if len(parts) != 4 or not all(p.strip().lstrip("-").isdigit() for p in parts):
            raise FootageError(f"crop {text!r} is not x,y,w,h (four integers in pixels, e.g. 80,0,480,480)")
        crop = cls(*(int(p) for p in parts))
        if crop.x < 0 or crop.y < 0 or crop.w < 1 or crop.h < 1:
            raise FootageError(f"crop {text!r}: x and y must be 0 or more, w and h at least 1")
        return crop

    def check(self, width: int, height: int, source: str) -> None:
        if self.x + self.w > width or self.y + self.h > height:
            raise FootageError(f"crop {self.x},{self.y},{self.w},{self.h} reaches outside the {width}x{height} "
                               f"picture of {source}; it must fit in x + w <= {width}, y + h <= {height}")


@dataclass
class Decoded:
    """Frames of one video (uint8 [N, H, W, 3], RGB) and what was done to get them."""

    frames: np.ndarray
    source_fps: float
    fps: float
    source_frames: int
    source_size: tuple[int, int]  # width, height of the picture in the file
    note: str = ""  # resampling done, said to the user


def open_capture(source: Path | str | int):
    """A VideoCapture that is open, or a FootageError naming the source."""
    import cv2

    if isinstance(source, Path) and not source.is_file():
        raise FootageError(f"video file {source} does not exist")
    capture = cv2.VideoCapture(str(source) if isinstance(source, Path) else source)
    if not capture.isOpened():
        raise FootageError(f"opencv cannot open {source}: not a video file, or a codec this opencv-python "
                           f"build lacks; allowed: files VideoCapture opens ({', '.join(VIDEO_SUFFIXES)}, …)")
    return capture


def constant_rate_picks(times_ms: np.ndarray, fps: float) -> np.ndarray:
    """Index of the frame to show at each instant k / fps (k = 0, 1, …) of a constant-rate copy:
    the newest frame whose timestamp is not after it (sample and hold)."""
    start, end = times_ms[0], times_ms[-1]
    instants = start + np.arange(int(np.floor((end - start) * fps / 1000.0 + 1e-6)) + 1) * 1000.0 / fps
    return np.searchsorted(times_ms, instants + 1e-6, side="right") - 1


def irregular_rate(times_ms: np.ndarray) -> bool:
    """Whether the frame intervals vary past IRREGULAR of their median (a variable frame rate)."""
    steps = np.diff(times_ms)
    if len(steps) < 2 or np.median(steps) <= 0:
        return False
    return bool(np.abs(steps / np.median(steps) - 1).max() > IRREGULAR)


def _prepare(frame_bgr: np.ndarray, crop: Crop | None, size: int | None) -> np.ndarray:
    import cv2

    if crop is not None:
        frame_bgr = frame_bgr[crop.y:crop.y + crop.h, crop.x:crop.x + crop.w]
    if size is not None and frame_bgr.shape[:2] != (size, size):
        frame_bgr = cv2.resize(frame_bgr, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def decode_video(path: Path, size: int | None = None, fps: float | None = None, crop: Crop | None = None,
                 resample: bool = True, progress: bool = False) -> Decoded:
    """Every frame of a video file, cropped then resized to size x size (None: as it is), at a
    constant rate: `fps`, or the file's own when its timestamps are regular. `resample=False`
    keeps every decoded frame as it is (a file in the layout: its labels count those)."""
    import cv2

    if fps is not None and not fps > 0:
        raise FootageError(f"--fps {fps} is not allowed; give a positive frame rate")
    path = Path(path)
    capture = open_capture(path)
    source_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    frames, times = [], []
    source_size = (0, 0)
    bar = None
    if progress:
        from tqdm import tqdm

        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        bar = tqdm(total=total, desc=f"decode {path.name}", unit="frame")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if not frames:
                source_size = (frame.shape[1], frame.shape[0])
                if crop is not None:
                    crop.check(*source_size, str(path))
            times.append(capture.get(cv2.CAP_PROP_POS_MSEC))
            frames.append(_prepare(frame, crop, size))
            if bar is not None:
                bar.update()
    finally:
        capture.release()
        if bar is not None:
            bar.close()
    if not frames:
        raise FootageError(f"{path} opens but holds no frames that opencv can decode")
    stack = np.stack(frames)
    times_ms = np.asarray(times, dtype=np.float64)
    if len(stack) > 1 and not np.all(np.diff(times_ms) > 0):  # no usable timestamps: count frames
        times_ms = np.arange(len(stack)) * 1000.0 / (source_fps or 1.0)
    steps = np.diff(times_ms)
    measured = 1000.0 / float(np.median(steps)) if len(steps) else (source_fps or 1.0)
    variable = irregular_rate(times_ms)
    if not resample or (fps is None and not variable):
        return Decoded(stack, source_fps or measured, source_fps or measured, len(stack), source_size)
    target = fps if fps is not None else measured
    picks = constant_rate_picks(times_ms, target)
    why = (f"variable frame rate (intervals {steps.min():.0f}-{steps.max():.0f} ms)" if variable
           else f"{source_fps or measured:g} fps asked as {target:g} fps")
    note = f"{why}: resampled by timestamps to a constant {target:g} fps, {len(stack)} -> {len(picks)} frames"
    return Decoded(stack[picks], source_fps or measured, target, len(stack), source_size, note)


def count_frames(path: Path) -> int:
    """Frames a video file decodes to (read through: containers' frame counts are often wrong)."""
    capture = open_capture(Path(path))
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise FootageError(f"{path} opens but holds no frames that opencv can decode")
    return count
