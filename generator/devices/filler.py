"""Filler: an inline bottle filler and capper on a belt conveyor.

A batch of 3-5 bottles comes out of the infeed tunnel on the left, stops under the nozzle bank,
the nozzles lower into the necks, the liquid rises in every bottle, the nozzles rise, the belt
carries the batch on to the capper, whose head presses a cap on every neck, and the batch leaves
into the outfeed tunnel on the right while a new set of caps slides from the cap magazine into the
capper's chucks. Cycle: infeed, nozzles_down, fill, nozzles_up, transfer, cap_down, cap_up, exit,
idle. x runs along the belt, z is up, the camera looks from -y.

Bottles are light grey bodies with a shoulder and a neck; the liquid is a coloured cylinder a
little wider than the body, so its level reads from outside. There are always MAX_BOTTLES sets of
bottle parts; those beyond the batch size stay hidden.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, Jerk, Missing, Shift, SpeedChange, Stall, SwapSteps
from ipadgen.devices.motion import turned
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

MAX_BOTTLES = 5
SHOULDER_H = 0.04
NECK_H = 0.06
CAP_H = 0.035
CAP_OVERLAP = 0.015  # a pressed cap sits this far down over the neck
NOZZLE_L = 0.16
NOZZLE_CLEAR = 0.08  # raised nozzle tips above the necks
NOZZLE_STROKE = 0.13
CAP_STROKE = 0.12
CARRIAGE_H = 0.07
HEAD_H = 0.08
CHUCK_H = 0.06
BEAM_H = 0.08
ROD_MIN = 0.18  # rod showing between a raised carriage / head and its top beam
STATION_GAP = 0.22  # between the filler's and the capper's batch footprints
MOUTH_GAP = 0.1  # from a station's batch footprint to a tunnel mouth
FILL_START = 0.12  # liquid level (fraction of the target) at the first frame of the fill
LIQ_PAD = 0.008  # liquid cylinder wider than the body, so it shows outside
N_MARKS = 10
MAG_FRONT = 0.13  # y of the cap magazine's front face
VISIBLE_OUT = 0.3  # a bottle shows once this fraction of its diameter is out of a tunnel

BOTTLE_PARTS = ("bottle", "shoulder", "neck", "liquid", "cap")


def bottle(i: int) -> tuple[str, ...]:
    return tuple(f"{p}_{i}" for p in BOTTLE_PARTS)


BOTTLES = tuple(n for i in range(MAX_BOTTLES) for n in bottle(i))
LIQUIDS = tuple(f"liquid_{i}" for i in range(MAX_BOTTLES))
NOZZLES = tuple(f"nozzle_{i}" for i in range(MAX_BOTTLES))
CHUCKS = tuple(f"chuck_{i}" for i in range(MAX_BOTTLES))
HELD = tuple(f"held_{i}" for i in range(MAX_BOTTLES))
MARKS = tuple(f"mark_{j}" for j in range(N_MARKS))
NOZZLE_BANK = ("carriage", "frod", "hose") + NOZZLES
CAPPER_HEAD = ("head", "crod") + CHUCKS + HELD
CARRIED = BOTTLES + ("spill", "foam")


@dataclass(frozen=True)
class Motion:
    x: float  # batch centre
    nozzle: float  # nozzle carriage lowered, 0 .. 1
    level: float  # normal liquid level, fraction of the body
    capper: float  # capper head lowered, 0 .. 1
    capped: bool  # the caps are on the bottles
    held: bool  # caps in the chucks
    feed: float  # y of the held caps (fed from the magazine)



class Filler(Device):
    name = "filler"
    description = ("bottle filler: a batch of bottles stops under a nozzle bank, is filled, moves "
                   "on to a capper that presses caps on, and leaves")
    params = {
        "bottles": ParamRange(3.0, 5.99, "", "bottles per batch (rounded down)"),
        "bottle_diameter": ParamRange(0.11, 0.15, "m"),
        "bottle_height": ParamRange(0.24, 0.34, "m", "height of the body (below shoulder and neck)"),
        "bottle_gap": ParamRange(0.04, 0.07, "m", "gap between bottles of a batch"),
        "belt_height": ParamRange(0.65, 0.8, "m"),
        "fill_level": ParamRange(0.75, 0.9, "", "liquid level, fraction of the body height"),
        "liquid_hue": ParamRange(0.0, 1.0, "", "hue of the liquid"),
        "cap_hue": ParamRange(0.0, 1.0, "", "hue of the caps"),
        "machine_hue": ParamRange(0.0, 1.0, "", "hue of the filler's paint"),
        "belt_speed": ParamRange(0.22, 0.35, "m/s"),
        "nozzle_speed": ParamRange(0.15, 0.26, "m/s", "nozzle bank up / down"),
        "cap_speed": ParamRange(0.15, 0.24, "m/s", "capper head up / down"),
        "fill_seconds": ParamRange(2.0, 4.5, "s"),
        "idle_seconds": ParamRange(0.4, 1.2, "s"),
    }

    # ------------------------------------------------------------------ geometry

    @property
    def n(self) -> int:
        return min(int(self._v("bottles")), MAX_BOTTLES)

    @property
    def d(self) -> float:
        return self._v("bottle_diameter")

    @property
    def pitch(self) -> float:
        return self.d + self._v("bottle_gap")

    @property
    def batch(self) -> float:
        """Length of a batch along the belt."""
        return (self.n - 1) * self.pitch + self.d

    @property
    def belt_width(self) -> float:
        return 2.6 * self.d + 0.06

    @property
    def y_back(self) -> float:
        return self.belt_width / 2 + 0.1

    @property
    def neck_top(self) -> float:
        return self._v("belt_height") + self._v("bottle_height") + SHOULDER_H + NECK_H

    @property
    def x_fill(self) -> float:
        return -(self.batch + STATION_GAP) / 2

    @property
    def x_cap(self) -> float:
        return (self.batch + STATION_GAP) / 2

    @property
    def mouth_in(self) -> float:
        return self.x_fill - self.batch / 2 - MOUTH_GAP

    @property
    def mouth_out(self) -> float:
        return self.x_cap + self.batch / 2 + MOUTH_GAP

    @property
    def x_in(self) -> float:
        """Batch centre when it waits, hidden, in the infeed tunnel."""
        return self.mouth_in - self.batch / 2 - 0.01

    @property
    def x_out(self) -> float:
        return self.mouth_out + self.batch / 2 + 0.01

    @property
    def hood_length(self) -> float:
        return self.batch + 0.15

    @property
    def hood_height(self) -> float:
        return self.neck_top - self._v("belt_height") + 0.14

    def _carriage_top_rest(self) -> float:
        return self.neck_top + NOZZLE_CLEAR + NOZZLE_L + CARRIAGE_H

    def _fbeam_bottom(self) -> float:
        return self._carriage_top_rest() + ROD_MIN

    def _chuck_bottom_down(self) -> float:
        return self.neck_top - CAP_OVERLAP + CAP_H

    def _cbeam_bottom(self) -> float:
        return self._chuck_bottom_down() + CAP_STROKE + CHUCK_H + HEAD_H + ROD_MIN

    def offset(self, i: int) -> float:
        return (i - (self.n - 1) / 2) * self.pitch

    def steps(self) -> list[Step]:
        belt = self._v("belt_speed")
        noz = NOZZLE_STROKE / self._v("nozzle_speed")
        cap = CAP_STROKE / self._v("cap_speed")
        return [
            Step("infeed", (self.x_fill - self.x_in) / belt),
            Step("nozzles_down", noz),
            Step("fill", self._v("fill_seconds")),
            Step("nozzles_up", noz),
            Step("transfer", (self.x_cap - self.x_fill) / belt),
            Step("cap_down", cap),
            Step("cap_up", cap),
            Step("exit", (self.x_out - self.x_cap) / belt),
            Step("idle", self._v("idle_seconds")),
        ]

    # ------------------------------------------------------------------ parts

    def parts(self) -> dict[str, Part]:
        d, bh, hb = self.d, self._v("bottle_height"), self._v("belt_height")
        B, wb = self.batch, self.belt_width
        paint = colorsys.hsv_to_rgb(self._v("machine_hue"), 0.55, 0.6)
        liquid = colorsys.hsv_to_rgb(self._v("liquid_hue"), 0.8, 0.75)
        cap = colorsys.hsv_to_rgb(self._v("cap_hue"), 0.85, 0.85)
        steel, dark = (0.72, 0.73, 0.76), (0.16, 0.17, 0.19)
        yellow, glass = (0.95, 0.74, 0.08), (0.86, 0.88, 0.9)
        belt_len = self.x_out - self.x_in + B + 0.1
        hood = (self.hood_length, wb + 0.14, self.hood_height)
        yb = self.y_back
        belt_x = (self.x_in + self.x_out) / 2
        hood_z = hb - 0.04 + self.hood_height / 2
        hood_in_x = self.mouth_in - self.hood_length / 2
        hood_out_x = self.mouth_out + self.hood_length / 2
        fb, cb = self._fbeam_bottom(), self._cbeam_bottom()
        tank_z = fb + BEAM_H + 0.12 + 0.13
        leg_at = [(float(lx), ly) for lx in np.linspace(self.mouth_in + 0.1, self.mouth_out - 0.1, 3)
                  for ly in (-(wb / 2 + 0.02), wb / 2 + 0.02)]
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, yb + 1.1, 2.0))),
            Part("belt", "box", (belt_len, wb, 0.03), (0.12, 0.12, 0.13), "rubber",
                 rest=PartState((belt_x, 0.0, hb - 0.015))),
            Part("side_front", "box", (belt_len, 0.04, 0.12), steel, "steel",
                 rest=PartState((belt_x, -(wb / 2 + 0.02), hb - 0.04))),
            Part("side_back", "box", (belt_len, 0.04, 0.12), steel, "steel",
                 rest=PartState((belt_x, wb / 2 + 0.02, hb - 0.04))),
            Part("hood_in", "box", hood, (0.8, 0.81, 0.83), "paint", rest=PartState((hood_in_x, 0.0, hood_z))),
            Part("hood_out", "box", hood, (0.8, 0.81, 0.83), "paint", rest=PartState((hood_out_x, 0.0, hood_z))),
            Part("mouth_in", "box", (0.01, wb, self.hood_height - 0.08), dark, "rubber",
                 rest=PartState((self.mouth_in + 0.004, 0.0, hb + (self.hood_height - 0.08) / 2))),
            Part("mouth_out", "box", (0.01, wb, self.hood_height - 0.08), dark, "rubber",
                 rest=PartState((self.mouth_out - 0.004, 0.0, hb + (self.hood_height - 0.08) / 2))),
            Part("stripe_in", "box", (0.04, wb + 0.15, 0.06), yellow, "paint",
                 rest=PartState((self.mouth_in - 0.02, 0.0, hb - 0.04 + self.hood_height - 0.03))),
            Part("stripe_out", "box", (0.04, wb + 0.15, 0.06), yellow, "paint",
                 rest=PartState((self.mouth_out + 0.02, 0.0, hb - 0.04 + self.hood_height - 0.03))),
            Part("motor", "cylinder", (0.16, 0.16, 0.26), (0.25, 0.35, 0.55), "paint",
                 rest=PartState((self.mouth_out - 0.15, -(wb / 2 + 0.31), hb - 0.2), (math.pi / 2, 0.0, 0.0))),
            Part("gearbox", "box", (0.2, 0.14, 0.18), dark, "paint",
                 rest=PartState((self.mouth_out - 0.15, -(wb / 2 + 0.11), hb - 0.2))),
            # filler: a portal behind the belt, the nozzle carriage on a rod, a tank on top
            *self._portal("f", self.x_fill, fb, paint),
            Part("fcyl", "cylinder", (0.11, 0.11, 0.22), steel, "steel",
                 rest=PartState((self.x_fill, 0.0, fb + BEAM_H + 0.11))),
            Part("frod", "cylinder", (0.035, 0.035, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("hose", "box", (0.025, 0.025, 1.0), dark, "rubber"),
            Part("carriage", "box", (B + 0.08, 0.1, CARRIAGE_H), (0.82, 0.83, 0.85), "steel"),
            Part("tank", "cylinder", (0.26, 0.26, 0.8 * B + 0.1), (0.78, 0.79, 0.82), "steel",
                 rest=PartState((self.x_fill, yb, tank_z), (0.0, math.pi / 2, 0.0))),
            Part("sight", "box", (0.5 * B, 0.01, 0.06), liquid, "plastic",
                 rest=PartState((self.x_fill, yb - 0.135, tank_z))),
            Part("tank_foot_l", "box", (0.05, 0.05, 0.12), paint, "paint",
                 rest=PartState((self.x_fill - 0.3 * B, yb, fb + BEAM_H + 0.06))),
            Part("tank_foot_r", "box", (0.05, 0.05, 0.12), paint, "paint",
                 rest=PartState((self.x_fill + 0.3 * B, yb, fb + BEAM_H + 0.06))),
            # capper: a second portal, a head with chucks, a spindle motor and a cap magazine
            *self._portal("c", self.x_cap, cb, yellow),
            Part("cmotor", "cylinder", (0.14, 0.14, 0.2), (0.25, 0.35, 0.55), "paint",
                 rest=PartState((self.x_cap, 0.0, cb + BEAM_H + 0.1))),
            Part("crod", "cylinder", (0.04, 0.04, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("head", "box", (B + 0.06, 0.14, HEAD_H), dark, "paint"),
            Part("magazine", "box", (B + 0.06, 0.14, CAP_H + 0.05), (0.3, 0.32, 0.36), "plastic",
                 rest=PartState((self.x_cap, MAG_FRONT + 0.07, self._chuck_bottom_down() + CAP_STROKE - CAP_H / 2))),
            Part("cabinet", "box", (0.4, 0.25, 0.8), (0.85, 0.86, 0.84), "paint",
                 rest=PartState((0.0, yb + 0.35, 0.4))),
            Part("beacon", "cylinder", (0.09, 0.09, 0.12), (0.1, 0.8, 0.2), "plastic",
                 rest=PartState((0.0, yb + 0.35, 0.86))),
            Part("spill", "cylinder", (2.2 * d, 2.2 * d, 0.008), liquid, "plastic"),
            Part("foam", "cylinder", (0.76 * d, 0.76 * d, SHOULDER_H + NECK_H + 0.012), liquid,
                 "plastic"),
        ]
        parts += [Part(f"leg_{i}", "box", (0.06, 0.06, hb - 0.06), steel, "steel",
                       rest=PartState((x, y, (hb - 0.06) / 2)))
                  for i, (x, y) in enumerate(leg_at)]
        parts += [Part(n, "box", (0.03, wb - 0.04, 0.004), (0.4, 0.4, 0.4), "rubber") for n in MARKS]
        for i in range(MAX_BOTTLES):
            parts += [
                Part(f"bottle_{i}", "cylinder", (d, d, bh), glass, "plastic"),
                Part(f"shoulder_{i}", "cylinder", (0.7 * d, 0.7 * d, SHOULDER_H), glass, "plastic"),
                Part(f"neck_{i}", "cylinder", (0.36 * d, 0.36 * d, NECK_H), glass, "plastic"),
                Part(f"liquid_{i}", "cylinder", (d + LIQ_PAD, d + LIQ_PAD, bh - 0.02), liquid,
                     "plastic"),
                Part(f"cap_{i}", "cylinder", (0.5 * d, 0.5 * d, CAP_H), cap, "plastic"),
                Part(f"held_{i}", "cylinder", (0.5 * d, 0.5 * d, CAP_H), cap, "plastic"),
                Part(f"nozzle_{i}", "cylinder", (0.2 * d, 0.2 * d, NOZZLE_L), (0.85, 0.85, 0.88),
                     "chrome"),
                Part(f"chuck_{i}", "cylinder", (0.62 * d, 0.62 * d, CHUCK_H), steel, "steel"),
            ]
        return {p.name: p for p in parts}

    def _portal(self, prefix: str, x: float, beam_bottom: float, color) -> list[Part]:
        """The two posts behind the belt, their arms and the beam over it, of the filler ("f") or
        the capper ("c") portal at x."""
        yb, pl, post_h = self.y_back, self.batch / 2 + 0.12, beam_bottom + BEAM_H
        post, arm, beam_z = (0.08, 0.08, post_h), (0.08, yb + 0.04, BEAM_H), beam_bottom + BEAM_H / 2
        return [
            Part(f"{prefix}post_l", "box", post, color, "paint", rest=PartState((x - pl, yb, post_h / 2))),
            Part(f"{prefix}post_r", "box", post, color, "paint", rest=PartState((x + pl, yb, post_h / 2))),
            Part(f"{prefix}arm_l", "box", arm, color, "paint", rest=PartState((x - pl, yb / 2, beam_z))),
            Part(f"{prefix}arm_r", "box", arm, color, "paint", rest=PartState((x + pl, yb / 2, beam_z))),
            Part(f"{prefix}beam", "box", (self.batch + 0.24, 0.12, BEAM_H), color, "paint",
                 rest=PartState((x, 0.0, beam_z))),
        ]

    # ------------------------------------------------------------------ program

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        x = {"infeed": self.x_in + t * (self.x_fill - self.x_in),
             "transfer": self.x_fill + t * (self.x_cap - self.x_fill),
             "exit": self.x_cap + t * (self.x_out - self.x_cap),
             "idle": self.x_out}
        if step in x:
            bx = x[step]
        elif step in ("nozzles_down", "fill", "nozzles_up"):
            bx = self.x_fill
        else:
            bx = self.x_cap
        target = self._v("fill_level")
        order = [s.name for s in self.steps()]
        k = order.index(step)
        if step == "fill":
            level = target * (FILL_START + (1 - FILL_START) * t)
        else:
            level = target if k > order.index("fill") else 0.0
        return Motion(
            x=bx,
            nozzle={"nozzles_down": t, "fill": 1.0, "nozzles_up": 1.0 - t}.get(step, 0.0),
            level=level,
            capper={"cap_down": t, "cap_up": 1.0 - t}.get(step, 0.0),
            capped=step in ("cap_up", "exit", "idle"),
            held=step != "cap_up",
            feed=(1.0 - t) * self._feed_start if step == "exit" else 0.0,
        )

    @property
    def _feed_start(self) -> float:
        return MAG_FRONT + 0.25 * self.d + 0.005

    def bottle_visible(self, x: float) -> bool:
        d = self.d
        out_in = (x + d / 2) - self.mouth_in
        out_out = self.mouth_out - (x - d / 2)
        return min(out_in, out_out) >= VISIBLE_OUT * d

    def liquid_state(self, x: float, y: float, level: float, visible: bool) -> PartState:
        full = self._v("bottle_height") - 0.02
        z = self._v("belt_height") + 0.005 + level * full / 2
        return PartState((x, y, z), scale=(1.0, 1.0, max(level, 1e-4)),
                         visible=visible and level > 1e-6)

    def bottle_states(self, i: int, x: float, level: float, capped: bool) -> Pose:
        hb, bh = self._v("belt_height"), self._v("bottle_height")
        vis = i < self.n and self.bottle_visible(x)
        top = hb + bh
        return {
            f"bottle_{i}": PartState((x, 0.0, hb + bh / 2), visible=vis),
            f"shoulder_{i}": PartState((x, 0.0, top + SHOULDER_H / 2), visible=vis),
            f"neck_{i}": PartState((x, 0.0, top + SHOULDER_H + NECK_H / 2), visible=vis),
            f"liquid_{i}": self.liquid_state(x, 0.0, level, vis),
            f"cap_{i}": PartState((x, 0.0, self.neck_top - CAP_OVERLAP + CAP_H / 2),
                                  visible=vis and capped),
        }

    def nozzle_states(self, down: float) -> Pose:
        carriage_top = self._carriage_top_rest() - down * NOZZLE_STROKE
        tip = carriage_top - CARRIAGE_H - NOZZLE_L
        rod = self._fbeam_bottom() - carriage_top
        out = {
            "carriage": PartState((self.x_fill, 0.0, carriage_top - CARRIAGE_H / 2)),
            "frod": PartState((self.x_fill, 0.0, carriage_top + rod / 2), scale=(1, 1, rod)),
            "hose": PartState((self.x_fill - self.batch / 2 + 0.02, 0.03, carriage_top + rod / 2),
                              scale=(1, 1, rod)),
        }
        for i in range(MAX_BOTTLES):
            out[f"nozzle_{i}"] = PartState((self.x_fill + self.offset(i), 0.0, tip + NOZZLE_L / 2),
                                           visible=i < self.n)
        return out

    def capper_states(self, down: float, held: bool, feed: float) -> Pose:
        chuck_bottom = self._chuck_bottom_down() + (1.0 - down) * CAP_STROKE
        head_top = chuck_bottom + CHUCK_H + HEAD_H
        rod = self._cbeam_bottom() - head_top
        out = {
            "head": PartState((self.x_cap, 0.0, head_top - HEAD_H / 2)),
            "crod": PartState((self.x_cap, 0.0, head_top + rod / 2), scale=(1, 1, rod)),
        }
        r = 0.25 * self.d
        for i in range(MAX_BOTTLES):
            x = self.x_cap + self.offset(i)
            out[f"chuck_{i}"] = PartState((x, 0.0, chuck_bottom + CHUCK_H / 2), visible=i < self.n)
            out[f"held_{i}"] = PartState(
                (x, feed, chuck_bottom - CAP_H / 2),
                visible=i < self.n and held and feed - r < MAG_FRONT - VISIBLE_OUT * 2 * r)
        return out

    def foam_spill(self, x: float, excess: float | None, visible: bool) -> Pose:
        """Overflow at bottle x: `excess` is how far the overflow has grown (0..1), None if none."""
        hb, bh = self._v("belt_height"), self._v("bottle_height")
        on = visible and excess is not None
        f = 0.3 + 0.7 * min(max(excess or 0.0, 0.0), 1.0)
        return {
            "foam": PartState((x, 0.0, hb + bh + (SHOULDER_H + NECK_H + 0.012) / 2 - 0.001),
                              visible=on),
            "spill": PartState((x, 0.0, hb + 0.004), scale=(f, f, 1.0), visible=on),
        }

    def build(self, m: Motion) -> Pose:
        hb = self._v("belt_height")
        pose = {**self.nozzle_states(m.nozzle), **self.capper_states(m.capper, m.held, m.feed)}
        for i in range(MAX_BOTTLES):
            pose.update(self.bottle_states(i, m.x + self.offset(i), m.level, m.capped))
        pose.update(self.foam_spill(m.x, None, False))
        run = self.x_out - self.x_in  # belt travel per cycle: marks come back to their places
        travel = m.x - self.x_in
        start = self.x_in
        for j, name in enumerate(MARKS):
            x = start + (j * run / N_MARKS + travel) % run
            vis = self.mouth_in + 0.03 < x < self.mouth_out - 0.03
            pose[name] = PartState((x, 0.0, hb + 0.002), visible=vis)
        return pose

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        top = max(self._cbeam_bottom() + BEAM_H + 0.2, self._fbeam_bottom() + BEAM_H + 0.38)
        lo = np.array([self.mouth_in - 0.12, -(self.belt_width / 2 + 0.1), 0.0])
        hi = np.array([self.mouth_out + 0.12, self.y_back + 0.2, top])
        return lo, hi


# --------------------------------------------------------------------- device-specific kinds


def _level(pose: Pose, i: int) -> float:
    s = pose[f"liquid_{i}"]
    return s.scale[2] if s.visible else 0.0


class Underfill(AnomalyKind):
    """One bottle's valve closes early: its level rises slowly and stays low."""

    bottle = 2
    factor = (0.3, 0.5)

    def plan(self, device, schedule, cycle, rng):
        k = float(rng.uniform(*self.factor))
        i = self.bottle

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            s = pose[f"liquid_{i}"]
            x, y, _ = s.location
            pose[f"liquid_{i}"] = device.liquid_state(x, y, _level(pose, i) * k,
                                                      pose[f"bottle_{i}"].visible)
            return pose
        return self._state_edit(schedule, cycle, apply, "fill")


