"""Gripper: a SCARA pick-and-place arm moving parts from an infeed to an outfeed conveyor.

A two-link arm turns on a column behind the conveyors; a quill at the end of its second link
carries a gripper head with two jaws. Cycle: the quill lowers onto the part waiting at the end
stop of the infeed, the jaws close, the quill lifts, the arm swings over to the outfeed (both
joints turn linearly, so the tool moves on an arc in front of the column), the quill sets the part
down, the jaws open, the quill rises, and the arm swings back; meanwhile the outfeed carries the
placed part into a tote and the infeed brings the next part up to the stop. Steps: lower, grip,
lift, transfer, set, release, rise, return, idle. x runs along the conveyors (infeed at -x), z is
up, the camera looks from -y.

The program is built from a few motion values (swing, quill, jaws, where the part is);
`variant_pose` plays anomalous variants of it; a device-specific edit recomputes the pose of its
variant at the program phase that `StateEdit.apply` receives.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import ColorChange, Jerk, Reverse, ShapeChange, Shift, SpeedChange, Stall, Tilt, VariantCycle
from ipadgen.devices.motion import lerp, ramp
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

FEED_LEN = 0.6  # conveyor length beyond the pick / place spot
TUNNEL = 0.25  # feeder tunnel at the start of the infeed (parts come out of it)
TOTE_LEN = 0.34
SLIDE_END = 0.85  # fraction of return + idle by which the conveyors have indexed
ARM = ("link1", "link2", "elbow", "shoulder", "housing", "motor2", "quill", "head",
       "jaw_left", "jaw_right", "cable")
TOOL = ("housing", "motor2", "quill", "head", "jaw_left", "jaw_right")



@dataclass(frozen=True)
class Motion:
    swing: float  # 0 at the pick .. 1 at the place (joint-space interpolation)
    quill: float  # 0 up .. 1 down
    jaws: float  # 0 open .. 1 closed on the part (> 1: closed past it, on air)


class Gripper(Device):
    name = "gripper"
    description = "SCARA pick-and-place: picks a part off an infeed, places it on an outfeed"
    params = {
        "spacing": ParamRange(0.5, 0.65, "m", "half the distance between pick and place spots"),
        "column_back": ParamRange(0.45, 0.6, "m", "column axis behind the conveyor line"),
        "table_height": ParamRange(0.72, 0.85, "m", "conveyor top"),
        "part_width": ParamRange(0.12, 0.18, "m", "along the conveyors (across the jaws)"),
        "part_depth": ParamRange(0.12, 0.18, "m"),
        "part_height": ParamRange(0.08, 0.14, "m"),
        "stroke": ParamRange(0.15, 0.25, "m", "quill travel"),
        "part_hue": ParamRange(0.0, 1.0, "", "hue of the parts' paint"),
        "arm_hue": ParamRange(0.0, 1.0, "", "hue of the arm's paint"),
        "quill_speed": ParamRange(0.25, 0.45, "m/s"),
        "grip_seconds": ParamRange(0.35, 0.7, "s", "jaws closing / opening"),
        "transfer_seconds": ParamRange(1.2, 2.5, "s", "swing to the outfeed with the part"),
        "return_seconds": ParamRange(1.2, 2.2, "s", "swing back, empty"),
        "idle_seconds": ParamRange(0.8, 2.0, "s", "wait for the next part"),
    }

    # ------------------------------------------------------------------ geometry

    @property
    def belt_width(self) -> float:
        return self._v("part_depth") + 0.14

    @property
    def pick(self) -> tuple[float, float, float]:
        return (-self._v("spacing"), 0.0, self._v("table_height") + self._v("part_height") / 2)

    @property
    def place(self) -> tuple[float, float, float]:
        return (self._v("spacing"), 0.0, self._v("table_height") + self._v("part_height") / 2)

    @property
    def base(self) -> tuple[float, float]:
        return (0.0, self._v("column_back"))

    @property
    def reach(self) -> float:
        x, y = self.pick[0] - self.base[0], self.pick[1] - self.base[1]
        return math.hypot(x, y)

    @property
    def links(self) -> tuple[float, float]:
        return 0.56 * self.reach, 0.56 * self.reach

    @property
    def z_arm(self) -> float:
        """Height of the second link's centre line."""
        hb, ph, st = self._v("table_height"), self._v("part_height"), self._v("stroke")
        return hb + ph + st + 0.26

    @property
    def tote_x(self) -> float:
        """x of the tote's left face, at the end of the outfeed."""
        return self.place[0] + FEED_LEN

    @property
    def infeed_start(self) -> float:
        return self.pick[0] - FEED_LEN

    @property
    def out_x(self) -> float:
        """x where a part on the outfeed drops into the tote."""
        return self.tote_x + self._v("part_width") / 2 + 0.03

    @property
    def start_x(self) -> float:
        """x where a part waits inside the feeder tunnel."""
        return self.infeed_start + TUNNEL / 2

    def joints(self, target) -> tuple[float, float]:
        """(shoulder angle, elbow angle relative to link 1) putting the tool at `target` (x, y)."""
        l1, l2 = self.links
        dx, dy = target[0] - self.base[0], target[1] - self.base[1]
        d = min(math.hypot(dx, dy), 0.999 * (l1 + l2))
        a = math.atan2(dy, dx)
        beta = math.acos(min(max((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0), 1.0))
        t1 = a + beta
        ex, ey = self.base[0] + l1 * math.cos(t1), self.base[1] + l1 * math.sin(t1)
        t2 = math.atan2(target[1] - ey, target[0] - ex)
        return t1, t2 - t1

    # ------------------------------------------------------------------ parts

    def parts(self) -> dict[str, Part]:
        hb, pw, pd, ph = (self._v(k) for k in ("table_height", "part_width", "part_depth",
                                               "part_height"))
        l1, l2 = self.links
        bw = self.belt_width
        paint = tuple(colorsys.hsv_to_rgb(self._v("arm_hue"), 0.65, 0.75))
        part = tuple(colorsys.hsv_to_rgb(self._v("part_hue"), 0.7, 0.8))
        dark, steel = (0.16, 0.17, 0.19), (0.6, 0.62, 0.65)
        frame, yellow = (0.3, 0.33, 0.38), (0.93, 0.74, 0.08)
        white = (0.85, 0.86, 0.84)
        z1 = self.z_arm + 0.08
        col_h = z1 - 0.04 - 0.12
        head_top_down = hb + ph + 0.065
        quill_len = self.z_arm + 0.14 - head_top_down
        in_len = FEED_LEN + pw / 2 + 0.06
        out_len = FEED_LEN + pw / 2 + 0.1
        bx, by = self.base
        in_x = self.infeed_start + in_len / 2
        out_x = self.tote_x - out_len / 2
        tote_c = self.tote_x + TOTE_LEN / 2
        cab_x = self.tote_x + TOTE_LEN - 0.25
        leg_x = (self.infeed_start + 0.15, self.pick[0] - 0.05, self.place[0] + 0.1, self.tote_x - 0.15)
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, by + 1.0, 2.0))),
            # conveyors
            Part("in_belt", "box", (in_len, bw, 0.02), (0.12, 0.12, 0.13), "rubber",
                 rest=PartState((in_x, 0.0, hb - 0.01))),
            Part("in_frame", "box", (in_len, bw + 0.08, 0.1), frame, "paint", rest=PartState((in_x, 0.0, hb - 0.07))),
            Part("out_belt", "box", (out_len, bw, 0.02), (0.12, 0.12, 0.13), "rubber",
                 rest=PartState((out_x, 0.0, hb - 0.01))),
            Part("out_frame", "box", (out_len, bw + 0.08, 0.1), frame, "paint",
                 rest=PartState((out_x, 0.0, hb - 0.07))),
            Part("stop", "box", (0.03, bw + 0.08, 0.05), yellow, "paint",
                 rest=PartState((self.pick[0] + pw / 2 + 0.045, 0.0, hb + 0.025))),
            Part("tunnel", "box", (TUNNEL, bw + 0.12, ph + 0.16), white, "paint",
                 rest=PartState((self.infeed_start + TUNNEL / 2, 0.0, hb + (ph + 0.16) / 2 - 0.02))),
            Part("tunnel_flap", "box", (0.01, bw * 0.8, ph + 0.04), dark, "rubber",
                 rest=PartState((self.infeed_start + TUNNEL + 0.005, 0.0, hb + (ph + 0.04) / 2))),
            Part("tote", "box", (TOTE_LEN, bw + 0.2, hb - 0.2), (0.18, 0.35, 0.65), "plastic",
                 rest=PartState((tote_c, 0.0, (hb - 0.2) / 2))),
            Part("tote_rim", "box", (TOTE_LEN + 0.02, bw + 0.22, 0.03), (0.14, 0.28, 0.55), "plastic",
                 rest=PartState((tote_c, 0.0, hb - 0.2))),
            # the arm
            Part("plinth", "box", (0.46, 0.46, 0.12), dark, "paint", rest=PartState((bx, by, 0.06))),
            Part("column", "cylinder", (0.2, 0.2, col_h), paint, "paint", rest=PartState((bx, by, 0.12 + col_h / 2))),
            Part("shoulder", "cylinder", (0.18, 0.18, 0.14), white, "paint"),
            Part("link1", "box", (l1 + 0.16, 0.15, 0.08), paint, "paint"),
            Part("elbow", "cylinder", (0.14, 0.14, 0.2), white, "paint"),
            Part("link2", "box", (l2 + 0.12, 0.11, 0.07), paint, "paint"),
            Part("housing", "box", (0.12, 0.12, 0.14), white, "paint"),
            Part("motor2", "cylinder", (0.09, 0.09, 0.1), dark, "paint"),
            Part("quill", "cylinder", (0.035, 0.035, quill_len), (0.82, 0.82, 0.85), "chrome"),
            Part("head", "box", (pw + 0.14, 0.09, 0.05), dark, "steel"),
            Part("jaw_left", "box", (0.025, 0.07, 0.75 * ph + 0.01), steel, "steel"),
            Part("jaw_right", "box", (0.025, 0.07, 0.75 * ph + 0.01), steel, "steel"),
            Part("cable", "box", (0.8 * l1, 0.05, 0.04), dark, "rubber"),
            Part("cabinet", "box", (0.5, 0.35, 1.3), white, "paint", rest=PartState((cab_x, by + 0.55, 0.65))),
            Part("beacon", "cylinder", (0.1, 0.1, 0.14), (0.95, 0.55, 0.05), "plastic",
                 rest=PartState((cab_x, by + 0.55, 1.37))),
            Part("fence", "box", (0.04, 1.2, 1.1), yellow, "paint",
                 rest=PartState((self.infeed_start - 0.25, by - 0.2, 0.55))),
            # the parts handled
            Part("part", "box", (pw, pd, ph), part, "plastic"),
            Part("part_next", "box", (pw, pd, ph), part, "plastic"),
        ]
        parts += [Part(f"leg_{i}", "box", (0.06, bw * 0.8, hb - 0.12), frame, "paint",
                       rest=PartState((x, 0.0, (hb - 0.12) / 2)))
                  for i, x in enumerate(leg_x)]
        return {p.name: p for p in parts}

    # ------------------------------------------------------------------ program

    def steps(self) -> list[Step]:
        z = self._v("stroke") / self._v("quill_speed")
        g = self._v("grip_seconds")
        return [
            Step("lower", z), Step("grip", g), Step("lift", z),
            Step("transfer", self._v("transfer_seconds")),
            Step("set", z), Step("release", g), Step("rise", z),
            Step("return", self._v("return_seconds")),
            Step("idle", self._v("idle_seconds")),
        ]

    def arm_motion(self, step: str, t: float) -> Motion:
        swing = {"transfer": t, "set": 1.0, "release": 1.0, "rise": 1.0,
                 "return": 1.0 - t}.get(step, 0.0)
        quill = {"lower": t, "grip": 1.0, "lift": 1.0 - t, "set": t, "release": 1.0,
                 "rise": 1.0 - t}.get(step, 0.0)
        jaws = {"grip": t, "lift": 1.0, "transfer": 1.0, "set": 1.0, "release": 1.0 - t}.get(step, 0.0)
        return Motion(swing, quill, jaws)

    def slide(self, step: str, t: float) -> float:
        """Progress of the conveyors' index (0 .. 1) during return + idle."""
        if step not in ("return", "idle"):
            return 0.0
        r, i = self._v("return_seconds"), self._v("idle_seconds")
        done = t * r if step == "return" else r + t * i
        return ramp(done / (r + i), 0.0, SLIDE_END)

    def tool(self, m: Motion, place=None) -> tuple[tuple[float, float], float, float]:
        """Tool (x, y), shoulder angle and link 2 angle (absolute) for motion `m`."""
        a1, b1 = self.joints(self.pick)
        a2, b2 = self.joints(place or self.place)
        t1 = a1 + (a2 - a1) * m.swing
        t2 = t1 + b1 + (b2 - b1) * m.swing
        l1, l2 = self.links
        ex = self.base[0] + l1 * math.cos(t1)
        ey = self.base[1] + l1 * math.sin(t1)
        return (ex + l2 * math.cos(t2), ey + l2 * math.sin(t2)), t1, t2

    def jaw_center(self, m: Motion, place=None) -> tuple[float, float, float]:
        (x, y), _, _ = self.tool(m, place)
        return (x, y, self.pick[2] + self._v("stroke") * (1.0 - m.quill))

    def build(self, m: Motion, place=None) -> Pose:
        """Poses of the arm for motion values `m` (place: another place spot)."""
        hb, pw, ph = self._v("table_height"), self._v("part_width"), self._v("part_height")
        l1, l2 = self.links
        (x, y), t1, t2 = self.tool(m, place)
        bx, by = self.base
        ex, ey = bx + l1 * math.cos(t1), by + l1 * math.sin(t1)
        za, z1 = self.z_arm, self.z_arm + 0.08
        zc = self.pick[2] + self._v("stroke") * (1.0 - m.quill)  # jaw centre
        head_bottom = zc + ph / 2 + 0.015
        head_top = head_bottom + 0.05
        quill_len = self.z_arm + 0.14 - (hb + ph + 0.065)
        gap = pw + 0.07 - m.jaws * 0.07
        gap = max(gap, 0.01)
        jh = 0.75 * ph + 0.01
        jz = head_bottom - jh / 2
        return {
            "shoulder": PartState((bx, by, z1 + 0.11), (0.0, 0.0, t1)),
            "link1": PartState((bx + (l1 / 2) * math.cos(t1), by + (l1 / 2) * math.sin(t1), z1),
                               (0.0, 0.0, t1)),
            "elbow": PartState((ex, ey, za + 0.04), (0.0, 0.0, t2)),
            "link2": PartState((ex + (l2 / 2) * math.cos(t2), ey + (l2 / 2) * math.sin(t2), za),
                               (0.0, 0.0, t2)),
            "housing": PartState((x, y, za)),
            "motor2": PartState((x, y, za + 0.12)),
            "quill": PartState((x, y, head_top + quill_len / 2)),
            "head": PartState((x, y, head_bottom + 0.025)),
            "jaw_left": PartState((x - gap / 2 - 0.0125, y, jz)),
            "jaw_right": PartState((x + gap / 2 + 0.0125, y, jz)),
            "cable": PartState((bx + 0.45 * l1 * math.cos(t1), by + 0.45 * l1 * math.sin(t1), z1 + 0.06),
                               (0.0, 0.0, t1)),
        }

    def conveyed(self, step: str, t: float) -> Pose:
        """The two parts when nothing goes wrong and nobody carries them."""
        u = self.slide(step, t)
        pick, place = self.pick, self.place
        if step in ("lower", "grip"):
            return {"part": PartState(pick), "part_next": PartState(pick, visible=False)}
        inside = self._v("table_height") - 0.25 - self._v("part_height") / 2  # in the tote
        out = lerp(place, (self.out_x, place[1], place[2]), ramp(u, 0.0, 0.8))
        out = lerp(out, (self.out_x, place[1], inside), ramp(u, 0.8, 1.0))
        nxt = lerp((self.start_x, pick[1], pick[2]), pick, u)
        return {"part": PartState(out, visible=u < 1.0),
                "part_next": PartState(nxt, visible=step in ("return", "idle"))}

    def pose(self, phase: float) -> Pose:
        return self.variant_pose(phase)

    def variant_pose(self, phase: float, kind: str | None = None, **kw) -> Pose:
        """The program at `phase`; `kind` names an anomalous variant (see the kinds below)."""
        step, t = self.step_at(phase)
        m = self.arm_motion(step, t)
        place = None
        pose = self.rest_pose()
        pose.update(self.conveyed(step, t))
        order = [s.name for s in self.steps()]
        k = order.index(step)
        carried = order.index("lift") <= k <= order.index("set")
        if kind == "air":  # the quill stops short: the jaws close on air above the part
            if step in ("lower", "grip", "lift"):
                m = Motion(m.swing, m.quill * kw["depth"], m.jaws * kw["squeeze"])
            elif k > order.index("lift"):
                m = Motion(m.swing, m.quill, m.jaws * kw["squeeze"] if step != "return" else 0.0)
            carried = False
            if k < order.index("return"):
                pose["part"] = PartState(self.pick)
            else:  # the infeed does not index: the missed part is the next one picked
                pose["part"] = PartState(self.pick, visible=False)
                pose["part_next"] = PartState(self.pick)
        elif kind == "wrong_spot":
            place = kw["place"]
            if step in ("release", "rise", "return", "idle"):
                p = pose["part"]
                pose["part"] = p.moved(location=(p.location[0] + place[0] - self.place[0],
                                                 place[1], p.location[2]))
        elif kind == "swing_low":  # returns before the quill has risen
            r, z = self._v("return_seconds"), self.steps()[6].seconds
            if step in ("rise", "return"):
                done = t * z if step == "rise" else z + t * r
                if done < r:
                    m = Motion(1.0 - done / r, 1.0, 0.0)
                else:
                    m = Motion(0.0, 1.0 - (done - r) / z, 0.0)
        pose.update(self.build(m, place))
        if carried:
            pose["part"] = PartState(self.jaw_center(m, place))
        if kind == "drop" and (step == "transfer" and t >= kw["at"] or k > order.index("transfer")):
            pose["part"] = self._dropped(kw["at"], t if step == "transfer" else 1.0, kw["yaw"])
        if kind == "early_open" and (step == "set" and t >= kw["at"] or
                                     order.index("set") < k < order.index("return")):
            at = kw["at"]
            s = t if step == "set" else 1.0
            open_ = ramp(s, at, at + 0.35)
            arm = self.build(Motion(m.swing, m.quill, min(m.jaws, 1.0 - open_)))
            pose["jaw_left"], pose["jaw_right"] = arm["jaw_left"], arm["jaw_right"]
            fall = ramp(s, at, at + 0.15)
            top = self.jaw_center(Motion(1.0, at, 1.0))
            z = top[2] + (self.place[2] - top[2]) * fall
            pose["part"] = PartState((self.place[0], self.place[1], z), (0.0, 0.0, kw["yaw"] * fall))
        if kind == "early_open" and step in ("return", "idle"):
            p = pose["part"]
            pose["part"] = p.moved(rotation=(0.0, 0.0, kw["yaw"]))
        return pose

    def _dropped(self, at: float, t: float, yaw: float) -> PartState:
        """The part slips out of the jaws at transfer progress `at` and falls to the floor."""
        x, y, z = self.jaw_center(Motion(at, 0.0, 1.0))
        fall = ramp(t, at, at + 0.12)
        ph = self._v("part_height")
        return PartState((x, y, z + (ph / 2 - z) * fall), (0.0, 0.0, yaw * fall))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        front = min(-self.belt_width / 2 - 0.04, self.base[1] - self.reach) - 0.12
        return (np.array([self.infeed_start - 0.25, front, 0.0]),
                np.array([self.tote_x + TOTE_LEN, self.base[1] + 0.4, self.z_arm + 0.3]))


