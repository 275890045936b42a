"""The "real-like" look, applied to each rendered frame in numpy: a stand-in for camera footage.

Motion blur (the shutter stays open while the device moves: blend with the previous frame), barrel
lens distortion, sensor noise; JPEG compression comes from the writer's quality. Masks get the same
distortion so they stay true. Deterministic: the noise of a frame comes from the video's seed.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ipadgen.spec import RenderSpec


@lru_cache(maxsize=8)
def _distortion_map(size: int, k1: float) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of every output pixel for radial distortion r' = r (1 + k1 r^2)."""
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    nx, ny = (x - c) / c, (y - c) / c
    factor = 1 + k1 * (nx ** 2 + ny ** 2)
    return ny * factor * c + c, nx * factor * c + c


def _sample(img: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """Bilinear sampling with edge clamping; img is (H, W, C) float."""
    h, w = img.shape[:2]
    sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


class FrameFinisher:
    """Per video: turns raw renders into finished frames (identity for the synthetic style)."""

    def __init__(self, spec: RenderSpec, seed: tuple[int, ...]):
        self.spec = spec
        self.rng = np.random.default_rng(seed)
        self.previous: np.ndarray | None = None

    def frame(self, raw: np.ndarray) -> np.ndarray:
        spec = self.spec
        if spec.style == "synthetic":
            return raw
        img = raw.astype(np.float64)
        if spec.motion_blur > 0 and self.previous is not None:
            img = (1 - spec.motion_blur) * img + spec.motion_blur * self.previous
        self.previous = raw.astype(np.float64)
        if spec.lens_distortion:
            img = _sample(img, *_distortion_map(img.shape[0], spec.lens_distortion))
        img = img + self.rng.normal(0.0, spec.sensor_noise * 255.0, size=img.shape)
        return np.clip(img.round(), 0, 255).astype(np.uint8)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        if self.spec.style == "synthetic" or not self.spec.lens_distortion:
            return mask
        sy, sx = _distortion_map(mask.shape[0], self.spec.lens_distortion)
        return _sample(mask[..., None].astype(np.float64), sy, sx)[..., 0] > 0.5
