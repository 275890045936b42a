"""Driller: a pillar drill press drilling one hole into each plate that passes.

A plate (marked with a red dot where the hole belongs) comes out of the infeed cabinet on the
left and rolls over the infeed rollers onto the drill table under the spindle; a pneumatic vice
clamps it, the spindle starts (the lamp on the head turns green, the orange dog on the chuck
shows the rotation), the head lowers, drills into the plate, retracts, the spindle stops, the
vice opens and the plate, now with a dark hole on its mark, rolls out into the outfeed cabinet.
Cycle: feed, clamp, approach, drill, retract, unclamp, eject, idle. x runs along the plate's
path (the spindle is over x = y = 0), z is up, the camera looks from -y.

The program is built from a few motion values (plate position and yaw, vice, head travel,
spindle angle, hole); device-specific anomalies read them back from a pose, change them and
rebuild, as the cutter does.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, Jerk, Missing, Reverse, SpeedChange, Stall, Tilt
from ipadgen.params import ParamRange
from ipadgen.program import ClockEdit, Device, Part, PartState, Pose, Step

GAP = 0.1  # bit tip above the plate's top at rest
OPEN = 0.045  # vice stroke
JAW_T = 0.04  # jaw thickness (y)
JAW_L = 0.16  # jaw length (x)
XH = 0.64  # x of the cabinets' inner faces
HOOD_L = 0.42  # cabinet length (x)
VISIBLE_OUT = 0.25  # a plate shows while this fraction of its length is out of a cabinet
HOLE_HIDE = 0.2  # the hole is not drawn this close to a cabinet (the cabinet may hide it)
CHUCK_D, CHUCK_H = 0.13, 0.13
QUILL_L, QUILL_SHOW = 0.4, 0.08
BIT_D, HOLE_D, MARK_D = 0.045, 0.075, 0.115
HEAD_H = 0.42
HEAD_Y0, HEAD_Y1 = -0.13, 0.52  # head box front and back faces
COLUMN_Y = 0.45
HANDLE_TURN = 11.0  # feed handle radians per metre of head travel
LAMP_ON = (0.1, 0.95, 0.2)
N_ROLLERS = 4
SPINDLE = ("quill", "chuck", "dog", "bit")
HANDLE = tuple(f"spoke_{i}" for i in range(3)) + tuple(f"knob_{i}" for i in range(3))
HEAD_MOVING = SPINDLE + HANDLE
PLATE = ("plate", "mark", "hole")
VICE = ("jaw_front", "vice_rod")


@dataclass(frozen=True)
class Motion:
    x: float  # plate centre along the path, m
    clamp: float  # vice 0 open .. 1 closed
    travel: float  # head travel down from its rest, m
    angle: float  # spindle angle, radians in [0, 2 pi)
    spinning: bool  # spindle running (lamp on)
    hole: bool  # the plate has its hole
    hole_dx: float = 0.0  # hole offset from the plate centre along the plate, m
    yaw: float = 0.0  # plate turned about its centre, radians
    bit: float = 1.0  # bit length as a fraction of the whole bit


class Driller(Device):
    name = "driller"
    description = "drill press: plate fed onto the table, clamped, drilled, unclamped, ejected"
    params = {
        "plate_length": ParamRange(0.22, 0.36, "m", "along the path"),
        "plate_width": ParamRange(0.16, 0.26, "m"),
        "plate_height": ParamRange(0.06, 0.12, "m", "thickness of the plate / block"),
        "table_height": ParamRange(0.75, 0.9, "m", "height of the drill table top"),
        "bit_length": ParamRange(0.12, 0.18, "m", "bit length out of the chuck"),
        "plate_hue": ParamRange(0.0, 1.0, "", "hue of the plates' paint"),
        "machine_hue": ParamRange(0.0, 1.0, "", "hue of the drill press's paint"),
        "feed_speed": ParamRange(0.25, 0.4, "m/s", "plate rolling in / out"),
        "clamp_seconds": ParamRange(0.4, 0.8, "s", "vice closing / opening"),
        "approach_seconds": ParamRange(0.6, 1.0, "s", "head lowering to the plate"),
        "drill_speed": ParamRange(0.015, 0.03, "m/s", "feed while drilling"),
        "retract_seconds": ParamRange(0.6, 1.0, "s"),
        "spindle_rps": ParamRange(1.1, 1.6, "1/s", "shown spindle speed (turns per second)"),
        "idle_seconds": ParamRange(0.3, 1.5, "s"),
    }

    # ------------------------------------------------------------------ geometry

    @property
    def _depth(self) -> float:
        return 0.35 * self._v("plate_height")

    @property
    def _travel_x(self) -> float:
        """x of the plate's centre when hidden in a cabinet."""
        return XH + self._v("plate_length") / 2 + 0.02

    @property
    def _plate_top(self) -> float:
        return self._v("table_height") + self._v("plate_height")

    @property
    def _chuck_rest(self) -> float:
        """z of the chuck's bottom face with the head up."""
        return self._plate_top + GAP + self._v("bit_length")

    @property
    def _head_bottom(self) -> float:
        return self._chuck_rest + CHUCK_H + QUILL_SHOW

    @property
    def _jaw_h(self) -> float:
        return 0.7 * self._v("plate_height")

    def _vice_cyl_y(self) -> float:
        return -(self._v("plate_width") / 2 + JAW_T + OPEN + 0.1)

    def plate_visible(self, x: float) -> bool:
        lp = self._v("plate_length")
        out = min(x + lp / 2, XH) - max(x - lp / 2, -XH)
        return out >= VISIBLE_OUT * lp

    def _spin_turns(self) -> tuple[int, float]:
        """Whole spindle turns over approach+drill+retract (so it stops where it started)."""
        s = self._spin_seconds()
        return max(1, int(round(self._v("spindle_rps") * s))), s

    def _spin_seconds(self) -> float:
        return (self._v("approach_seconds") + self._depth / self._v("drill_speed")
                + self._v("retract_seconds"))

    def parts(self) -> dict[str, Part]:
        lp, wp, hp = self._v("plate_length"), self._v("plate_width"), self._v("plate_height")
        th = self._v("table_height")
        plate = colorsys.hsv_to_rgb(self._v("plate_hue"), 0.55, 0.75)
        paint = colorsys.hsv_to_rgb(self._v("machine_hue"), 0.55, 0.55)
        dark = (0.15, 0.16, 0.18)
        yellow = (0.95, 0.75, 0.08)
        grey = (0.62, 0.63, 0.66)
        hb = self._head_bottom
        head_top = hb + HEAD_H
        col_h = hb + HEAD_H - 0.03
        head_y = (HEAD_Y0 + HEAD_Y1) / 2
        jh = self._jaw_h
        conv_len = XH - 0.37
        cab_h = hp + 0.26
        cab_z = th - 0.1 + cab_h / 2
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, 1.3, 2.0))),
            # the drill press
            Part("base", "box", (0.62, 0.6, 0.1), paint, "paint", rest=PartState((0.0, COLUMN_Y - 0.05, 0.05))),
            Part("column", "cylinder", (0.16, 0.16, col_h), (0.78, 0.79, 0.82), "chrome",
                 rest=PartState((0.0, COLUMN_Y, col_h / 2))),
            Part("collar", "cylinder", (0.22, 0.22, 0.16), paint, "paint", rest=PartState((0.0, COLUMN_Y, th - 0.12))),
            Part("table_arm", "box", (0.18, 0.24, 0.12), paint, "paint", rest=PartState((0.0, 0.33, th - 0.1))),
            Part("table", "box", (0.74, 0.72, 0.08), grey, "steel", rest=PartState((0.0, -0.06, th - 0.04))),
            Part("slot_0", "box", (0.74, 0.02, 0.004), dark, "steel", rest=PartState((0.0, -0.33, th + 0.001))),
            Part("slot_1", "box", (0.74, 0.02, 0.004), dark, "steel", rest=PartState((0.0, 0.22, th + 0.001))),
            Part("head", "box", (0.36, HEAD_Y1 - HEAD_Y0, HEAD_H), paint, "paint",
                 rest=PartState((0.0, head_y, hb + HEAD_H / 2))),
            Part("belt_guard", "box", (0.38, HEAD_Y1 - HEAD_Y0 + 0.02, 0.13), yellow, "paint",
                 rest=PartState((0.0, head_y, head_top + 0.065))),
            Part("motor", "cylinder", (0.24, 0.24, 0.3), (0.3, 0.32, 0.35), "paint",
                 rest=PartState((0.0, 0.36, head_top + 0.13 + 0.15))),
            Part("motor_cap", "cylinder", (0.18, 0.18, 0.05), dark, "paint",
                 rest=PartState((0.0, 0.36, head_top + 0.13 + 0.325))),
            Part("panel", "box", (0.15, 0.02, 0.17), dark, "plastic", rest=PartState((0.1, HEAD_Y0 - 0.01, hb + 0.25))),
            Part("lamp", "cylinder", (0.055, 0.055, 0.02), (0.12, 0.2, 0.14), "plastic"),
            Part("estop", "cylinder", (0.05, 0.05, 0.025), (0.9, 0.1, 0.1), "plastic",
                 rest=PartState((0.1, HEAD_Y0 - 0.025, hb + 0.2), (math.pi / 2, 0.0, 0.0))),
            Part("cable", "box", (0.03, 0.03, col_h * 0.6), dark, "rubber",
                 rest=PartState((-0.1, COLUMN_Y + 0.1, col_h * 0.6 / 2))),
            Part("quill", "cylinder", (0.075, 0.075, QUILL_L), (0.85, 0.86, 0.9), "chrome"),
            Part("chuck", "cylinder", (CHUCK_D, CHUCK_D, CHUCK_H), (0.7, 0.71, 0.74), "steel"),
            Part("dog", "box", (0.04, 0.035, CHUCK_H * 0.9), (0.95, 0.45, 0.05), "paint"),
            Part("bit", "cylinder", (BIT_D, BIT_D, self._v("bit_length")), (0.25, 0.26, 0.3),
                 "steel"),
            Part("hub", "cylinder", (0.08, 0.08, 0.07), dark, "paint",
                 rest=PartState((0.18 + 0.035, 0.0, hb + 0.16), (0.0, math.pi / 2, 0.0))),
            # the vice
            Part("jaw_back", "box", (JAW_L, JAW_T, self._jaw_h), dark, "steel",
                 rest=PartState((0.0, wp / 2 + JAW_T / 2, th + jh / 2))),
            Part("jaw_front", "box", (JAW_L, JAW_T, self._jaw_h), dark, "steel"),
            Part("vice_cyl", "cylinder", (0.08, 0.08, 0.12), (0.2, 0.35, 0.7), "paint",
                 rest=PartState((0.0, self._vice_cyl_y(), th + jh / 2), (math.pi / 2, 0.0, 0.0))),
            Part("vice_rod", "cylinder", (0.025, 0.025, 1.0), (0.85, 0.86, 0.9), "chrome"),
            # the plate
            Part("plate", "box", (lp, wp, hp), plate, "paint"),
            Part("mark", "cylinder", (MARK_D, MARK_D, 0.002), (0.9, 0.08, 0.08), "paint"),
            Part("hole", "cylinder", (HOLE_D, HOLE_D, 0.004), (0.02, 0.02, 0.02), "rubber"),
            # infeed / outfeed
            Part("cab_in", "box", (HOOD_L, 0.5, hp + 0.26), paint, "paint",
                 rest=PartState((-(XH + HOOD_L / 2), 0.0, cab_z))),
            Part("cab_out", "box", (HOOD_L, 0.5, hp + 0.26), paint, "paint",
                 rest=PartState((XH + HOOD_L / 2, 0.0, cab_z))),
            Part("cab_leg_in", "box", (0.3, 0.3, th - 0.1), paint, "paint",
                 rest=PartState((-(XH + HOOD_L / 2), 0.0, (th - 0.1) / 2))),
            Part("cab_leg_out", "box", (0.3, 0.3, th - 0.1), paint, "paint",
                 rest=PartState((XH + HOOD_L / 2, 0.0, (th - 0.1) / 2))),
            Part("slot_in", "box", (0.01, wp + 0.06, hp + 0.05), dark, "rubber",
                 rest=PartState((-XH + 0.004, 0.0, th + (hp + 0.05) / 2))),
            Part("slot_out", "box", (0.01, wp + 0.06, hp + 0.05), dark, "rubber",
                 rest=PartState((XH - 0.004, 0.0, th + (hp + 0.05) / 2))),
            Part("stripe_in", "box", (0.012, 0.51, 0.05), yellow, "paint",
                 rest=PartState((-XH + 0.005, 0.0, cab_z + cab_h / 2 - 0.04))),
            Part("stripe_out", "box", (0.012, 0.51, 0.05), yellow, "paint",
                 rest=PartState((XH - 0.005, 0.0, cab_z + cab_h / 2 - 0.04))),
            Part("frame_in", "box", (conv_len, 0.38, 0.08), paint, "paint",
                 rest=PartState((-(0.37 + conv_len / 2), 0.0, th - 0.07))),
            Part("frame_out", "box", (conv_len, 0.38, 0.08), paint, "paint",
                 rest=PartState((0.37 + conv_len / 2, 0.0, th - 0.07))),
        ]
        parts += [Part(f"spoke_{i}", "box", (0.018, 0.018, 0.22), (0.8, 0.81, 0.84), "chrome")
                  for i in range(3)]
        parts += [Part(f"knob_{i}", "cylinder", (0.045, 0.045, 0.045), dark, "plastic")
                  for i in range(3)]
        parts += [Part(f"roller_{s}{i}", "cylinder", (0.05, 0.05, 0.36), (0.7, 0.7, 0.72), "steel",
                       rest=PartState((sign * float(x), 0.0, th - 0.025), (math.pi / 2, 0.0, 0.0)))
                  for s, sign in (("in", -1.0), ("out", 1.0))
                  for i, x in enumerate(np.linspace(0.42, XH - 0.05, N_ROLLERS))]
        parts += [Part(f"leg_{s}", "box", (0.06, 0.3, th - 0.11), paint, "paint",
                       rest=PartState((sign * (0.37 + conv_len / 2), 0.0, (th - 0.11) / 2)))
                  for s, sign in (("in", -1.0), ("out", 1.0))]
        return {p.name: p for p in parts}

    def steps(self) -> list[Step]:
        feed = self._travel_x / self._v("feed_speed")
        return [
            Step("feed", feed),
            Step("clamp", self._v("clamp_seconds")),
            Step("approach", self._v("approach_seconds")),
            Step("drill", self._depth / self._v("drill_speed")),
            Step("retract", self._v("retract_seconds")),
            Step("unclamp", self._v("clamp_seconds")),
            Step("eject", feed),
            Step("idle", self._v("idle_seconds")),
        ]

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        order = [s.name for s in self.steps()]
        k = order.index(step)
        tx, depth = self._travel_x, self._depth
        x = {"feed": -tx + tx * t, "eject": tx * t, "idle": tx}.get(step, 0.0)
        clamp = {"clamp": t, "unclamp": 1.0 - t}.get(step, 1.0 if 1 < k < 5 else 0.0)
        travel = {"approach": GAP * t, "drill": GAP + depth * t,
                  "retract": (GAP + depth) * (1.0 - t)}.get(step, 0.0)
        spinning = step in ("approach", "drill", "retract")
        angle = 0.0
        if spinning:
            secs = {s.name: s.seconds for s in self.steps()}
            since = sum(secs[n] for n in order[2:k]) + t * secs[step]
            turns, total = self._spin_turns()
            angle = (2 * math.pi * turns * since / total) % (2 * math.pi)
        return Motion(x=x, clamp=clamp, travel=travel, angle=angle, spinning=spinning,
                      hole=k >= 3)

    def read(self, pose: Pose) -> Motion:
        """The motion values a pose was built from (the inverse of `build`)."""
        plate, hole = pose["plate"], pose["hole"]
        x, yaw = plate.location[0], plate.rotation[2]
        jaw_y = pose["jaw_front"].location[1]
        clamp = 1.0 - (-jaw_y - self._v("plate_width") / 2 - JAW_T / 2) / OPEN
        travel = self._chuck_rest - (pose["chuck"].location[2] - CHUCK_H / 2)
        dx, dy = hole.location[0] - x, hole.location[1] - plate.location[1]
        return Motion(
            x=x, clamp=clamp, travel=travel, angle=pose["dog"].rotation[2],
            spinning=pose["lamp"].color is not None,
            hole=hole.visible or x > 0,
            hole_dx=dx * math.cos(yaw) + dy * math.sin(yaw), yaw=yaw,
            bit=pose["bit"].scale[2])

    def build(self, m: Motion) -> Pose:
        """Poses of the moving parts for motion values `m`."""
        wp, hp, th = self._v("plate_width"), self._v("plate_height"), self._v("table_height")
        lb = self._v("bit_length")
        top = self._plate_top
        shown = self.plate_visible(m.x)
        c, s = math.cos(m.yaw), math.sin(m.yaw)
        hole_x = m.x + c * m.hole_dx
        pose = {
            "plate": PartState((m.x, 0.0, th + hp / 2), (0.0, 0.0, m.yaw), visible=shown),
            "mark": PartState((m.x, 0.0, top + 0.001), (0.0, 0.0, m.yaw), visible=shown),
            "hole": PartState((hole_x, s * m.hole_dx, top + 0.002), (0.0, 0.0, m.yaw),
                              visible=shown and m.hole and abs(hole_x) < XH - HOLE_HIDE),
        }
        jaw_y = -(wp / 2 + JAW_T / 2 + OPEN * (1.0 - m.clamp))
        jh = self._jaw_h
        cyl_back = self._vice_cyl_y() + 0.06
        rod = (jaw_y - JAW_T / 2) - cyl_back + 0.02
        pose["jaw_front"] = PartState((0.0, jaw_y, th + jh / 2))
        pose["vice_rod"] = PartState((0.0, cyl_back - 0.02 + rod / 2, th + jh / 2),
                                     (math.pi / 2, 0.0, 0.0), (1.0, 1.0, rod))
        cb = self._chuck_rest - m.travel
        r = CHUCK_D / 2 + 0.008
        bit_len = lb * m.bit
        pose["chuck"] = PartState((0.0, 0.0, cb + CHUCK_H / 2))
        pose["dog"] = PartState((r * math.cos(m.angle), r * math.sin(m.angle), cb + CHUCK_H / 2),
                                (0.0, 0.0, m.angle))
        pose["bit"] = PartState((0.0, 0.0, cb - bit_len / 2), scale=(1.0, 1.0, m.bit))
        pose["quill"] = PartState((0.0, 0.0, cb + CHUCK_H + QUILL_L / 2))
        pose["lamp"] = PartState((0.1, HEAD_Y0 - 0.025, self._head_bottom + 0.29),
                                 (math.pi / 2, 0.0, 0.0), color=LAMP_ON if m.spinning else None)
        hub = np.array([0.18 + 0.035, 0.0, self._head_bottom + 0.16])
        turn = m.travel * HANDLE_TURN
        for i in range(3):
            a = 2 * math.pi * i / 3 + turn
            d = np.array([0.0, -math.sin(a), math.cos(a)])
            pose[f"spoke_{i}"] = PartState(tuple(float(v) for v in hub + 0.11 * d + [0.02, 0, 0]),
                                           (a, 0.0, 0.0))
            pose[f"knob_{i}"] = PartState(tuple(float(v) for v in hub + 0.22 * d + [0.02, 0, 0]),
                                          (0.0, math.pi / 2, 0.0))
        return pose

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        top = self._head_bottom + HEAD_H + 0.13 + 0.35
        return (np.array([-(XH + HOOD_L), -0.45, 0.0]), np.array([XH + HOOD_L, 0.6, top]))


