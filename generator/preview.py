"""Contact sheets: a few frames per video, anomaly masks outlined, so a person can look at a scene."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ipadgen.contract import FRAME_SUFFIX, FRAMES, MASK_SUFFIX, MASKS, SPLITS, label_path, meta_path

TILE = 192
OUTLINE = (255, 40, 40)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the border of a boolean mask, thickened to stay visible after downscaling."""
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    edge = np.asarray(im.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(5))) > 0
    return edge


def _pick_frames(n: int, k: int, spans: list[tuple[int, int]]) -> list[int]:
    """k frames spread over the video, with the middle of every anomaly span among them."""
    must = [(a + b) // 2 for a, b in spans]
    rest = max(k - len(must), 1)
    spread = np.linspace(0, n - 1, rest + 2)[1:-1].round().astype(int).tolist()
    return sorted(set(must + spread))[: max(k, len(must))]


def annotate(rgb: np.ndarray, mask: np.ndarray | None, caption: str, anomalous: bool) -> Image.Image:
    """A captioned tile; a red caption marks an anomalous frame, a red line outlines its mask."""
    rgb = rgb.copy()
    if mask is not None and mask.any():
        rgb[_outline(mask)] = OUTLINE
    tile = Image.fromarray(rgb).resize((TILE, TILE), Image.BILINEAR)
    draw = ImageDraw.Draw(tile)
    draw.rectangle([0, 0, TILE, 13], fill=(150, 0, 0) if anomalous else (0, 0, 0))
    draw.text((3, 1), caption, fill=(255, 255, 255))
    return tile


def _tile(scene: Path, split: str, video: str, frame_file: str, mask: np.ndarray | None,
          caption: str, anomalous: bool) -> Image.Image:
    with Image.open(scene / split / FRAMES / video / frame_file) as im:
        return annotate(np.asarray(im.convert("RGB")), mask, caption, anomalous)


def grid(rows: list[list[Image.Image]]) -> Image.Image:
    """Tiles pasted row by row on a dark sheet."""
    width = max(len(r) for r in rows) * TILE
    sheet = Image.new("RGB", (width, len(rows) * TILE), (30, 30, 30))
    for y, tiles in enumerate(rows):
        for x, tile in enumerate(tiles):
            sheet.paste(tile, (x * TILE, y * TILE))
    return sheet


def contact_sheet(scene: Path, out: Path, frames_per_video: int = 6) -> Path:
    """One row per video; a red caption marks anomalous frames, a red line outlines the mask."""
    rows = []
    for split in SPLITS:
        frames_root = scene / split / FRAMES
        if not frames_root.is_dir():
            continue
        for video_dir in sorted(p for p in frames_root.iterdir() if p.is_dir()):
            video = video_dir.name
            files = sorted(p.name for p in video_dir.glob(f"*{FRAME_SUFFIX}"))
            meta = json.loads(meta_path(scene, split, video).read_text())
            labels = (np.load(label_path(scene, video))
                      if split == "testing" else np.zeros(len(files), dtype=np.uint8))
            spans = [(a["first_frame"], a["last_frame"]) for a in meta.get("anomalies", [])
                     if a["first_frame"] is not None]
            kinds = {i: a["kind"] for a in meta.get("anomalies", []) if a["first_frame"] is not None
                     for i in range(a["first_frame"], a["last_frame"] + 1)}
            tiles = []
            for f in _pick_frames(len(files), frames_per_video, spans):
                mask = None
                if split == "testing":
                    mask_path = scene / split / MASKS / video / files[f].replace(FRAME_SUFFIX, MASK_SUFFIX)
                    with Image.open(mask_path) as m:
                        mask = np.asarray(m) > 127
                caption = f"{split[:5]} {video} f{f}" + (f" {kinds[f]}" if labels[f] else "")
                tiles.append(_tile(scene, split, video, files[f], mask, caption, bool(labels[f])))
            rows.append(tiles)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid(rows).save(out)
    return out
