"""Lifter: a scissor lift table between two roller conveyors.

Cycle: a load rolls in from the infeed conveyor, the table raises it, holds, lowers, the load rolls
out onto the outfeed conveyor, a short idle. x runs along the conveyors, z is up, the camera looks
from -y.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import numpy as np

from ipadgen.anomalies import (
    AnomalyKind,
    ColorChange,
    CutStep,
    Jerk,
    Missing,
    ShapeChange,
    Shift,
    SpeedChange,
    Stall,
    Tilt,
)
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

BASE_TOP = 0.12  # height of the base frame
COLLAPSED = 0.1  # scissor span between base and table when the table is down
TABLE_THICK = 0.06
CONVEYOR_LEN = 1.6
ARMS = ("arm_front_a", "arm_front_b", "arm_back_a", "arm_back_b")
MOVING = ("table", "load", "rod") + ARMS


@dataclass(frozen=True)
class Motion:
    lift: float  # table lift, 0 .. lift_height
    load_x: float  # x of the load's centre


@dataclass(frozen=True)
class _LiftFault(AnomalyKind):
    """Lifter-specific: the table's lift over raise..lower follows `_lift` instead of the
    program (the scissor, rod, table and load move together, as the machine would)."""

    def plan(self, device, schedule, cycle, rng):
        fault, height = self._draw(rng), device._v("lift_height")

        def apply(pose, frame, phase):
            motion = device.read(pose)
            pose.update(device.build(replace(motion, lift=self._lift(motion.lift, height, fault))))
            return self._finish(pose, motion.lift, height, fault)
        return self._state_edit(schedule, cycle, apply, "raise", "lower")

    def _draw(self, rng) -> float:
        return 0.0

    def _lift(self, lift: float, height: float, fault: float) -> float:
        return lift

    def _finish(self, pose: Pose, lift: float, height: float, fault: float) -> Pose:
        return pose


@dataclass(frozen=True)
class NoLift(_LiftFault):
    """The lift that does not lift: the load waits on the lowered table, then rolls out."""

    def _lift(self, lift, height, fault):
        return 0.0


@dataclass(frozen=True)
class HalfLift(_LiftFault):
    """The table stops short, at 40-60% of its height, holds there and lowers."""

    def _draw(self, rng):
        return float(rng.uniform(0.4, 0.6))

    def _lift(self, lift, height, fault):
        return min(lift, fault * height)


@dataclass(frozen=True)
class TableTilt(_LiftFault):
    """One side of the scissor lags: the table (and its load) tilts more the higher it goes."""

    def _draw(self, rng):
        return float(np.radians(rng.uniform(6.0, 10.0)) * rng.choice([-1.0, 1.0]))

    def _finish(self, pose, lift, height, fault):
        angle = fault * lift / height
        table, load = pose["table"], pose["load"]
        above = load.location[2] - table.location[2]  # the load turns about the table's centre
        pose["table"] = table.moved(rotation=(0.0, angle, 0.0))
        pose["load"] = load.moved(
            location=(load.location[0] + above * math.sin(angle), load.location[1],
                      table.location[2] + above * math.cos(angle)),
            rotation=(0.0, angle, 0.0))
        return pose


class Lifter(Device):
    name = "lifter"
    description = "scissor lift table: load rolls in, table raises, holds, lowers, load rolls out"
    params = {
        "table_length": ParamRange(1.0, 1.5, "m", "table top length (along the conveyors)"),
        "table_width": ParamRange(0.7, 1.0, "m", "table top depth"),
        "lift_height": ParamRange(0.4, 0.75, "m", "how far the table rises"),
        "load_length": ParamRange(0.35, 0.6, "m"),
        "load_width": ParamRange(0.3, 0.5, "m"),
        "load_height": ParamRange(0.25, 0.45, "m"),
        "load_hue": ParamRange(0.0, 1.0, "", "hue of the load's paint"),
        "raise_speed": ParamRange(0.15, 0.3, "m/s"),
        "lower_speed": ParamRange(0.18, 0.35, "m/s"),
        "transfer_seconds": ParamRange(1.0, 2.0, "s", "load rolling in / out"),
        "hold_seconds": ParamRange(0.8, 2.5, "s", "pause at the top"),
        "idle_seconds": ParamRange(0.3, 1.5, "s", "pause before the next load"),
    }
    anomalies = {k.name: k for k in (
        ColorChange("load_color", "appearance", "the load has another colour", ("load",)),
        Missing("missing_arm", "appearance", "a scissor arm is missing", ("arm_front_a",)),
        ShapeChange("load_shape", "appearance", "the load is bigger than the others", ("load",)),
        Shift("load_shift", "position", "the load sits off-centre on the table", ("load",), axis=1),
        Tilt("load_tilt", "position", "the load sits askew on the table", ("load",)),
        Stall("stall", "motion", "the table stops mid-lift, then goes on", MOVING, step="raise"),
        SpeedChange("fast_lift", "motion", "the table rises too fast", MOVING, step="raise"),
        Jerk("jerk", "motion", "the table shakes while rising", MOVING, step="raise"),
        Missing("empty_lift", "logic", "the table lifts with no load placed", ("load",)),
        CutStep("skip_hold", "logic", "the table lowers at once, skipping the hold", MOVING,
                step="hold", next_step="lower"),
        CutStep("early_lower", "logic", "the table lowers before the hold is over", MOVING,
                step="hold", next_step="lower", keep=(0.15, 0.4)),
        TableTilt("table_tilt", "position", "one scissor side lags: the table tilts as it rises",
                  MOVING),
        HalfLift("half_lift", "motion", "the table stops short at half height", MOVING),
        NoLift("no_lift", "logic", "the table does not lift: the load waits, then rolls out",
               MOVING),
    )}

    @property
    def _arm_length(self) -> float:
        return 0.92 * self._v("table_length")

    @property
    def _travel(self) -> float:
        """x of the load's centre at the far ends of the conveyors."""
        return self._v("table_length") / 2 + 0.05 + CONVEYOR_LEN * 0.6

    def parts(self) -> dict[str, Part]:
        tl, tw = self._v("table_length"), self._v("table_width")
        load = colorsys.hsv_to_rgb(self._v("load_hue"), 0.7, 0.8)
        conv_h = BASE_TOP + COLLAPSED + TABLE_THICK
        conv_x = tl / 2 + 0.05 + CONVEYOR_LEN / 2
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete",
                 rest=PartState((0.0, tw / 2 + 1.6, 2.0))),
            Part("base", "box", (tl + 0.1, tw + 0.1, BASE_TOP), (0.18, 0.19, 0.21), "paint",
                 rest=PartState((0.0, 0.0, BASE_TOP / 2))),
            Part("table", "box", (tl, tw, TABLE_THICK), (0.55, 0.57, 0.6), "steel"),
            Part("load", "box", (self._v("load_length"), self._v("load_width"),
                                 self._v("load_height")), tuple(load), "cardboard"),
            Part("body", "cylinder", (0.14, 0.14, 0.08), (0.12, 0.12, 0.13), "paint",
                 rest=PartState((0.0, 0.0, BASE_TOP + 0.04))),
            Part("rod", "cylinder", (0.06, 0.06, 1.0), (0.82, 0.82, 0.85), "chrome"),
            Part("infeed", "box", (CONVEYOR_LEN, tw * 0.9, conv_h), (0.22, 0.32, 0.48), "paint",
                 rest=PartState((-conv_x, 0.0, conv_h / 2))),
            Part("outfeed", "box", (CONVEYOR_LEN, tw * 0.9, conv_h), (0.22, 0.32, 0.48), "paint",
                 rest=PartState((conv_x, 0.0, conv_h / 2))),
            Part("cabinet", "box", (0.35, 0.25, 0.6), (0.85, 0.86, 0.84), "paint",
                 rest=PartState((conv_x, tw / 2 + 0.45, 0.3))),
            Part("beacon", "cylinder", (0.1, 0.1, 0.12), (0.95, 0.55, 0.05), "plastic",
                 rest=PartState((conv_x, tw / 2 + 0.45, 0.66))),
        ]
        parts += [Part(a, "box", (self._arm_length, 0.04, 0.05), (0.92, 0.72, 0.08), "paint")
                  for a in ARMS]
        return {p.name: p for p in parts}

    def steps(self) -> list[Step]:
        h = self._v("lift_height")
        return [
            Step("load_in", self._v("transfer_seconds")),
            Step("raise", h / self._v("raise_speed")),
            Step("hold", self._v("hold_seconds")),
            Step("lower", h / self._v("lower_speed")),
            Step("unload", self._v("transfer_seconds")),
            Step("idle", self._v("idle_seconds")),
        ]

    def motion(self, phase: float) -> Motion:
        """Table lift and load x at a phase: linear moves, as hydraulics do."""
        step, t = self.step_at(phase)
        h, far = self._v("lift_height"), self._travel
        lift = {"raise": t * h, "hold": h, "lower": (1 - t) * h}.get(step, 0.0)
        x = {"load_in": -far * (1 - t), "unload": far * t, "idle": far}.get(step, 0.0)
        return Motion(lift, x)

    def read(self, pose: Pose) -> Motion:
        """The motion values a pose was built from (the inverse of `build`)."""
        return Motion(pose["table"].location[2] - (BASE_TOP + COLLAPSED + TABLE_THICK / 2), pose["load"].location[0])

    def build(self, m: Motion) -> Pose:
        """The table, its load, the cylinder's rod and the scissor arms for motion values `m`."""
        tw = self._v("table_width")
        span = COLLAPSED + m.lift  # scissor height between base top and table bottom
        table_z = BASE_TOP + span + TABLE_THICK / 2
        angle = math.asin(min(span / self._arm_length, 0.999))
        arm_z = BASE_TOP + span / 2
        side = tw / 2 - 0.04
        rod_len = span - 0.08
        return {
            "table": PartState((0.0, 0.0, table_z)),
            "load": PartState((m.load_x, 0.0, table_z + TABLE_THICK / 2 + self._v("load_height") / 2)),
            "rod": PartState((0.0, 0.0, BASE_TOP + 0.08 + rod_len / 2), scale=(1.0, 1.0, rod_len)),
            # the two bars of a pair cross side by side, 5 cm apart
            "arm_front_a": PartState((0.0, -side, arm_z), rotation=(0.0, angle, 0.0)),
            "arm_front_b": PartState((0.0, -side + 0.05, arm_z), rotation=(0.0, -angle, 0.0)),
            "arm_back_a": PartState((0.0, side, arm_z), rotation=(0.0, angle, 0.0)),
            "arm_back_b": PartState((0.0, side - 0.05, arm_z), rotation=(0.0, -angle, 0.0)),
        }

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        far = self._travel + self._v("load_length") / 2
        top = BASE_TOP + COLLAPSED + self._v("lift_height") + TABLE_THICK + self._v("load_height")
        tw = self._v("table_width")
        return np.array([-far, -tw / 2, 0.0]), np.array([far, tw / 2 + 0.6, top])
