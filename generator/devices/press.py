"""Press: a straight-side stamping press with a feed table and an out table.

Cycle: a feeder bar pushes a sheet blank from the feed table onto the lower die, the ram (slide)
comes down, dwells at the bottom (the sheet is stamped: a raised panel, the "dome", appears), goes back up, the
stamped part is ejected onto the out table while the feeder returns, a short idle. x runs from the
feed table through the press to the out table, z is up, the camera looks from -y.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, Jerk, Missing, ShapeChange, SpeedChange, Stall, Tilt
from ipadgen.params import ParamRange
from ipadgen.program import ClockEdit, Device, Part, PartState, Pose, Step

BASE_TOP = 0.7
BED = 0.85  # bolster top
DIE_TOP = 0.95
THICK = 0.02  # sheet thickness
PUNCH_H, RAM_H, CROWN_H = 0.15, 0.45, 0.6
RAM = ("ram", "punch", "rod_l", "rod_r")
SHEET = ("sheet", "dome")


@dataclass(frozen=True)
class Motion:
    sheet_x: float
    punch_z: float  # punch bottom
    feeder_x: float
    stamped: bool  # the dome is on the sheet


class Press(Device):
    name = "press"
    description = "stamping press: sheet fed onto the die, ram down, dwell, ram up, part ejected"
    params = {
        "sheet_length": ParamRange(0.5, 0.8, "m"),
        "sheet_width": ParamRange(0.4, 0.6, "m"),
        "sheet_hue": ParamRange(0.5, 0.65, "", "tint of the sheet metal"),
        "press_hue": ParamRange(0.0, 1.0, "", "hue of the press frame paint"),
        "stroke": ParamRange(0.3, 0.45, "m", "ram travel"),
        "feed_speed": ParamRange(0.35, 0.6, "m/s"),
        "ram_speed": ParamRange(0.25, 0.4, "m/s", "ram coming down; it goes up 1.3 times faster"),
        "dwell_seconds": ParamRange(0.3, 0.6, "s"),
        "eject_speed": ParamRange(0.5, 0.8, "m/s"),
        "idle_seconds": ParamRange(1.0, 2.0, "s"),
    }

    # ------------------------------------------------------------------ layout

    @property
    def window(self) -> float:
        return self._v("sheet_length") + 0.6

    @property
    def depth(self) -> float:
        return self._v("sheet_width") + 0.7

    @property
    def x_in(self) -> float:
        return -(self.window / 2 + 0.35 + self._v("sheet_length") / 2)

    @property
    def x_out(self) -> float:
        return -self.x_in

    @property
    def feeder_home(self) -> float:
        return self.x_in - self._v("sheet_length") / 2 - 0.02

    @property
    def feeder_end(self) -> float:
        return -self._v("sheet_length") / 2 - 0.02

    @property
    def punch_up(self) -> float:
        """Punch bottom with the ram up."""
        return DIE_TOP + THICK + self._v("stroke")

    @property
    def crown_bottom(self) -> float:
        return self.punch_up + PUNCH_H + RAM_H + 0.35

    def parts(self) -> dict[str, Part]:
        sl, sw, W, D = self._v("sheet_length"), self._v("sheet_width"), self.window, self.depth
        paint = tuple(colorsys.hsv_to_rgb(self._v("press_hue"), 0.6, 0.6))
        sheet = tuple(colorsys.hsv_to_rgb(self._v("sheet_hue"), 0.12, 0.78))
        dark, steel, yellow = (0.16, 0.16, 0.17), (0.55, 0.57, 0.6), (0.95, 0.8, 0.1)
        up_h = self.crown_bottom - BASE_TOP
        table = abs(self.x_in) + sl / 2 + 0.1 - (0.7 * sl / 2 + 0.06)
        ux, uy = W / 2 + 0.125, D / 2 - 0.125
        die_half = 0.7 * sl / 2 + 0.06
        table_mid = (abs(self.x_in) + sl / 2 + 0.1 + die_half) / 2
        crown_z = self.crown_bottom + CROWN_H / 2
        upright_at = ((-ux, -uy), (ux, -uy), (-ux, uy), (ux, uy))
        button = (np.pi / 2, 0.0, 0.0)
        p = [
            Part("floor", "box", (16.0, 16.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (16.0, 0.1, 5.0), (0.72, 0.71, 0.68), "concrete",
                 rest=PartState((0.0, D / 2 + 1.0, 2.5))),
            Part("base", "box", (W + 0.6, D + 0.3, BASE_TOP), paint, "paint", rest=PartState((0.0, 0.0, BASE_TOP / 2))),
            Part("bolster", "box", (W - 0.05, D - 0.1, BED - BASE_TOP), steel, "steel",
                 rest=PartState((0.0, 0.0, (BED + BASE_TOP) / 2))),
            *[Part(f"upright_{i}", "box", (0.25, 0.25, up_h), paint, "paint",
                   rest=PartState((x, y, BASE_TOP + up_h / 2))) for i, (x, y) in enumerate(upright_at)],
            Part("crown", "box", (W + 0.6, D + 0.3, CROWN_H), paint, "paint", rest=PartState((0.0, 0.0, crown_z))),
            Part("motor", "box", (0.5, 0.4, 0.35), (0.2, 0.35, 0.25), "paint",
                 rest=PartState((-0.2 * W, 0.1, self.crown_bottom + CROWN_H + 0.175))),
            Part("flywheel", "cylinder", (0.75, 0.75, 0.18), dark, "steel",
                 rest=PartState((W / 2 + 0.4, 0.0, crown_z), rotation=(np.pi / 2, 0.0, 0.0))),
            Part("belt_guard", "box", (0.5, 0.06, 0.55), yellow, "paint",
                 rest=PartState((W / 2 + 0.4, -0.14, crown_z))),
            Part("ram", "box", (W - 0.1, D - 0.3, RAM_H), paint, "paint"),
            Part("punch", "box", (0.7 * sl, 0.7 * sw, PUNCH_H), dark, "steel"),
            Part("rod_l", "cylinder", (0.12, 0.12, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("rod_r", "cylinder", (0.12, 0.12, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("die", "box", (0.7 * sl + 0.1, 0.7 * sw + 0.1, DIE_TOP - BED), dark, "steel",
                 rest=PartState((0.0, 0.0, (DIE_TOP + BED) / 2))),
            Part("curtain_l", "box", (0.05, 0.05, 0.9), yellow, "paint",
                 rest=PartState((-W / 2 + 0.03, -D / 2 - 0.03, BED + 0.45))),
            Part("curtain_r", "box", (0.05, 0.05, 0.9), yellow, "paint",
                 rest=PartState((W / 2 - 0.03, -D / 2 - 0.03, BED + 0.45))),
            Part("feed_table", "box", (table, sw + 0.2, 0.05), steel, "steel",
                 rest=PartState((-table_mid, 0.0, DIE_TOP - 0.025))),
            Part("out_table", "box", (table, sw + 0.2, 0.05), (0.08, 0.08, 0.08), "rubber",
                 rest=PartState((table_mid, 0.0, DIE_TOP - 0.025))),
            Part("feed_leg", "box", (0.08, 0.08, DIE_TOP - 0.05), dark, "paint",
                 rest=PartState((self.x_in, 0.0, (DIE_TOP - 0.05) / 2))),
            Part("out_leg", "box", (0.08, 0.08, DIE_TOP - 0.05), dark, "paint",
                 rest=PartState((self.x_out, 0.0, (DIE_TOP - 0.05) / 2))),
            Part("feeder", "box", (0.04, 0.8 * sw, 0.06), (0.95, 0.45, 0.05), "paint"),
            Part("feeder_rail", "box", (table, 0.05, 0.05), dark, "steel",
                 rest=PartState((-table_mid, sw / 2 + 0.13, DIE_TOP + 0.0))),
            Part("panel", "box", (0.4, 0.2, 0.5), (0.82, 0.83, 0.8), "paint",
                 rest=PartState((self.x_in, D / 2 + 0.35, 1.2))),
            Part("panel_post", "box", (0.08, 0.08, 1.0), dark, "paint", rest=PartState((self.x_in, D / 2 + 0.35, 0.5))),
            Part("button_l", "cylinder", (0.07, 0.07, 0.04), (0.1, 0.7, 0.15), "plastic",
                 rest=PartState((self.x_in - 0.1, D / 2 + 0.24, 1.25), rotation=button)),
            Part("button_r", "cylinder", (0.07, 0.07, 0.04), (0.85, 0.1, 0.1), "plastic",
                 rest=PartState((self.x_in + 0.1, D / 2 + 0.24, 1.25), rotation=button)),
            Part("sheet", "box", (sl, sw, THICK), sheet, "steel"),
            Part("dome", "box", (0.65 * sl, 0.6 * sw, 0.04), sheet, "steel"),
        ]
        return {q.name: q for q in p}

    def steps(self) -> list[Step]:
        stroke, rs = self._v("stroke"), self._v("ram_speed")
        dist = abs(self.x_in)
        return [Step("feed", dist / self._v("feed_speed")), Step("down", stroke / rs),
                Step("dwell", self._v("dwell_seconds")), Step("up", stroke / (1.3 * rs)),
                Step("eject", dist / self._v("eject_speed")),
                Step("idle", self._v("idle_seconds"))]

    # ------------------------------------------------------------------ the program

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        up, low = self.punch_up, DIE_TOP + THICK
        home, end = self.feeder_home, self.feeder_end
        if step == "feed":
            x = self.x_in * (1 - t)
            return Motion(x, up, x - self._v("sheet_length") / 2 - 0.02, False)
        if step == "down":
            return Motion(0.0, up - t * (up - low), end, False)
        if step == "dwell":
            return Motion(0.0, low, end, True)
        if step == "up":
            return Motion(0.0, low + t * (up - low), end, True)
        if step == "eject":  # the feeder goes back while the part leaves
            return Motion(t * self.x_out, up, end + t * (home - end), True)
        return Motion(self.x_out, up, home, True)  # idle

    def ram(self, punch_z: float) -> Pose:
        W = self.window
        ram_bottom = punch_z + PUNCH_H
        rod = self.crown_bottom - (ram_bottom + RAM_H) + 0.05
        rz = ram_bottom + RAM_H + rod / 2 - 0.025
        return {"punch": PartState((0.0, 0.0, punch_z + PUNCH_H / 2)),
                "ram": PartState((0.0, 0.0, ram_bottom + RAM_H / 2)),
                "rod_l": PartState((-0.22 * W, 0.0, rz), scale=(1.0, 1.0, rod)),
                "rod_r": PartState((0.22 * W, 0.0, rz), scale=(1.0, 1.0, rod))}

    def sheet(self, x: float, stamped: bool, dome_x: float | None = None) -> Pose:
        return {"sheet": PartState((x, 0.0, DIE_TOP + THICK / 2)),
                "dome": PartState((x if dome_x is None else dome_x, 0.0, DIE_TOP + THICK + 0.02),
                                  visible=stamped)}

    def build(self, m: Motion) -> Pose:
        return {**self.ram(m.punch_z), **self.sheet(m.sheet_x, m.stamped),
                "feeder": PartState((m.feeder_x, 0.0, DIE_TOP + 0.03))}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        sl, D = self._v("sheet_length"), self.depth
        far = abs(self.x_in) + sl / 2 + 0.1
        return (np.array([-far, -D / 2 - 0.2, 0.0]),
                np.array([far, D / 2 + 0.45, self.crown_bottom + CROWN_H + 0.35]))


# ---------------------------------------------------------------------- device-specific kinds


@dataclass(frozen=True)
class DoubleStroke(AnomalyKind):
    """The ram makes a second stroke on the same part before it is ejected."""

    def plan(self, device, schedule, cycle, rng):
        d0, _ = schedule.step_span(cycle, "down")
        _, u1 = schedule.step_span(cycle, "up")
        seq = tuple(float(u) for u in [*range(d0, u1), *range(d0, u1)])
        return self._event(cycle, clock=ClockEdit(d0, seq, u1))


@dataclass(frozen=True)
class NotEjected(AnomalyKind):
    """The stamped part is not ejected: it stays in the die (where the next blank will land)."""

    def plan(self, device, schedule, cycle, rng):
        return self._state_edit(
            schedule, cycle, lambda pose, frame, phase: pose.update(device.sheet(0.0, True)) or pose,
            "eject")


@dataclass(frozen=True)
class Misaligned(AnomalyKind):
    """The feeder overshoots or stops short: the sheet lies off-centre under the ram and the dome
    is stamped off the sheet's middle."""

    def plan(self, device, schedule, cycle, rng):
        off = rng.uniform(0.2, 0.3) * device._v("sheet_length") * rng.choice([-1.0, 1.0])
        home, end, x_in = device.feeder_home, device.feeder_end, device.x_in

        def apply(pose, frame, phase):
            x = pose["sheet"].location[0]
            shift = off * (x - x_in) / (0.0 - x_in) if x < 0.0 else off
            sx, sy, sz = pose["sheet"].location
            pose["sheet"] = pose["sheet"].moved(location=(sx + shift, sy, sz))
            fx, fy, fz = pose["feeder"].location
            pose["feeder"] = pose["feeder"].moved(
                location=(fx + off * (fx - home) / (end - home), fy, fz))
            return pose
        return self._state_edit(schedule, cycle, apply, "feed")


