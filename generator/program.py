"""Cycle programs: what every part of a device does at every frame, in pure numpy.

A device is a set of parts plus a *cycle program*, a pure function of the phase phi in [0, 1)
giving every part's pose and look. A video plays the program cycle after cycle on a *program
clock* u (in frames of the normal schedule). Anomalies are edits: either of the clock (a stall
holds u, a skipped step jumps it) or of the part states over a stretch of program time (a load of
the wrong colour). Labels are computed here, from the program, never read back from Blender.
No bpy in this module.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np


@dataclass(frozen=True)
class PartState:
    """Pose and look of one part in one frame (world frame, metres and radians)."""

    location: tuple[float, float, float]
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color: tuple[float, float, float] | None = None  # None: the part's own colour
    visible: bool = True

    def moved(self, **changes) -> "PartState":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Part:
    """A rigid piece of a device: a primitive of a given full size, centred on its origin.

    `rest`: where the part stands when the cycle program does not move it (a frame, a floor, a
    sensor); such a part is declared once, here, and posed by the base `Device.pose`. A part the
    program moves has none: the family's `build` poses it from the motion values."""

    name: str
    shape: str  # "box" | "cylinder" (axis along local z)
    size: tuple[float, float, float]
    color: tuple[float, float, float]
    material: str = "paint"  # key into ipadgen/assets/materials.yaml
    rest: PartState | None = None


Pose = dict[str, PartState]

# Smallest state differences that show at 256 px for a scene a few metres wide.
VISIBLE_TOLERANCE = {"location": 0.01, "rotation": 0.02, "scale": 0.03, "color": 0.05}


def visible_difference(a: Pose, b: Pose, parts: dict[str, Part]) -> float:
    """How far two poses differ, in units of the visibility tolerance (> 1 means visible).

    0 exactly when the two poses render identically."""
    worst = 0.0
    for name, sa in a.items():
        sb = b[name]
        if sa == sb:
            continue
        if sa.visible != sb.visible:
            return np.inf
        if not sa.visible:
            continue
        ca = sa.color if sa.color is not None else parts[name].color
        cb = sb.color if sb.color is not None else parts[name].color
        for key, va, vb in (
            ("location", sa.location, sb.location),
            ("rotation", sa.rotation, sb.rotation),
            ("scale", sa.scale, sb.scale),
            ("color", ca, cb),
        ):
            d = float(np.max(np.abs(np.subtract(va, vb))))
            worst = max(worst, d / VISIBLE_TOLERANCE[key])
    return worst


@dataclass(frozen=True)
class Step:
    """A named section of the cycle lasting `seconds`."""

    name: str
    seconds: float


@dataclass(frozen=True)
class Schedule:
    """The normal program: cycle k spans program frames [starts[k], starts[k] + lengths[k])."""

    lengths: np.ndarray  # int frames per cycle
    fps: float
    step_fractions: tuple[tuple[str, float, float], ...]  # (step, start phase, end phase)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def cycle_phase(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Program times -> (cycle index, phase in [0, 1))."""
        u = np.asarray(u, dtype=np.float64)
        starts = self.starts
        k = np.clip(np.searchsorted(starts, u, side="right") - 1, 0, len(starts) - 1)
        phase = (u - starts[k]) / self.lengths[k]
        return k.astype(np.int64), np.clip(phase, 0.0, np.nextafter(1.0, 0.0))

    def step_span(self, cycle: int, step: str) -> tuple[int, int]:
        """Program-frame span [start, end) of one step of one cycle."""
        for name, lo, hi in self.step_fractions:
            if name == step:
                s, n = self.starts[cycle], self.lengths[cycle]
                return int(s + round(lo * n)), int(s + round(hi * n))
        raise KeyError(f"no step {step!r}; steps are {[s[0] for s in self.step_fractions]}")

    def cycle_span(self, cycle: int) -> tuple[int, int]:
        s = int(self.starts[cycle])
        return s, s + int(self.lengths[cycle])


def make_schedule(steps: list[Step], fps: float, n_cycles: int, jitter: float,
                  rng: np.random.Generator) -> Schedule:
    """Cycle after cycle, each scaled by a small random factor (cycle-time variation)."""
    total = sum(s.seconds for s in steps)
    nominal = total * fps
    factors = 1.0 + jitter * np.clip(rng.standard_normal(n_cycles), -2.0, 2.0)
    lengths = np.maximum(np.round(nominal * factors), len(steps) * 2).astype(np.int64)
    bounds, acc = [], 0.0
    for s in steps:
        bounds.append((s.name, acc / total, (acc + s.seconds) / total))
        acc += s.seconds
    return Schedule(lengths=lengths, fps=fps, step_fractions=tuple(bounds))