# --------------------------------------------------------------------- device-specific kinds


class HoleOffMark(AnomalyKind):
    """The plate stops short of / past its place under the spindle: the hole is drilled beside
    the red mark."""

    error = (0.25, 0.4)  # of the plate length, either way
    ramp = 0.15  # m of feed over which the plate drifts off its normal path

    def plan(self, device, schedule, cycle, rng):
        dx = float(rng.uniform(*self.error)) * device.values["plate_length"] \
            * float(rng.choice([-1.0, 1.0]))
        tx = device._travel_x

        def change(m: Motion) -> Motion:
            if m.x <= 0:
                x = m.x + dx * max(0.0, 1.0 + m.x / self.ramp)
            else:
                x = m.x + dx * (1.0 - m.x / tx)
            return replace(m, x=x, hole_dx=-dx if m.hole else 0.0)
        return self._motion_edit(device, schedule, cycle, change)


class SpindleStopped(AnomalyKind):
    """The spindle does not turn (lamp stays off, the chuck's dog stands still): the bit only
    presses on the plate, which leaves without a hole."""

    def plan(self, device, schedule, cycle, rng):
        def change(m: Motion) -> Motion:
            return replace(m, spinning=False, angle=0.0, travel=min(m.travel, GAP), hole=False)
        return self._motion_edit(device, schedule, cycle, change, "approach", "eject")


