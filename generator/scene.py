"""From a scene spec to planned videos: device parameters, camera, schedules, anomalies, nuisances.

Everything here is pure numpy and deterministic in the spec; `render_scene` hands the plans to
the Blender renderer and the writer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ipadgen.contract import SPLITS, video_name
from ipadgen.devices import get_device
from ipadgen.nuisance import Nuisance, sample_nuisance
from ipadgen.params import sample_params
from ipadgen.program import Device, Schedule, VideoProgram, make_schedule
from ipadgen.spec import SceneSpec

EXTRA_CYCLES = 3  # program beyond the video's end, for anomalies that make the device run early


@dataclass(frozen=True)
class CameraPose:
    location: tuple[float, float, float]
    target: tuple[float, float, float]
    focal_length: float


@dataclass
class VideoPlan:
    split: str
    index: int  # 1-based, as the folder name NN
    program: VideoProgram
    schedule: Schedule
    nuisance: Nuisance
    seed: tuple[int, ...]  # the video's own random stream (also seeds its sensor noise)

    @property
    def n_frames(self) -> int:
        return len(self.program.poses)

    def meta(self) -> dict:
        starts = [int(f) for f in np.nonzero(np.diff(self.program.cycle, prepend=-1))[0]]
        meta = {
            "video": video_name(self.index), "split": self.split, "frames": self.n_frames,
            "fps": self.schedule.fps, "cycle_starts": starts,
            "cycle_lengths": [int(x) for x in self.schedule.lengths],
            "steps": [{"name": n, "start": lo, "end": hi} for n, lo, hi in self.schedule.step_fractions],
            "program_shift": self.program.shift,
            "nuisance": self.nuisance.to_json(),
        }
        if self.split == "testing":
            meta["anomalies"] = self.program.events
        return meta


def scene_device(spec: SceneSpec) -> Device:
    """The device with every parameter fixed: given ones kept, the rest drawn from the seed."""
    cls = get_device(spec.device)
    rng = np.random.default_rng([spec.seed, 0])
    return cls(sample_params(cls.params, rng, spec.params))


def scene_camera(spec: SceneSpec, device: Device) -> CameraPose:
    """A fixed camera per scene, drawn from the seed, as close as it can be while every corner of
    the device's work area stays inside the frame (5% margin)."""
    rng = np.random.default_rng([spec.seed, 1])
    lo, hi = device.bounds()
    centre = (lo + hi) / 2
    azimuth = math.radians(rng.uniform(*spec.camera.azimuth))
    elevation = math.radians(rng.uniform(*spec.camera.elevation))
    direction = np.array([math.sin(azimuth) * math.cos(elevation),
                          -math.cos(azimuth) * math.cos(elevation), math.sin(elevation)])
    forward = -direction
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])]) - centre
    limit = 0.95 * 18.0 / spec.camera.focal_length  # tan of the half field of view, with margin

    def fits(distance: float) -> bool:
        depth = distance - corners @ direction
        return bool(np.all(depth > 0) and np.all(np.abs(corners @ right) / depth <= limit)
                    and np.all(np.abs(corners @ up) / depth <= limit))

    near, far = 0.1, 100.0
    for _ in range(40):  # bisection on the distance
        mid = (near + far) / 2
        near, far = (near, mid) if fits(mid) else (mid, far)
    location = centre + far * direction
    return CameraPose(tuple(location.tolist()), tuple(centre.tolist()), spec.camera.focal_length)


def plan_video(spec: SceneSpec, device: Device, split: str, index: int) -> VideoPlan:
    """One video, from its own random stream: any subset of videos plans the same."""
    seed = (spec.seed, 2 + SPLITS.index(split), index)
    rng = np.random.default_rng(seed)
    schedule = make_schedule(device.steps(), spec.fps, spec.cycles + EXTRA_CYCLES,
                             spec.nuisance.cycle_jitter, rng)
    n_frames = int(schedule.lengths[: spec.cycles].sum())
    events = []
    if split == "testing":
        n_events = int(rng.integers(1, min(spec.max_anomalies_per_video, spec.cycles - 1) + 1))
        cycles = np.sort(rng.choice(np.arange(1, spec.cycles), size=n_events, replace=False))
        for cycle in cycles:
            kind = device.anomalies[spec.anomalies[int(rng.integers(len(spec.anomalies)))]]
            events.append(kind.plan(device, schedule, int(cycle), rng))
    program = device.play(schedule, n_frames, events)
    nuisance = sample_nuisance(spec.nuisance, n_frames, spec.fps, rng)
    return VideoPlan(split, index, program, schedule, nuisance, seed)


def video_jobs(spec: SceneSpec) -> list[tuple[str, int]]:
    return ([("training", i) for i in range(1, spec.train_videos + 1)]
            + [("testing", i) for i in range(1, spec.test_videos + 1)])