# ---------------------------------------------------------------------- device-specific kinds


@dataclass(frozen=True)
class DropPart(VariantCycle):
    """The part slips out of the jaws mid-swing, falls to the floor and lies there; the arm goes
    on and places nothing."""

    def variant(self, device, rng):
        return {"kind": "drop", "at": float(rng.uniform(0.4, 0.6)),
                "yaw": float(rng.uniform(0.3, 0.7) * rng.choice([-1.0, 1.0]))}


@dataclass(frozen=True)
class ClosesOnAir(VariantCycle):
    """The quill stops short: the jaws close on air above the part, the arm carries nothing and
    the part stays at the stop (the infeed does not index; it is picked next cycle)."""

    def variant(self, device, rng):
        pw, ph = device.values["part_width"], device.values["part_height"]
        above = 0.75 * ph + float(rng.uniform(0.02, 0.05))  # jaw tips clear the part's top
        return {"kind": "air", "depth": max(0.1, 1.0 - above / device.values["stroke"]),
                "squeeze": (pw + 0.06) / 0.07}


@dataclass(frozen=True)
class WrongSpot(VariantCycle):
    """The arm sets the part down at the wrong spot: off the belt's centre line, overhanging."""

    def variant(self, device, rng):
        x, y, z = device.place
        dx = float(rng.uniform(0.08, 0.16) * rng.choice([-1.0, 1.0]))
        dy = -float(rng.uniform(0.45, 0.6)) * device.belt_width
        return {"kind": "wrong_spot", "place": (x + dx, y + dy, z)}