class BrokenBit(AnomalyKind):
    """The bit is broken off short: it does not reach the plate, which leaves without a hole."""

    left = (0.3, 0.5)  # fraction of the bit left in the chuck

    def plan(self, device, schedule, cycle, rng):
        k = float(rng.uniform(*self.left))

        def change(m: Motion) -> Motion:
            return replace(m, bit=k, hole=False)
        return self._motion_edit(device, schedule, cycle, change)


class NoClamp(AnomalyKind):
    """The vice does not close; the bit catches the loose plate and twists it, and it leaves
    askew."""

    degrees = (10.0, 18.0)

    def plan(self, device, schedule, cycle, rng):
        yaw = math.radians(float(rng.uniform(*self.degrees))) * float(rng.choice([-1.0, 1.0]))

        def change(m: Motion) -> Motion:
            return replace(m, clamp=0.0, yaw=yaw if m.hole else 0.0)
        return self._motion_edit(device, schedule, cycle, change, "clamp", "eject")


class DoubleDrill(AnomalyKind):
    """Drilled twice: after retracting, the head plunges into the hole again and retracts once
    more before the vice opens (the program runs late by one retract there and back)."""

    def plan(self, device, schedule, cycle, rng):
        lo, hi = schedule.step_span(cycle, "retract")
        seq = tuple(float(u) for u in [*range(hi - 1, lo - 1, -1), *range(lo, hi)])
        return self._event(cycle, clock=ClockEdit(hi, seq, hi))


