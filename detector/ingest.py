"""`ipad-detect import`: footage into the IPAD layout, as numbered JPEG frames.

Each video file becomes `<root>/<scene>/<split>/frames/<NN>/000.jpg, 001.jpg, …` (numbered from 0,
as the IPAD release's loader requires; NN continues after the split's existing videos), written
into a hidden folder and renamed into place when whole, so an interrupted import leaves no half
video. What was done to each file (its rate, resampling, crop, size) is kept in
`<root>/<scene>/imported.json`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from ipad_detect.data import SPLITS, DataError, check_scene_name, entry_name
from ipad_detect.footage import Crop, decode_video
from ipadgen.contract import FRAME_SUFFIX, FRAMES, frame_name, video_name

JPEG_QUALITY = 95


@dataclass
class Imported:
    video: str  # its folder name in the layout
    source: str
    frames: int
    source_frames: int
    fps: float
    source_fps: float
    size: int
    crop: list[int] | None
    note: str


def _next_index(frames_dir: Path) -> int:
    names = [entry_name(p) for p in frames_dir.iterdir()] if frames_dir.is_dir() else []
    return max((int(n) for n in names if n.isdigit()), default=0) + 1


def import_footage(files: list[Path], root: Path, scene: str, split: str, size: int = 256,
                   fps: float | None = None, crop: Crop | None = None, progress: bool = True) -> list[Imported]:
    """Decode every file (to size x size at a constant rate) and write it as the split's next video."""
    check_scene_name(scene)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if size < 16:
        raise DataError(f"--size {size} is not allowed; frames are at least 16 pixels a side (the IPAD release: 256)")
    frames_dir = Path(root) / scene / split / FRAMES
    frames_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for file in files:
        decoded = decode_video(Path(file), size, fps, crop, progress=progress)
        name = video_name(_next_index(frames_dir))
        staging = frames_dir / f".{name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for i, frame in enumerate(decoded.frames):
            Image.fromarray(frame).save(staging / f"{frame_name(i, len(decoded.frames))}{FRAME_SUFFIX}",
                                        quality=JPEG_QUALITY)
        os.replace(staging, frames_dir / name)
        note = decoded.note
        width, height = decoded.source_size if crop is None else (crop.w, crop.h)
        if width != height:
            note = "; ".join(filter(None, [note, f"the {width}x{height} picture was squeezed to {size}x{size} "
                                                 f"(--crop x,y,w,h with w = h keeps its proportions)"]))
        done.append(Imported(video=name, source=str(Path(file).resolve()), frames=len(decoded.frames),
                             source_frames=decoded.source_frames, fps=decoded.fps, source_fps=decoded.source_fps,
                             size=size, crop=None if crop is None else [crop.x, crop.y, crop.w, crop.h],
                             note=note))
        _record(Path(root) / scene / "imported.json", split, done[-1])
    return done


def _record(path: Path, split: str, entry: Imported) -> None:
    """Append to the scene's import record, atomically."""
    record = json.loads(path.read_text()) if path.is_file() else {}
    record.setdefault(split, []).append(asdict(entry))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=1))
    os.replace(temporary, path)
