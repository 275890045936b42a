"""Fixtures that write small datasets in the IPAD layout with numpy and PIL.

The "device" is a bright square circling a dark background, one lap per cycle of
CYCLE_FRAMES frames. Test videos carry anomalies: a stall (the square stops, its phase with
it) and a wrong colour (the square turns red).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FRAME_SIZE = 48
CYCLE_FRAMES = 12
SQUARE = 10


def render_frame(phase: float, colour=(235, 235, 235), size: int = FRAME_SIZE) -> np.ndarray:
    """A dark frame with a square on a circle at angle 2π·phase."""
    frame = np.full((size, size, 3), 20, dtype=np.uint8)
    radius = size / 2 - SQUARE / 2 - 3
    cx = size / 2 + radius * np.cos(2 * np.pi * phase)
    cy = size / 2 + radius * np.sin(2 * np.pi * phase)
    x0, y0 = int(round(cx - SQUARE / 2)), int(round(cy - SQUARE / 2))
    frame[y0:y0 + SQUARE, x0:x0 + SQUARE] = colour
    return frame


def write_video(scene_dir: Path, split: str, name: str, phases: np.ndarray, colours=None,
                labels: np.ndarray | None = None, period_format: str | None = "columns") -> None:
    """Write frames, and optionally the period file (structured or (N, 2) columns) and labels."""
    frame_dir = scene_dir / split / "frames" / name
    frame_dir.mkdir(parents=True, exist_ok=True)
    for i, phase in enumerate(phases):
        colour = colours[i] if colours is not None else (235, 235, 235)
        Image.fromarray(render_frame(phase, colour)).save(frame_dir / f"{i:03d}.jpg", quality=95)
    cycles = np.floor(np.cumsum(np.r_[0, np.mod(np.diff(phases), 1.0)]) + phases[0]).astype(np.int64)
    if period_format:
        (scene_dir / split / "period").mkdir(parents=True, exist_ok=True)
        if period_format == "structured":
            period = np.zeros(len(phases), dtype=[("cycle", "<i4"), ("phase", "<f8")])  # as ipadgen writes
            period["cycle"], period["phase"] = cycles, phases
        else:
            period = np.stack([cycles, phases], axis=1).astype(np.float64)
        np.save(scene_dir / split / "period" / f"{name}.npy", period)
        (scene_dir / split / "meta").mkdir(parents=True, exist_ok=True)
        (scene_dir / split / "meta" / f"{name}.json").write_text(json.dumps({"cycle_frames": CYCLE_FRAMES}))
    if labels is not None:
        (scene_dir / "test_label").mkdir(parents=True, exist_ok=True)
        np.save(scene_dir / "test_label" / f"{int(name):03d}.npy", labels.astype(np.uint8))


def normal_phases(num_frames: int, start: float = 0.0) -> np.ndarray:
    return np.mod(start + np.arange(num_frames) / CYCLE_FRAMES, 1.0)


def write_scene(root: Path, scene: str = "S01", num_frames: int = 48, train_videos: int = 2,
                with_period: bool = True) -> Path:
    """One scene: normal training videos; test 01 stalls, 02 turns red, 03 is normal."""
    scene_dir = root / scene
    fmt_train = "structured" if with_period else None
    fmt_test = "columns" if with_period else None
    for v in range(train_videos):
        write_video(scene_dir, "training", f"{v + 1:02d}", normal_phases(num_frames, 0.25 * v),
                    period_format=fmt_train)
    anomaly = slice(num_frames // 2 - 6, num_frames // 2 + 6)

    stall = normal_phases(num_frames)
    stall[anomaly] = stall[anomaly.start]
    stall[anomaly.stop:] = np.mod(stall[anomaly.start] + np.arange(1, num_frames - anomaly.stop + 1)
                                  / CYCLE_FRAMES, 1.0)
    labels = np.zeros(num_frames, np.uint8)
    labels[anomaly.start + 1:anomaly.stop] = 1  # the first stalled frame still looks normal
    write_video(scene_dir, "testing", "01", stall, labels=labels, period_format=fmt_test)

    colours = [(235, 235, 235)] * num_frames
    colours[anomaly] = [(235, 30, 30)] * (anomaly.stop - anomaly.start)
    labels = np.zeros(num_frames, np.uint8)
    labels[anomaly] = 1
    write_video(scene_dir, "testing", "02", normal_phases(num_frames, 0.5), colours=colours, labels=labels,
                period_format=fmt_test)

    write_video(scene_dir, "testing", "03", normal_phases(num_frames, 0.1),
                labels=np.zeros(num_frames, np.uint8), period_format=fmt_test)
    return scene_dir


@pytest.fixture(scope="session")
def ipad_root(tmp_path_factory) -> Path:
    """A read-only dataset root with scenes S01 and S02 (period labels) and R01 (none, like real IPAD)."""
    root = tmp_path_factory.mktemp("ipad")
    write_scene(root, "S01")
    write_scene(root, "S02", num_frames=40)
    write_scene(root, "R01", with_period=False)
    return root


@pytest.fixture
def make_scene(tmp_path):
    """Write a fresh scene under tmp_path (for tests that break it on purpose)."""
    def make(scene: str = "S01", **kwargs) -> Path:
        return write_scene(tmp_path, scene, **kwargs)
    return make
