"""Normal variation per frame: light drift and flicker, white balance, light direction, camera shake."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ipadgen.spec import NuisanceSpec


@dataclass(frozen=True)
class Nuisance:
    """Per-frame arrays (length n_frames)."""

    exposure: np.ndarray  # stops added to the view exposure
    temperature: np.ndarray  # white-balance temperature, kelvin
    light_direction: np.ndarray  # (n, 3) unit vectors towards the light
    camera_offset: np.ndarray  # (n, 3) metres
    camera_tilt: np.ndarray  # (n, 3) radians

    def frame(self, i: int) -> dict:
        return {"exposure": float(self.exposure[i]), "temperature": float(self.temperature[i]),
                "light_direction": self.light_direction[i].tolist(),
                "camera_offset": self.camera_offset[i].tolist(),
                "camera_tilt": self.camera_tilt[i].tolist()}

    def to_json(self) -> dict:
        return {"exposure": self.exposure.round(4).tolist(),
                "temperature": self.temperature.round(1).tolist(),
                "light_direction": self.light_direction.round(4).tolist(),
                "camera_offset": self.camera_offset.round(5).tolist(),
                "camera_tilt": self.camera_tilt.round(5).tolist()}


def _drift(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """A slow wave in [-1, 1]: two sinusoids with periods of 5 to 30 seconds."""
    t = np.arange(n) / fps
    periods = rng.uniform(5.0, 30.0, size=2)
    phases = rng.uniform(0, 2 * np.pi, size=2)
    wave = sum(np.sin(2 * np.pi * t / p + ph) for p, ph in zip(periods, phases))
    return wave / 2.0


def sample_nuisance(spec: NuisanceSpec, n: int, fps: float, rng: np.random.Generator) -> Nuisance:
    exposure = spec.light_intensity * _drift(n, fps, rng)
    starts = np.nonzero(rng.random(n) < spec.flicker_rate)[0]
    for s in starts:
        exposure[s:s + int(rng.integers(1, 4))] -= spec.flicker_depth
    temperature = 6500.0 + spec.light_color * _drift(n, fps, rng)
    azimuth = rng.uniform(-0.6, 0.6) + spec.light_direction * _drift(n, fps, rng)
    elevation = 0.9 + 0.5 * spec.light_direction * _drift(n, fps, rng)
    direction = np.stack([np.sin(azimuth) * np.cos(elevation), -np.cos(azimuth) * np.cos(elevation),
                          np.sin(elevation)], axis=1)
    shake = rng.standard_normal((n, 3)) * spec.camera_jitter
    tilt = rng.standard_normal((n, 3)) * spec.camera_jitter * 0.5
    return Nuisance(exposure, temperature, direction, shake, tilt)
