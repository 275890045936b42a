"""Cutter: a guillotine that cuts pieces off a bar fed forward to a length mark.

A feed carriage grips the bar and pushes it through the cutting head until its end reaches the
length mark (a red line on the ruler, watched by a sensor); a clamp holds the bar, the blade comes
down and cuts, rises, the clamp opens, and the cut piece slides along the outfeed table into a
parts bin while the carriage returns. Cycle: feed, clamp_down, cut, blade_up, clamp_up, eject,
idle. x runs along the bar (the blade cuts at x = 0), z is up, the camera looks from -y.

The program is built from a few motion values (bar fed, carriage travel, clamp, blade, eject,
piece yaw); device-specific anomalies read them back from a pose, change them and rebuild.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, Jerk, Missing, Reverse, Shift, SpeedChange, Stall, Tilt
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

STOCK_START = -1.4  # x of the bar's hidden end, inside the feeder housing
KERF = 0.015  # the cut piece moves off by this once cut
BLADE_H = 0.2
CLAMP_X = -0.19
OVERFEED = 1.45  # the bin takes pieces up to this many nominal lengths
BLADE_PARTS = ("blade", "holder", "ram")
CARRIAGE = ("carriage", "jaw_front", "jaw_back")
VISIBLE_OUT = 0.25


@dataclass(frozen=True)
class Motion:
    fed: float  # length of bar beyond the blade (the piece), m
    carriage: float  # carriage travel from its rest, m
    jaws: bool  # carriage jaws closed
    clamp: float  # 0 up .. 1 down
    blade: float  # 0 up .. 1 through the bar
    cut: bool  # the piece has been cut off
    eject: float  # 0 .. 1 of the slide into the bin
    yaw: float = 0.0  # piece turned about its left end (radians)


class Cutter(Device):
    name = "cutter"
    description = "guillotine cutter: bar fed to a length mark, clamped, cut, piece ejected"
    params = {
        "piece_length": ParamRange(0.25, 0.5, "m", "length of a cut piece (the mark)"),
        "bar_size": ParamRange(0.07, 0.12, "m", "side of the square bar"),
        "table_height": ParamRange(0.8, 0.95, "m"),
        "bar_hue": ParamRange(0.0, 1.0, "", "hue of the bar's paint"),
        "machine_hue": ParamRange(0.0, 1.0, "", "hue of the machine's paint"),
        "feed_speed": ParamRange(0.12, 0.25, "m/s"),
        "clamp_seconds": ParamRange(0.4, 0.8, "s", "clamp closing / opening"),
        "cut_speed": ParamRange(0.15, 0.3, "m/s", "blade speed"),
        "eject_seconds": ParamRange(1.0, 2.0, "s", "piece sliding into the bin"),
        "idle_seconds": ParamRange(0.5, 2.0, "s"),
    }

    # ------------------------------------------------------------------ geometry

    @property
    def _stroke(self) -> float:
        return self._v("bar_size") + 0.1

    @property
    def _bin_x(self) -> float:
        """x of the bin's left face (its slot)."""
        return OVERFEED * self._v("piece_length") + 0.2

    @property
    def _bin_length(self) -> float:
        return OVERFEED * self._v("piece_length") + 0.15

    @property
    def _eject_distance(self) -> float:
        return self._bin_x + 0.06

    @property
    def _carriage_rest(self) -> float:
        return CLAMP_X - 0.15 - OVERFEED * self._v("piece_length")

    def _top(self) -> float:
        hb, a = self._v("table_height"), self._v("bar_size")
        return hb + a + 0.06 + BLADE_H + 0.5

    def parts(self) -> dict[str, Part]:
        a, lp, hb = self._v("bar_size"), self._v("piece_length"), self._v("table_height")
        bar = colorsys.hsv_to_rgb(self._v("bar_hue"), 0.35, 0.7)
        paint = colorsys.hsv_to_rgb(self._v("machine_hue"), 0.6, 0.6)
        dark = (0.16, 0.17, 0.19)
        yellow = (0.95, 0.75, 0.08)
        top = self._top()
        col_h = top - hb
        infeed_len = -STOCK_START - 0.25
        infeed_x = STOCK_START + infeed_len / 2
        bar_z = hb + a / 2
        bin_cx = self._bin_x + self._bin_length / 2
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, 1.6, 2.0))),
            Part("stock", "box", (-STOCK_START, a, a), bar, "steel", rest=PartState((STOCK_START / 2, 0.0, bar_z))),
            Part("piece", "box", (lp, a, a), bar, "steel"),
            Part("feeder", "box", (0.45, 0.55, hb + 0.5), paint, "paint",
                 rest=PartState((STOCK_START, 0.0, (hb + 0.5) / 2))),
            Part("feeder_slot", "box", (0.01, 0.2, 0.2), dark, "rubber",
                 rest=PartState((STOCK_START + 0.23, 0.0, bar_z))),
            Part("infeed_table", "box", (infeed_len, 0.3, 0.08), paint, "paint",
                 rest=PartState((infeed_x, 0.0, hb - 0.07))),
            Part("rail", "box", (infeed_len, 0.05, 0.05), (0.7, 0.7, 0.72), "steel",
                 rest=PartState((infeed_x, 0.19, hb + a + 0.06))),
            Part("carriage", "box", (0.14, 0.34, 0.08), yellow, "paint"),
            Part("jaw_front", "box", (0.1, 0.03, a + 0.04), dark, "paint"),
            Part("jaw_back", "box", (0.1, 0.03, a + 0.04), dark, "paint"),
            Part("base", "box", (0.5, 0.6, hb), paint, "paint", rest=PartState((0.0, 0.0, hb / 2))),
            Part("column_front", "box", (0.1, 0.08, col_h), paint, "paint",
                 rest=PartState((0.0, -0.26, hb + col_h / 2))),
            Part("column_back", "box", (0.1, 0.08, col_h), paint, "paint", rest=PartState((0.0, 0.26, hb + col_h / 2))),
            Part("crossbeam", "box", (0.16, 0.6, 0.12), paint, "paint", rest=PartState((0.0, 0.0, top - 0.06))),
            Part("cylinder", "cylinder", (0.16, 0.16, 0.35), (0.75, 0.77, 0.8), "steel",
                 rest=PartState((0.0, 0.0, top + 0.175))),
            Part("ram", "cylinder", (0.05, 0.05, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("holder", "box", (0.08, 0.3, 0.08), dark, "paint"),
            Part("blade", "box", (0.012, 0.26, BLADE_H), (0.85, 0.86, 0.9), "chrome"),
            Part("clamp", "box", (0.1, 0.2, 0.05), (0.85, 0.25, 0.1), "paint"),
            Part("clamp_rod", "cylinder", (0.03, 0.03, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("clamp_cyl", "cylinder", (0.08, 0.08, 0.16), (0.75, 0.77, 0.8), "steel",
                 rest=PartState((CLAMP_X, 0.0, hb + a + 0.4))),
            Part("guard", "box", (0.02, 0.5, 0.35), yellow, "paint", rest=PartState((0.26, 0.0, hb + a + 0.2))),
            Part("outfeed", "box", (self._bin_x - 0.02, 0.3, 0.06), paint, "paint",
                 rest=PartState((self._bin_x / 2 + 0.01, 0.0, hb - 0.03))),
            Part("outfeed_leg", "box", (0.06, 0.06, hb - 0.06), paint, "paint",
                 rest=PartState((self._bin_x * 0.6, 0.0, (hb - 0.06) / 2))),
            Part("ruler", "box", (self._bin_x - 0.04, 0.04, 0.008), yellow, "paint",
                 rest=PartState((self._bin_x / 2, -(a / 2 + 0.05), hb + 0.004))),
            Part("mark", "box", (0.012, 0.05, 0.012), (0.9, 0.08, 0.08), "paint",
                 rest=PartState((lp, -(a / 2 + 0.05), hb + 0.009))),
            Part("sensor_post", "box", (0.04, 0.04, a + 0.2), dark, "paint",
                 rest=PartState((lp, -(a / 2 + 0.2), hb + (a + 0.2) / 2))),
            Part("sensor_arm", "box", (0.03, 0.16, 0.03), dark, "paint",
                 rest=PartState((lp, -(a / 2 + 0.12), hb + a + 0.185))),
            Part("sensor_head", "box", (0.08, 0.08, 0.06), (0.1, 0.1, 0.12), "plastic",
                 rest=PartState((lp, -0.05, hb + a + 0.16))),
            Part("sensor_led", "cylinder", (0.025, 0.025, 0.02), (0.95, 0.1, 0.1), "plastic",
                 rest=PartState((lp, -0.05, hb + a + 0.128))),
            Part("bin", "box", (self._bin_length, 0.5, hb + a + 0.12), (0.18, 0.35, 0.65), "plastic",
                 rest=PartState((bin_cx, 0.0, (hb + a + 0.12) / 2))),
            Part("bin_slot", "box", (0.01, 0.3, a + 0.1), dark, "rubber",
                 rest=PartState((self._bin_x - 0.005, 0.0, bar_z + 0.01))),
            Part("panel", "box", (0.3, 0.12, 0.4), (0.85, 0.86, 0.84), "paint", rest=PartState((-0.5, 0.45, hb + 0.2))),
            Part("estop", "cylinder", (0.06, 0.06, 0.03), (0.9, 0.1, 0.1), "plastic",
                 rest=PartState((-0.5, 0.38, hb + 0.3), (math.pi / 2, 0.0, 0.0))),
        ]
        parts += [Part(f"roller_{i}", "cylinder", (0.06, 0.06, 0.28), (0.7, 0.7, 0.72), "steel",
                       rest=PartState((float(x), 0.0, hb - 0.03), (math.pi / 2, 0.0, 0.0)))
                  for i, x in enumerate(np.linspace(STOCK_START + 0.4, -0.35, 5))]
        parts += [Part(f"leg_{i}", "box", (0.06, 0.06, hb - 0.1), paint, "paint",
                       rest=PartState((x, 0.0, (hb - 0.1) / 2)))
                  for i, x in enumerate((STOCK_START + 0.5, -0.6))]
        return {p.name: p for p in parts}

    def steps(self) -> list[Step]:
        lp = self._v("piece_length")
        cut = self._stroke / self._v("cut_speed")
        return [
            Step("feed", lp / self._v("feed_speed")),
            Step("clamp_down", self._v("clamp_seconds")),
            Step("cut", cut),
            Step("blade_up", cut),
            Step("clamp_up", self._v("clamp_seconds")),
            Step("eject", self._v("eject_seconds")),
            Step("idle", self._v("idle_seconds")),
        ]

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        lp = self._v("piece_length")
        order = [s.name for s in self.steps()]
        k = order.index(step)
        fed = lp * t if step == "feed" else (0.0 if step == "idle" else lp)
        carriage = {"feed": lp * t, "eject": lp * (1 - t), "idle": 0.0}.get(step, lp)
        clamp = {"clamp_down": t, "clamp_up": 1 - t}.get(step, 1.0 if 1 < k < 4 else 0.0)
        blade = {"cut": t, "blade_up": 1 - t}.get(step, 0.0)
        eject = {"eject": t}.get(step, 0.0)
        return Motion(fed=fed, carriage=carriage, jaws=step == "feed", clamp=clamp, blade=blade,
                      cut=k >= 3 and step != "idle", eject=eject)

    def read(self, pose: Pose) -> Motion:
        """The motion values a pose was built from (the inverse of `build`)."""
        a, hb = self._v("bar_size"), self._v("table_height")
        piece = pose["piece"]
        fed = piece.scale[0] * self._v("piece_length") if piece.scale[0] > 0 else 0.0
        left = piece.location[0] - math.cos(piece.rotation[2]) * fed / 2
        cut = left > KERF / 2
        eject = max(0.0, (left - KERF) / self._eject_distance) if cut else 0.0
        blade_bottom = pose["blade"].location[2] - BLADE_H / 2
        clamp_bottom = pose["clamp"].location[2] - 0.025
        jaw_gap = pose["jaw_back"].location[1] - pose["jaw_front"].location[1]
        return Motion(
            fed=fed, carriage=pose["carriage"].location[0] - self._carriage_rest,
            jaws=jaw_gap < a + 0.06, clamp=(hb + a + 0.06 - clamp_bottom) / 0.06,
            blade=(hb + a + 0.06 - blade_bottom) / self._stroke, cut=cut, eject=eject,
            yaw=piece.rotation[2])

    def build(self, m: Motion) -> Pose:
        """Poses of the moving parts for motion values `m`."""
        a, hb, lp = self._v("bar_size"), self._v("table_height"), self._v("piece_length")
        bar_z = hb + a / 2
        left = (KERF if m.cut else 0.0) + m.eject * self._eject_distance
        cx = left + math.cos(m.yaw) * m.fed / 2
        cy = math.sin(m.yaw) * m.fed / 2
        out = self._bin_x - left
        piece = PartState((cx, cy, bar_z), (0.0, 0.0, m.yaw), (m.fed / lp, 1.0, 1.0),
                          visible=m.fed > 0.005 and out >= VISIBLE_OUT * m.fed)
        blade_bottom = hb + a + 0.06 - m.blade * self._stroke
        holder_z = blade_bottom + BLADE_H + 0.04
        ram_len = self._top() - 0.12 - (holder_z + 0.04)
        clamp_bottom = hb + a + 0.06 - 0.06 * m.clamp
        clamp_rod = hb + a + 0.32 - (clamp_bottom + 0.05)
        carriage_x = self._carriage_rest + m.carriage
        jaw = a / 2 + 0.015 + (0.0 if m.jaws else 0.035)
        return {
            "piece": piece,
            "blade": PartState((0.0, 0.0, blade_bottom + BLADE_H / 2)),
            "holder": PartState((0.0, 0.0, holder_z)),
            "ram": PartState((0.0, 0.0, holder_z + 0.04 + ram_len / 2), scale=(1, 1, ram_len)),
            "clamp": PartState((CLAMP_X, 0.0, clamp_bottom + 0.025)),
            "clamp_rod": PartState((CLAMP_X, 0.0, clamp_bottom + 0.05 + clamp_rod / 2),
                                   scale=(1, 1, clamp_rod)),
            "carriage": PartState((carriage_x, 0.04, hb + a + 0.06)),
            "jaw_front": PartState((carriage_x, -jaw, hb + a / 2 + 0.02)),
            "jaw_back": PartState((carriage_x, jaw, hb + a / 2 + 0.02)),
        }

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([STOCK_START - 0.2, -0.6, 0.0]),
                np.array([self._bin_x + self._bin_length, 0.5, self._top() + 0.35]))


# --------------------------------------------------------------------- device-specific kinds


class WrongCut(AnomalyKind):
    """The cut at the wrong place: the bar is fed too far or too little past the mark, so the
    piece is longer or shorter than the others."""

    error = (0.2, 0.4)  # of the piece length, either way

    def plan(self, device, schedule, cycle, rng):
        k = 1.0 + float(rng.uniform(*self.error)) * float(rng.choice([-1.0, 1.0]))

        def change(m: Motion) -> Motion:
            return replace(m, fed=m.fed * k, carriage=m.carriage * k)
        return self._motion_edit(device, schedule, cycle, change)


class NoCut(AnomalyKind):
    """The blade does not come down; the bar is not cut, and the carriage pulls it back."""

    def plan(self, device, schedule, cycle, rng):
        def change(m: Motion) -> Motion:
            if m.eject > 0:  # instead of ejecting a piece, retract the uncut bar
                back = 1.0 - m.eject
                return replace(m, fed=m.fed * back, carriage=m.carriage, jaws=True, cut=False,
                               eject=0.0, blade=0.0)
            return replace(m, blade=0.0, cut=False)
        return self._motion_edit(device, schedule, cycle, change, "cut", "eject")


class ClampFail(AnomalyKind):
    """The clamp stays up; the loose bar end is dragged askew by the blade and leaves askew."""

    degrees = (10.0, 20.0)

    def plan(self, device, schedule, cycle, rng):
        yaw = math.radians(float(rng.uniform(*self.degrees))) * float(rng.choice([-1.0, 1.0]))

        def change(m: Motion) -> Motion:
            turned = yaw if m.cut else yaw * min(max(m.blade, 0.0), 1.0)
            return replace(m, clamp=0.0, yaw=turned)
        return self._motion_edit(device, schedule, cycle, change, "clamp_down", "eject")


MOVING_BAR = ("piece",) + CARRIAGE
Cutter.anomalies = {k.name: k for k in (
    ColorChange("piece_color", "appearance", "a discoloured stretch of bar is cut", ("piece",),
                steps=("feed", "eject")),
    Missing("missing_guard", "appearance", "the blade guard is missing", ("guard",)),
    Shift("piece_shift", "position", "the cut piece is kicked sideways", ("piece",), axis=1,
          fraction=(1.5, 3.0), steps=("blade_up", "eject")),
    Tilt("piece_tilt", "position", "the cut piece lies askew", ("piece",),
         steps=("blade_up", "eject")),
    Stall("blade_stall", "motion", "the blade sticks mid-cut, then goes on", BLADE_PARTS,
          step="cut"),
    SpeedChange("slow_cut", "motion", "the blade cuts too slowly", BLADE_PARTS, step="cut",
                factor=(0.35, 0.5)),
    Jerk("blade_jerk", "motion", "the blade judders while cutting", BLADE_PARTS, step="cut"),
    Reverse("feed_reverse", "motion", "the feed runs backwards for a while", MOVING_BAR,
            step="feed"),
    WrongCut("wrong_cut", "logic", "the cut at the wrong place: the piece is too long or short",
             MOVING_BAR),
    NoCut("no_cut", "logic", "the blade does not come down; the bar is pulled back uncut",
          BLADE_PARTS + MOVING_BAR),
    ClampFail("clamp_fail", "logic", "the bar is not clamped; the blade drags the piece askew",
              ("clamp", "clamp_rod", "piece")),
)}