@dataclass(frozen=True)
class EarlyOpen(VariantCycle):
    """The jaws open before the part is set down (release before set): it drops onto the belt
    and lands askew."""

    def variant(self, device, rng):
        return {"kind": "early_open", "at": float(rng.uniform(0.05, 0.25)),
                "yaw": float(rng.uniform(0.35, 0.6) * rng.choice([-1.0, 1.0]))}


@dataclass(frozen=True)
class SwingLow(VariantCycle):
    """Return before rise (steps in the wrong order): the arm swings back with the quill still
    down, sweeping the jaws low over the conveyors, and rises at the pick."""

    def variant(self, device, rng):
        return {"kind": "swing_low"}


MOVING = ARM + ("part",)
Gripper.anomalies = {k.name: k for k in (
    ColorChange("part_color", "appearance", "a part of another colour", ("part",),
                steps=("lower", "rise")),
    ShapeChange("part_shape", "appearance", "a part bigger than the others", ("part",),
                factor=(1.3, 1.5), steps=("lower", "rise")),
    ColorChange("jaw_color", "appearance", "a jaw pad of another colour (worn liner)",
                ("jaw_left", "jaw_right")),
    Shift("part_shift", "position", "the part lies off-centre on the outfeed", ("part",),
          axis=1, fraction=(0.4, 0.6), steps=("release", "idle")),
    Tilt("part_tilt", "position", "the part is carried and set down askew", ("part",),
         steps=("lift", "idle")),
    WrongSpot("wrong_spot", "position", "the part is set down at the wrong spot",
              MOVING, steps=("transfer", "idle")),
    Stall("stall", "motion", "the arm stops mid-swing, then goes on", MOVING, step="transfer"),
    SpeedChange("fast_swing", "motion", "the arm swings over too fast", MOVING, step="transfer"),
    Jerk("jerk", "motion", "the arm shakes while swinging", MOVING, step="transfer",
         amplitude=(0.025, 0.04)),
    Reverse("swing_back", "motion", "the arm swings backwards for a while", MOVING,
            step="transfer"),
    DropPart("drop_part", "logic", "the gripper drops its part mid-swing; it falls to the floor",
             ("part",) + TOOL),
    ClosesOnAir("closes_on_air", "logic", "the jaws close on air above the part; nothing is moved",
                ("part", "part_next") + TOOL),
    EarlyOpen("early_open", "logic", "the jaws open before the part is set down; it drops askew",
              ("part",) + TOOL, steps=("set", "idle")),
    SwingLow("swing_low", "logic", "the arm swings back before the quill rises",
             ARM, steps=("rise", "return")),
)}