@dataclass(frozen=True)
class StopsShort(AnomalyKind):
    """The ram stops short of the bottom: the sheet is not stamped (no dome) and leaves as it
    came."""

    def plan(self, device, schedule, cycle, rng):
        up, low = device.punch_up, DIE_TOP + THICK
        stop = low + rng.uniform(0.3, 0.55) * (up - low)

        def apply(pose, frame, phase):
            pz = pose["punch"].location[2] - PUNCH_H / 2
            pose.update(device.ram(max(pz, stop)))
            pose["dome"] = pose["dome"].moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply, "down")


Press.anomalies = {k.name: k for k in (
    ColorChange("sheet_color", "appearance", "a blank of another material (colour)", SHEET),
    ShapeChange("sheet_size", "appearance", "a blank of the wrong, bigger size", ("sheet",),
                factor=(1.25, 1.4)),
    Missing("missing_curtain", "appearance", "a light-curtain post is missing", ("curtain_l",)),
    Misaligned("misaligned", "position", "the sheet lies off-centre under the ram and is stamped "
               "off its middle", SHEET + ("feeder",)),
    Tilt("sheet_askew", "position", "the sheet is fed askew and stamped askew", SHEET,
         degrees=(12.0, 25.0)),
    Stall("stall", "motion", "the ram stops mid-stroke, then goes on", RAM, step="down"),
    SpeedChange("slow_stroke", "motion", "the ram comes down far too slowly", RAM, step="down",
                factor=(0.4, 0.6)),
    Jerk("jerk", "motion", "the ram judders on its way down", RAM, step="down",
         amplitude=(0.02, 0.035)),
    StopsShort("stops_short", "motion", "the ram stops short of the bottom: the part is not "
               "stamped", RAM + ("dome",)),
    DoubleStroke("double_stroke", "logic", "the ram strokes twice on the same part",
                 RAM + SHEET),
    NotEjected("not_ejected", "logic", "the part is not ejected and stays in the die", SHEET),
    Missing("no_stamp", "logic", "the part comes out without its dome (die failed)", ("dome",),
            steps=("eject", "idle")),
    Missing("no_sheet", "logic", "the press strokes with no sheet fed", SHEET),
)}
