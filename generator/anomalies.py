"""Anomaly kinds: generic edits of a cycle program, parameterised per device.

A kind plans one `Event` on a schedule: a clock edit (motion and timing logic: the program holds,
hurries, skips) or a state edit over a stretch of program time (appearance and position: a part
recoloured, missing, moved). Which frames end up labelled is decided by `Device.play`, by comparing
each frame with its normal twin; a kind only has to place its edit where it will show.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from ipadgen.program import ClockEdit, Event, Pose, Schedule, StateEdit

CATEGORIES = ("appearance", "position", "motion", "logic")

# Saturated colours a changed part is painted with; the one farthest from the normal is used.
_PALETTE = [colorsys.hsv_to_rgb(h, 0.85, 0.85) for h in np.linspace(0, 1, 12, endpoint=False)]


@dataclass(frozen=True)
class AnomalyKind:
    """One kind of anomaly a device can show. `parts` are where it is visible (for masks)."""

    name: str
    category: str
    description: str
    parts: tuple[str, ...]

    def plan(self, device, schedule: Schedule, cycle: int, rng: np.random.Generator) -> Event:
        raise NotImplementedError

    def _event(self, cycle: int, **edit) -> Event:
        return Event(category=self.category, kind=self.name, parts=self.parts, cycle=cycle, **edit)

    def _state_edit(self, schedule: Schedule, cycle: int, apply, first: str | None = None,
                    last: str | None = None) -> Event:
        """A state edit `apply(pose, frame, phase)` over a stretch of `cycle`: from the start of
        step `first` to the end of step `last` (None: the cycle's own start / end)."""
        lo, hi = schedule.cycle_span(cycle)
        if first:
            lo = schedule.step_span(cycle, first)[0]
        if last:
            hi = schedule.step_span(cycle, last)[1]
        return self._event(cycle, state=StateEdit(lo, hi, apply))

    def _motion_edit(self, device, schedule: Schedule, cycle: int, change,
                     first: str | None = None, last: str | None = None) -> Event:
        """A state edit of a device whose moving parts are built from a few motion values
        (`device.read(pose)` gives them back, `device.build(motion)` poses the parts): over the
        stretch, `change(motion)` edits the values and the parts are rebuilt from them."""
        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            pose.update(device.build(change(device.read(pose))))
            return pose
        return self._state_edit(schedule, cycle, apply, first, last)

    def _change_parts(self, schedule: Schedule, cycle: int, steps: tuple[str, ...] | None,
                      change) -> Event:
        """A state edit: `change(state, frame)` applied to each of the kind's parts over `steps`."""
        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            for name in self.parts:
                pose[name] = change(pose[name], frame)
            return pose
        return self._state_edit(schedule, cycle, apply, *self._stretch(steps))

    @staticmethod
    def _stretch(steps: tuple[str, ...] | None) -> tuple[str | None, str | None]:
        """(first, last) step of a tuple of steps; (None, None), the whole cycle, when empty."""
        return (steps[0], steps[-1]) if steps else (None, None)


@dataclass(frozen=True)
class VariantCycle(AnomalyKind):
    """A variant of the program over `steps` of one cycle (the whole cycle when None): the kind's
    parts are posed by `device.variant_pose(phase, **variant)`, where a subclass draws `variant`
    (the keywords of the device's variant program) in `variant(device, rng)`."""

    steps: tuple[str, ...] | None = None

    def variant(self, device, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def plan(self, device, schedule, cycle, rng):
        kw = self.variant(device, rng)

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            edited = device.variant_pose(phase, **kw)
            for name in self.parts:
                pose[name] = edited[name]
            return pose
        return self._state_edit(schedule, cycle, apply, *self._stretch(self.steps))


@dataclass(frozen=True)
class ColorChange(AnomalyKind):
    steps: tuple[str, ...] | None = None

    def plan(self, device, schedule, cycle, rng):
        normal = np.array(device.parts()[self.parts[0]].color)
        far = [c for c in _PALETTE if np.abs(np.subtract(c, normal)).max() > 0.35]
        color = tuple(float(x) for x in far[rng.integers(len(far))])
        return self._change_parts(schedule, cycle, self.steps, lambda s, f: s.moved(color=color))


@dataclass(frozen=True)
class Missing(AnomalyKind):
    steps: tuple[str, ...] | None = None

    def plan(self, device, schedule, cycle, rng):
        return self._change_parts(schedule, cycle, self.steps, lambda s, f: s.moved(visible=False))


@dataclass(frozen=True)
class ShapeChange(AnomalyKind):
    """Scale a part; a part resting on something grows upwards, not into its support."""

    factor: tuple[float, float] = (1.35, 1.7)
    steps: tuple[str, ...] | None = None

    def plan(self, device, schedule, cycle, rng):
        height = device.parts()[self.parts[0]].size[2]
        sx, sz = rng.uniform(*self.factor, size=2)

        def change(s, f):
            x, y, z = s.location
            return s.moved(scale=(sx, sx, sz), location=(x, y, z + (sz - 1.0) * height / 2))
        return self._change_parts(schedule, cycle, self.steps, change)


@dataclass(frozen=True)
class Shift(AnomalyKind):
    """Move a part sideways by a fraction of its own size (a load placed off-centre)."""

    axis: int = 1
    fraction: tuple[float, float] = (0.3, 0.6)
    steps: tuple[str, ...] | None = None

    def plan(self, device, schedule, cycle, rng):
        size = device.parts()[self.parts[0]].size[self.axis]
        offset = rng.uniform(*self.fraction) * size * rng.choice([-1.0, 1.0])

        def change(s, f):
            loc = list(s.location)
            loc[self.axis] += offset
            return s.moved(location=tuple(loc))
        return self._change_parts(schedule, cycle, self.steps, change)


@dataclass(frozen=True)
class Tilt(AnomalyKind):
    """Turn a part about the vertical axis (a load placed askew)."""

    degrees: tuple[float, float] = (15.0, 35.0)
    steps: tuple[str, ...] | None = None

    def plan(self, device, schedule, cycle, rng):
        angle = np.radians(rng.uniform(*self.degrees)) * rng.choice([-1.0, 1.0])

        def change(s, f):
            rx, ry, rz = s.rotation
            return s.moved(rotation=(rx, ry, rz + angle))
        return self._change_parts(schedule, cycle, self.steps, change)


@dataclass(frozen=True)
class Jerk(AnomalyKind):
    """Vibration: the moving parts shake up and down frame by frame during a step."""

    step: str = ""
    amplitude: tuple[float, float] = (0.02, 0.04)

    def plan(self, device, schedule, cycle, rng):
        amp = rng.uniform(*self.amplitude)

        def change(s, f):
            x, y, z = s.location
            return s.moved(location=(x, y, z + (amp if f % 2 else -amp)))
        return self._change_parts(schedule, cycle, (self.step,), change)


@dataclass(frozen=True)
class Stall(AnomalyKind):
    """The program stops mid-step for a while, then goes on: the rest of the video runs late."""

    step: str = ""
    seconds: tuple[float, float] = (1.0, 2.0)

    def plan(self, device, schedule, cycle, rng):
        lo, hi = schedule.step_span(cycle, self.step)
        at = lo + int(round(rng.uniform(0.25, 0.6) * (hi - lo)))
        n = max(3, int(round(rng.uniform(*self.seconds) * schedule.fps)))
        return self._event(cycle, clock=ClockEdit(at, (float(at),) * n, at + 1))


@dataclass(frozen=True)
class SpeedChange(AnomalyKind):
    """One step played `factor` times faster (or slower when < 1)."""

    step: str = ""
    factor: tuple[float, float] = (2.0, 3.0)

    def plan(self, device, schedule, cycle, rng):
        lo, hi = schedule.step_span(cycle, self.step)
        speed = rng.uniform(*self.factor)
        n = int(np.ceil((hi - lo) / speed))
        return self._event(cycle, clock=ClockEdit(lo, tuple(lo + speed * i for i in range(n)), hi))


@dataclass(frozen=True)
class CutStep(AnomalyKind):
    """A step ends early (keep = 0: it is skipped) and the next step starts at once."""

    step: str = ""
    next_step: str = ""
    keep: tuple[float, float] = (0.0, 0.0)

    def plan(self, device, schedule, cycle, rng):
        lo, hi = schedule.step_span(cycle, self.step)
        nlo, nhi = schedule.step_span(cycle, self.next_step)
        kept = int(round(rng.uniform(*self.keep) * (hi - lo)))
        seq = tuple(float(u) for u in range(lo, lo + kept)) + tuple(float(u) for u in range(nlo, nhi))
        return self._event(cycle, clock=ClockEdit(lo, seq, nhi))


@dataclass(frozen=True)
class SwapSteps(AnomalyKind):
    """Two consecutive steps run in the wrong order (`second` before `first`)."""

    first: str = ""
    second: str = ""

    def plan(self, device, schedule, cycle, rng):
        a0, a1 = schedule.step_span(cycle, self.first)
        b0, b1 = schedule.step_span(cycle, self.second)
        if a1 != b0:
            raise ValueError(f"{self.name}: steps {self.first} and {self.second} are not adjacent")
        seq = tuple(float(u) for u in [*range(b0, b1), *range(a0, a1)])
        return self._event(cycle, clock=ClockEdit(a0, seq, b1))


@dataclass(frozen=True)
class Reverse(AnomalyKind):
    """Mid-step the motion runs backwards for a while, then forwards again."""

    step: str = ""
    fraction: tuple[float, float] = (0.3, 0.6)

    def plan(self, device, schedule, cycle, rng):
        lo, hi = schedule.step_span(cycle, self.step)
        turn = lo + max(2, int(round(rng.uniform(0.5, 0.8) * (hi - lo))))
        back = max(2, int(round(rng.uniform(*self.fraction) * (turn - lo))))
        seq = [*range(lo, turn), *range(turn, turn - back, -1), *range(turn - back, turn)]
        return self._event(cycle, clock=ClockEdit(lo, tuple(float(u) for u in seq), turn))