class Overflow(AnomalyKind):
    """One bottle's valve does not close: it fills to the brim, runs over the neck and spills a
    puddle on the belt that travels with it."""

    bottle = 1
    rate = 1.6

    def plan(self, device, schedule, cycle, rng):
        i, rate = self.bottle, self.rate
        over_full = rate * device.values["fill_level"] - 1.0

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            s = pose[f"liquid_{i}"]
            x, y, _ = s.location
            vis = pose[f"bottle_{i}"].visible
            level = _level(pose, i) * rate
            pose[f"liquid_{i}"] = device.liquid_state(x, y, min(level, 1.0), vis)
            excess = (level - 1.0) / over_full if level >= 1.0 else None
            pose.update(device.foam_spill(x, excess, vis))
            return pose
        return self._state_edit(schedule, cycle, apply, "fill")


class NoLower(AnomalyKind):
    """The nozzle bank does not come down: nothing is filled, the empty bottles go on."""

    def plan(self, device, schedule, cycle, rng):
        rest = device.nozzle_states(0.0)

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            pose.update(rest)
            for name in LIQUIDS:
                pose[name] = pose[name].moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply, "nozzles_down")


class MissingCap(AnomalyKind):
    """A chuck holds no cap: one bottle leaves the capper open."""

    bottle = 2

    def plan(self, device, schedule, cycle, rng):
        i = self.bottle

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            pose[f"cap_{i}"] = pose[f"cap_{i}"].moved(visible=False)
            # the chuck's cap until it is pressed on (not the next batch's, once this one left)
            if pose[f"bottle_{i}"].location[0] <= device.x_cap + device.offset(i) + 1e-9:
                pose[f"held_{i}"] = pose[f"held_{i}"].moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply)