# --------------------------------------------------------------------------- anomaly events


@dataclass(frozen=True)
class ClockEdit:
    """Replace the program clock from program time `start`: play `sequence` (program times, one
    per frame), then resume the normal program at program time `resume`."""

    start: int
    sequence: tuple[float, ...]
    resume: int


@dataclass(frozen=True)
class StateEdit:
    """Change part states on every frame whose program time lies in [start, end)."""

    start: int
    end: int
    apply: Callable[[Pose, int, float], Pose]  # (pose, frame index, program phase in [0, 1)) -> edited pose


@dataclass(frozen=True)
class Event:
    """One injected anomaly, planned on a schedule."""

    category: str
    kind: str
    parts: tuple[str, ...]
    cycle: int
    clock: ClockEdit | None = None
    state: StateEdit | None = None

    @property
    def program_start(self) -> int:
        return self.clock.start if self.clock else self.state.start


@dataclass
class Timeline:
    """Per-frame program time of a video and of its normal reference ("what should happen now")."""

    u: np.ndarray
    reference: np.ndarray
    event_frames: list[tuple[int, int]]  # per event: frame span [first, end) it may touch
    shift: int  # frames the program runs late at the end (negative: early)


def build_timeline(n_frames: int, events: list[Event]) -> Timeline:
    """Play the normal clock, splicing in each event's clock edit; events in program order."""
    u = np.empty(n_frames, dtype=np.float64)
    reference = np.empty(n_frames, dtype=np.float64)
    spans: list[tuple[int, int]] = []
    frame, shift = 0, 0
    for ev in sorted(events, key=lambda e: e.program_start):
        if ev.clock is None:
            spans.append((-1, -1))  # state edits are placed by program time below
            continue
        a = ev.clock.start + shift
        if a < frame:
            raise ValueError(f"event {ev.kind} overlaps the previous one")
        stop = min(a, n_frames)
        u[frame:stop] = np.arange(frame, stop) - shift
        reference[frame:stop] = u[frame:stop]
        seq = np.asarray(ev.clock.sequence, dtype=np.float64)
        m = len(seq)
        lo, hi = min(a, n_frames), min(a + m, n_frames)
        u[lo:hi] = seq[: hi - lo]
        reference[lo:hi] = np.arange(lo, hi) - shift
        spans.append((lo, hi))
        shift = a + m - ev.clock.resume
        frame = hi
    u[frame:] = np.arange(frame, n_frames) - shift
    reference[frame:] = u[frame:]
    ordered = sorted(events, key=lambda e: e.program_start)
    for i, ev in enumerate(ordered):
        if ev.clock is None:
            inside = np.nonzero((u >= ev.state.start) & (u < ev.state.end))[0]
            spans[i] = (int(inside[0]), int(inside[-1]) + 1) if len(inside) else (0, 0)
    # report spans in the caller's event order
    order = {id(ev): i for i, ev in enumerate(ordered)}
    return Timeline(u=u, reference=reference,
                    event_frames=[spans[order[id(ev)]] for ev in events], shift=shift)


@dataclass
class VideoProgram:
    """Everything about one video that does not need Blender: poses, labels, period labels."""

    poses: list[Pose]
    reference_poses: list[Pose]  # the normal twin at the same frame ("what should happen now")
    labels: np.ndarray  # uint8 per frame
    cycle: np.ndarray  # int per frame
    phase: np.ndarray  # float per frame
    events: list[dict] = field(default_factory=list)  # meta per event
    shift: int = 0