Driller.anomalies = {k.name: k for k in (
    ColorChange("plate_color", "appearance", "a plate of another colour", ("plate",),
                steps=("feed", "eject")),
    Missing("missing_guard", "appearance", "the belt guard on the head is missing",
            ("belt_guard",)),
    BrokenBit("broken_bit", "appearance", "the bit is broken short; no hole is drilled",
              ("bit", "hole")),
    HoleOffMark("hole_off_mark", "position", "the plate stops off its place: hole beside the mark",
                PLATE),
    Tilt("plate_tilt", "position", "the plate leaves askew", PLATE, degrees=(15.0, 30.0),
         steps=("eject",)),
    Stall("drill_stall", "motion", "the head sticks while drilling, then goes on",
          HEAD_MOVING + ("lamp",), step="drill"),
    SpeedChange("slow_drill", "motion", "the head feeds too slowly while drilling",
                HEAD_MOVING, step="drill", factor=(0.35, 0.5)),
    Jerk("head_jerk", "motion", "the spindle judders while drilling", SPINDLE, step="drill"),
    Reverse("feed_reverse", "motion", "the plate rolls backwards for a while on the infeed",
            ("plate", "mark"), step="feed"),
    SpindleStopped("spindle_stopped", "motion", "the spindle does not turn; no hole is drilled",
                   ("lamp", "dog", "chuck", "bit", "hole")),
    Missing("no_workpiece", "logic", "the press drills with no plate on the table", PLATE),
    NoClamp("no_clamp", "logic", "the vice stays open; the loose plate is twisted by the bit",
            VICE + PLATE),
    DoubleDrill("double_drill", "logic", "the head drills the same hole twice",
                HEAD_MOVING + VICE + PLATE + ("lamp",)),
)}
