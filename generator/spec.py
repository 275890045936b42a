"""Scene specs (pydantic). A spec is complete: spec + seed gives the same pixels every time."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ipadgen.anomalies import CATEGORIES

# A scene is planned whole before its first frame: these bound what a typo can cost (100,000
# cycles planned up front take gigabytes). 200 cycles of a typical 10 s cycle at 10 fps are
# 20,000 frames per video.
MAX_VIDEOS = 1000  # per split
MAX_CYCLES = 200  # per video


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NuisanceSpec(_Spec):
    """Normal variation present in every video, training and testing alike."""

    light_intensity: float = Field(0.25, ge=0, description="slow exposure drift amplitude, stops")
    flicker_rate: float = Field(0.01, ge=0, le=1, description="chance per frame that a flicker starts")
    flicker_depth: float = Field(0.6, ge=0, description="exposure dip of a flicker, stops")
    light_color: float = Field(600.0, ge=0, description="white-balance drift amplitude, kelvin")
    light_direction: float = Field(0.3, ge=0, description="light direction drift amplitude, radians")
    camera_jitter: float = Field(0.004, ge=0, description="camera shake, metres (std)")
    cycle_jitter: float = Field(0.05, ge=0, le=0.3, description="cycle length variation (std, fraction)")

    @classmethod
    def off(cls) -> "NuisanceSpec":
        return cls(light_intensity=0, flicker_rate=0, flicker_depth=0, light_color=0,
                   light_direction=0, camera_jitter=0, cycle_jitter=0)


class CameraSpec(_Spec):
    """Where the scene's fixed camera may stand (drawn once per scene from the seed)."""

    azimuth: tuple[float, float] = (-30.0, 30.0)  # degrees, 0 = straight in front
    elevation: tuple[float, float] = (15.0, 32.0)  # degrees above the horizon
    focal_length: float = Field(35.0, gt=0)  # mm on a 36 mm sensor


class RenderSpec(_Spec):
    resolution: int = Field(256, ge=16, le=4096, description="frame width = height, pixels")
    engine: Literal["workbench", "cycles"] = "workbench"
    samples: int = Field(16, ge=1, description="Cycles samples per pixel")
    jpeg_quality: int = Field(95, ge=10, le=100)
    style: Literal["synthetic", "real"] = Field(
        "synthetic", description="synthetic: clean CAD look (IPAD S01-S12); real: a camera stand-in")
    sensor_noise: float = Field(0.0, ge=0, le=0.2, description="real style: noise std, fraction of 255")
    lens_distortion: float = Field(0.0, ge=-0.3, le=0.3, description="real style: radial k1 (<0 barrel)")
    motion_blur: float = Field(0.0, ge=0, lt=1, description="real style: weight of the previous frame")

    @classmethod
    def real(cls, **overrides) -> "RenderSpec":
        """The real-like stand-in: Cycles, sensor noise, blur, barrel distortion, JPEG at 80."""
        values = dict(engine="cycles", style="real", sensor_noise=0.015, lens_distortion=-0.08,
                      motion_blur=0.35, jpeg_quality=80)
        return cls(**{**values, **overrides})


class SceneSpec(_Spec):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    device: str
    params: dict[str, float] = Field(default_factory=dict,
                                     description="device parameters; missing ones drawn from the seed")
    anomalies: tuple[str, ...] = Field(min_length=1, description="anomaly kinds of the test videos")
    seed: int = Field(0, ge=0)
    train_videos: int = Field(4, ge=0, le=MAX_VIDEOS)
    test_videos: int = Field(4, ge=0, le=MAX_VIDEOS)
    cycles: int = Field(3, ge=1, le=MAX_CYCLES, description="cycles per video")
    max_anomalies_per_video: int = Field(2, ge=1)
    fps: float = Field(10.0, gt=0, le=120)
    render: RenderSpec = RenderSpec()
    nuisance: NuisanceSpec = NuisanceSpec()
    camera: CameraSpec = CameraSpec()

    @model_validator(mode="after")
    def _room_for_anomalies(self):
        if self.test_videos and self.cycles < 2:
            raise ValueError("test videos need cycles >= 2: the first cycle stays normal")
        if self.train_videos + self.test_videos == 0:
            raise ValueError("a scene needs at least one video")
        return self


def resolve_anomalies(device_cls, text: str) -> tuple[str, ...]:
    """'logic', 'stall,load_color', 'all' -> kind names of the device, in declaration order."""
    kinds = device_cls.anomalies
    wanted: set[str] = set()
    for token in (t.strip() for t in text.split(",")):
        if token == "all":
            wanted |= set(kinds)
        elif token in CATEGORIES:
            wanted |= {k for k, v in kinds.items() if v.category == token}
        elif token in kinds:
            wanted.add(token)
        else:
            raise ValueError(
                f"unknown anomaly {token!r} for device {device_cls.name}; allowed: all, "
                f"{', '.join(CATEGORIES)}, {', '.join(kinds)}")
    return tuple(k for k in kinds if k in wanted)