class Device:
    """A device family: parts, parameter ranges, a cycle program and its anomaly kinds.

    Subclasses set `name`, `params` (ParamRange per parameter) and `anomalies`, and implement
    three layers:

    - `parts`: every part once, the ones that never move with their `rest` pose;
    - `steps` and `motion(phase)`: the cycle program as a few typed values (a frozen dataclass of
      the family's own: a lift height, a carriage travel, a jaw closed or open);
    - `build(motion)`: the moving parts posed from those values.

    `pose(phase)` puts them together. Anomaly kinds edit the clock, the parts' states, or the
    motion values (`read(pose)`, the inverse of `build`, gives them back to
    `AnomalyKind._motion_edit`). A family whose anomalies are whole variant programs (gripper,
    palletizer) or whose parts change roles every cycle (rotary table) overrides `pose` instead,
    starting from `rest_pose()`."""

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[dict]  # name -> ParamRange
    anomalies: ClassVar[dict]  # kind -> AnomalyKind

    def __init__(self, values: dict):
        self.values = values
        self._rest: Pose | None = None  # rest_pose, once read

    def _v(self, key: str) -> float:
        """One parameter's value (shorthand for the pose code of every family)."""
        return self.values[key]

    def parts(self) -> dict[str, Part]:
        raise NotImplementedError

    def steps(self) -> list[Step]:
        raise NotImplementedError

    def motion(self, phase: float):
        """The program's motion values at `phase` (the family's dataclass)."""
        raise NotImplementedError

    def build(self, motion) -> Pose:
        """The states of the moving parts for motion values `motion`."""
        raise NotImplementedError

    def rest_pose(self) -> Pose:
        """The states of the parts that do not move (their `Part.rest`): read from `parts` once per
        device (it builds every part's mesh description), a fresh dict each call for the caller to add to."""
        if self._rest is None:
            self._rest = {name: part.rest for name, part in self.parts().items() if part.rest is not None}
        return dict(self._rest)

    def pose(self, phase: float) -> Pose:
        """Every part at `phase`: those at rest where `parts` put them, the moving ones built from the
        motion values."""
        return {**self.rest_pose(), **self.build(self.motion(phase))}

    def step_at(self, phase: float) -> tuple[str, float]:
        """The step the program is in at `phase`, and the progress through it in [0, 1]."""
        steps = self.steps()
        total = sum(s.seconds for s in steps)
        t = phase * total
        for s in steps:
            if t < s.seconds or s is steps[-1]:
                return s.name, min(max(t / s.seconds, 0.0), 1.0)
            t -= s.seconds
        raise AssertionError("unreachable")

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space box the device moves in (for framing the camera)."""
        raise NotImplementedError

    def play(self, schedule: Schedule, n_frames: int, events: list[Event]) -> VideoProgram:
        """Poses, frame labels and period labels of a video with the given anomaly events."""
        parts = self.parts()
        unposed = sorted(set(parts) - set(self.pose(0.0)))
        if unposed:
            raise ValueError(f"{self.name}: parts {', '.join(unposed)} have neither a rest pose (Part.rest) "
                             f"nor a state from build()")
        timeline = build_timeline(n_frames, events)
        cycle, phase = schedule.cycle_phase(timeline.u)
        _, ref_phase = schedule.cycle_phase(timeline.reference)
        cache: dict[float, Pose] = {}

        def pose_at(p: float) -> Pose:
            if p not in cache:
                cache[p] = self.pose(p)
            return cache[p]

        poses, refs = [], []
        labels = np.zeros(n_frames, dtype=np.uint8)
        owner = np.full(n_frames, -1)
        for f in range(n_frames):
            pose = dict(pose_at(float(phase[f])))
            for ev in events:
                if ev.state and ev.state.start <= timeline.u[f] < ev.state.end:
                    pose = ev.state.apply(pose, f, float(phase[f]))
            ref = pose_at(float(ref_phase[f]))
            diff = visible_difference(pose, ref, parts)
            poses.append(pose)
            refs.append(ref)
            # A difference below the visibility tolerance is not labelled: labels mark only
            # frames where the anomaly can be seen.
            labels[f] = diff > 1.0
        events_meta = []
        for i, (ev, (lo, hi)) in enumerate(zip(events, timeline.event_frames)):
            hit = np.nonzero(labels[lo:hi])[0] + lo if hi > lo else np.array([], dtype=int)
            owner[hit] = i
            events_meta.append({
                "category": ev.category, "kind": ev.kind, "parts": list(ev.parts),
                "cycle": int(ev.cycle),
                "first_frame": int(hit[0]) if len(hit) else None,
                "last_frame": int(hit[-1]) if len(hit) else None,
                "edited_frames": [int(lo), int(hi)],  # frames the edit touches, [start, end)
            })
        if np.any(labels.astype(bool) & (owner < 0)):
            raise AssertionError(f"{self.name}: a frame differs from its twin outside every event")
        return VideoProgram(poses=poses, reference_poses=refs, labels=labels, cycle=cycle,
                            phase=phase, events=events_meta, shift=timeline.shift)