class CapAskew(AnomalyKind):
    """A cap is pressed on crooked and sits tilted on the neck."""

    bottle = 1
    degrees = (25.0, 40.0)

    def plan(self, device, schedule, cycle, rng):
        i = self.bottle
        angle = math.radians(float(rng.uniform(*self.degrees))) * float(rng.choice([-1.0, 1.0]))

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            s = pose[f"cap_{i}"]
            x, y, z = s.location
            pose[f"cap_{i}"] = s.moved(location=(x, y, z + 0.02), rotation=(0.0, angle, 0.0))
            return pose
        return self._state_edit(schedule, cycle, apply)


class BottleTilt(AnomalyKind):
    """The first bottle of a batch leans over on the belt, resting on its bottom edge."""

    bottle = 0
    degrees = (10.0, 16.0)

    def plan(self, device, schedule, cycle, rng):
        i = self.bottle
        angle = -math.radians(float(rng.uniform(*self.degrees)))
        hb, r = device.values["belt_height"], device.d / 2

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            x = pose[f"bottle_{i}"].location[0]
            pivot = (x - r, 0.0, hb)
            for name in bottle(i):
                pose[name] = turned(pose[name], 1, angle, pivot)
            return pose
        return self._state_edit(schedule, cycle, apply)


Filler.anomalies = {k.name: k for k in (
    ColorChange("liquid_color", "appearance", "one bottle is filled with a liquid of another colour",
                ("liquid_1",)),
    ColorChange("cap_color", "appearance", "a cap of the wrong colour is pressed on",
                ("held_0", "cap_0")),
    Missing("missing_nozzle", "appearance", "a filling nozzle is missing", ("nozzle_1",)),
    MissingCap("missing_cap", "appearance", "a bottle leaves the capper without its cap",
               ("held_2", "cap_2")),
    Shift("bottle_shift", "position", "a bottle travels off-centre on the belt", bottle(1),
          axis=1, fraction=(0.5, 0.9)),
    BottleTilt("bottle_tilt", "position", "the first bottle of the batch leans over on the belt",
               bottle(0)),
    CapAskew("cap_askew", "position", "a cap sits crooked on its bottle", ("cap_1",)),
    Stall("belt_stall", "motion", "the belt stops on the way to the capper, then goes on",
          CARRIED + MARKS, step="transfer"),
    SpeedChange("fast_belt", "motion", "the belt brings the bottles in too fast", CARRIED + MARKS,
                step="infeed"),
    Jerk("belt_jerk", "motion", "the bottles shake on the way to the capper", BOTTLES,
         step="transfer"),
    Stall("nozzle_stall", "motion", "the nozzle bank sticks on the way down, then goes on",
          NOZZLE_BANK, step="nozzles_down"),
    Underfill("underfill", "logic", "one bottle is underfilled: its level stays low",
              ("liquid_2",)),
    Overflow("overflow", "logic", "one bottle overflows: liquid over the neck and a puddle",
             ("liquid_1", "foam", "spill")),
    NoLower("no_lower", "logic", "the nozzles do not lower: the bottles stay empty",
            NOZZLE_BANK + LIQUIDS),
    SwapSteps("rise_before_fill", "logic", "the nozzles rise before filling, then drop back and fill",
              NOZZLE_BANK + LIQUIDS, first="fill", second="nozzles_up"),
)}
