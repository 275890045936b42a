"""Rotary indexing table: N stations on a turntable, a press head acting at one of them.

Cycle: the table indexes by 360/N, the press head lowers onto the part at the tool station, holds
(presses a pin into it), rises; meanwhile a new part slides from the infeed conveyor onto the empty
fixture at the load station (front left), a finished part slides off onto the outfeed
chute at the station before it, and the next part moves up on the infeed conveyor. z is up, the
table turns about the z axis (counter-clockwise seen from above), the camera looks from -y.

Station slots are fixed in the world at angles a_j = 200 deg + j * 360/N; at phase 0 fixture i sits
at slot i and after the index at slot i + 1. Slot 0 is the load station, slot N-1 the unload
station and slot T = N // 2 the tool station (right, opposite the load). At phase 0 slots 0 .. N-2 hold parts,
those on slots T .. N-2 already pressed (a pin on top).
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import (
    AnomalyKind,
    ColorChange,
    CutStep,
    Jerk,
    Reverse,
    ShapeChange,
    Shift,
    SpeedChange,
    Stall,
    Tilt,
)
from ipadgen.devices.motion import turned
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

BASE_H = 0.55  # top of the base drum
DISC_T = 0.06  # turntable thickness
TOP = BASE_H + DISC_T  # turntable top surface
NEST_H = 0.05  # fixture (nest) height
FEED_LEN = 0.55  # infeed conveyor / outfeed chute length
ARM_Z_GAP = 0.12  # from the raised head's top to the arm


def _n(values: dict) -> int:
    return int(round(values["stations"]))



class RotaryTable(Device):
    name = "rotary_table"
    description = ("rotary indexing table: indexes by 360/N, a press head presses a pin into the "
                   "part at the tool station while parts are loaded and unloaded")
    params = {
        "stations": ParamRange(4.0, 8.0, "", "number of stations N (rounded)"),
        "table_radius": ParamRange(0.55, 0.8, "m"),
        "part_size": ParamRange(0.13, 0.18, "m", "workpiece width and depth"),
        "part_height": ParamRange(0.07, 0.12, "m"),
        "part_hue": ParamRange(0.0, 1.0, "", "hue of the workpieces"),
        "machine_hue": ParamRange(0.5, 0.7, "", "hue of the machine paint (blues)"),
        "stroke": ParamRange(0.15, 0.3, "m", "press head travel"),
        "index_speed": ParamRange(20.0, 60.0, "deg/s", "table speed while indexing"),
        "lower_speed": ParamRange(0.08, 0.2, "m/s"),
        "raise_speed": ParamRange(0.12, 0.3, "m/s"),
        "press_seconds": ParamRange(2.0, 4.0, "s", "dwell with the head down"),
        "idle_seconds": ParamRange(1.0, 2.5, "s", "pause before the next index"),
    }

    # ------------------------------------------------------------------ geometry helpers

    @property
    def n(self) -> int:
        return _n(self.values)

    @property
    def tool_slot(self) -> int:
        return self.n // 2

    @property
    def step_angle(self) -> float:
        return 2 * math.pi / self.n

    @property
    def r_station(self) -> float:
        return 0.72 * self._v("table_radius")

    def slot_angle(self, j: float) -> float:
        return math.radians(200.0) + j * self.step_angle

    def _polar(self, r: float, angle: float, z: float) -> tuple[float, float, float]:
        return (r * math.cos(angle), r * math.sin(angle), z)

    @property
    def _work_z(self) -> float:
        return TOP + NEST_H + self._v("part_height") / 2

    @property
    def _work_top(self) -> float:
        return TOP + NEST_H + self._v("part_height")

    @property
    def _head_low(self) -> float:
        """Head centre z when pressing (its bottom on the pin, 3 cm above the part)."""
        return self._work_top + 0.03 + 0.05

    @property
    def _arm_z(self) -> float:
        return self._head_low + self._v("stroke") + 0.05 + ARM_Z_GAP

    @property
    def _column_r(self) -> float:
        return self._v("table_radius") + 0.22

    # ------------------------------------------------------------------ parts

    def parts(self) -> dict[str, Part]:
        R, w, h = self._v("table_radius"), self._v("part_size"), self._v("part_height")
        paint = colorsys.hsv_to_rgb(self._v("machine_hue"), 0.55, 0.55)
        work = tuple(colorsys.hsv_to_rgb(self._v("part_hue"), 0.65, 0.8))
        odd = tuple(colorsys.hsv_to_rgb((self._v("part_hue") + 0.5) % 1.0, 0.8, 0.75))
        steel, dark, yellow = (0.6, 0.62, 0.65), (0.16, 0.17, 0.19), (0.93, 0.74, 0.08)
        column_h = self._arm_z + 0.12
        rs = self.r_station
        arm_len = self._column_r - rs + 0.18
        ta = self.slot_angle(self.tool_slot)
        load_a, unload_a = self.slot_angle(0), self.slot_angle(self.n - 1)
        feed_mid = rs + 0.08 + FEED_LEN / 2
        side = (w + 0.1) / 2 + 0.01
        perp = load_a + math.pi / 2
        rail_mid = self._polar(feed_mid, load_a, TOP + NEST_H + 0.01)
        along_feed = (0.0, 0.0, load_a)
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, R + 1.3, 2.0))),
            Part("base", "cylinder", (2 * R * 0.88, 2 * R * 0.88, BASE_H), paint, "paint",
                 rest=PartState((0.0, 0.0, BASE_H / 2))),
            Part("plinth", "cylinder", (2 * R * 0.95, 2 * R * 0.95, 0.06), dark, "paint",
                 rest=PartState((0.0, 0.0, 0.03))),
            Part("disc", "cylinder", (2 * R, 2 * R, DISC_T), steel, "steel",
                 rest=PartState((0.0, 0.0, BASE_H + DISC_T / 2))),
            Part("hub", "cylinder", (0.5 * R, 0.5 * R, 0.1), dark, "paint", rest=PartState((0.0, 0.0, TOP + 0.05))),
            Part("hub_cap", "cylinder", (0.2 * R, 0.2 * R, 0.04), yellow, "paint",
                 rest=PartState((0.0, 0.0, TOP + 0.12))),
            Part("column", "box", (0.2, 0.2, column_h), paint, "paint",
                 rest=PartState(self._polar(self._column_r, ta, (self._arm_z + 0.12) / 2), rotation=(0.0, 0.0, ta))),
            Part("arm", "box", (arm_len, 0.16, 0.12), paint, "paint",
                 rest=PartState(self._polar(self._column_r - arm_len / 2 + 0.1, ta, self._arm_z),
                                rotation=(0.0, 0.0, ta))),
            Part("cylinder_body", "cylinder", (0.16, 0.16, 0.2), dark, "paint",
                 rest=PartState(self._polar(rs, ta, self._arm_z + 0.1))),
            Part("ram", "cylinder", (0.05, 0.05, 1.0), (0.82, 0.82, 0.85), "chrome"),
            Part("head", "box", (0.16, 0.16, 0.1), yellow, "paint"),
            Part("infeed", "box", (FEED_LEN, w + 0.1, 0.08), (0.22, 0.24, 0.27), "rubber",
                 rest=PartState(self._polar(feed_mid, load_a, TOP + NEST_H - 0.04), rotation=along_feed)),
            Part("infeed_rail_a", "box", (FEED_LEN, 0.02, 0.05), steel, "steel",
                 rest=PartState(tuple(np.add(rail_mid, self._polar(side, perp, 0.0))), rotation=along_feed)),
            Part("infeed_rail_b", "box", (FEED_LEN, 0.02, 0.05), steel, "steel",
                 rest=PartState(tuple(np.add(rail_mid, self._polar(-side, perp, 0.0))), rotation=along_feed)),
            Part("infeed_leg", "box", (0.08, 0.08, TOP - 0.08), dark, "paint",
                 rest=PartState(self._polar(feed_mid + FEED_LEN / 2 - 0.1, load_a, (TOP - 0.08) / 2))),
            Part("outfeed", "box", (FEED_LEN, w + 0.1, 0.04), steel, "steel",
                 rest=PartState(self._polar(rs + 0.1 + FEED_LEN / 2, unload_a, TOP + NEST_H - 0.02),
                                rotation=(0.0, 0.0, unload_a))),
            Part("outfeed_leg", "box", (0.08, 0.08, TOP - 0.1), dark, "paint",
                 rest=PartState(self._polar(rs + FEED_LEN, unload_a, (TOP - 0.1) / 2))),
            Part("cabinet", "box", (0.5, 0.3, 1.0), (0.85, 0.86, 0.84), "paint",
                 rest=PartState((-R - 0.45, R + 0.7, 0.5))),
            Part("cable", "box", (0.04, 0.04, 0.6), dark, "rubber", rest=PartState((-R - 0.45, R + 0.6, 0.3))),
            Part("beacon", "cylinder", (0.09, 0.09, 0.12), (0.95, 0.55, 0.05), "plastic",
                 rest=PartState(self._polar(self._column_r, ta, self._arm_z + 0.18))),
            Part("feed_next", "box", (w, w, h), work, "paint"),
            Part("odd_part", "cylinder", (w * 1.15, w * 1.15, h * 1.5), odd, "plastic"),
        ]
        # numbered parts for eight stations, so every kind names existing parts (extra ones
        # hidden), and the three workpieces with a role this cycle by role
        for name in [*self._numbered(), "work_in", "work_out", "work_tool", "pin_in", "pin_out",
                     "pin_tool"]:
            if name.startswith("nest"):
                parts.append(Part(name, "box", (w + 0.06, w + 0.06, NEST_H), dark, "steel"))
            elif name.startswith("work"):
                parts.append(Part(name, "box", (w, w, h), work, "paint"))
            else:
                parts.append(Part(name, "cylinder", (0.35 * w, 0.35 * w, 0.06),
                                  (0.82, 0.82, 0.85), "chrome"))
        return {p.name: p for p in parts}

    # ------------------------------------------------------------------ program

    def steps(self) -> list[Step]:
        stroke = self._v("stroke")
        return [
            Step("index", math.degrees(self.step_angle) / self._v("index_speed")),
            Step("lower", stroke / self._v("lower_speed")),
            Step("press", self._v("press_seconds")),
            Step("raise", stroke / self._v("raise_speed")),
            Step("idle", self._v("idle_seconds")),
        ]

    def head_z(self, step: str, t: float) -> float:
        low, stroke = self._head_low, self._v("stroke")
        return low + {"lower": (1 - t) * stroke, "press": 0.0, "raise": t * stroke}.get(step, stroke)

    def table_turn(self, step: str, t: float) -> float:
        """Table angle relative to phase 0 (0 .. one index)."""
        return (t if step == "index" else 1.0) * self.step_angle

    def table_progress(self, pose: Pose) -> float:
        """How far the table has indexed in a pose (0 .. 1, from where fixture 0 is)."""
        x, y, _ = pose["nest_0"].location
        turn = (math.atan2(y, x) - self.slot_angle(0)) % (2 * math.pi)
        if turn > math.pi:
            turn -= 2 * math.pi
        return turn / self.step_angle

    def tool_states(self, z: float) -> dict[str, PartState]:
        a = self.slot_angle(self.tool_slot)
        ram_top = self._arm_z - 0.06
        ram_len = ram_top - z
        return {
            "head": PartState(self._polar(self.r_station, a, z), rotation=(0.0, 0.0, a)),
            "ram": PartState(self._polar(self.r_station, a, z + ram_len / 2),
                             scale=(1.0, 1.0, ram_len)),
        }

    def work(self, i: int) -> str:
        """Name of fixture i's workpiece: by role for the three that do something this cycle."""
        roles = {self.n - 1: "work_in", self.n - 2: "work_out", self.tool_slot - 1: "work_tool"}
        return roles.get(i, f"work_{i}")

    def pin(self, i: int) -> str:
        return self.work(i).replace("work", "pin")

    @staticmethod
    def _numbered() -> list[str]:
        return [f"{p}_{i}" for p in ("nest", "work", "pin") for i in range(_N_MAX)]

    def riding(self) -> tuple[str, ...]:
        """Parts that turn with the table (work_out and pin_out until they are pushed off)."""
        n = self.n
        return (tuple(f"nest_{i}" for i in range(n)) + tuple(self.work(i) for i in range(n - 1))
                + tuple(self.pin(i) for i in range(n - 1)))

    def pose(self, phase: float) -> Pose:
        n, T = self.n, self.tool_slot
        w = self._v("part_size")
        step, t = self.step_at(phase)
        turn = self.table_turn(step, t)
        rs, wz = self.r_station, self._work_z
        pin_z = self._work_top + 0.0
        feed_r0 = rs + w / 2 + 0.08  # near end of the infeed, where the waiting part sits
        load_a, unload_a = self.slot_angle(0), self.slot_angle(n - 1)
        pose = self.rest_pose()
        pressed_now = step in ("press", "raise", "idle")
        for i in range(n):
            a = self.slot_angle(i) + turn
            pose[f"nest_{i}"] = PartState(self._polar(rs, a, TOP + NEST_H / 2), rotation=(0.0, 0.0, a))
            r, wa = rs, a
            if i == n - 1:  # the part loaded this cycle: waits on the infeed, slides on in "lower"
                r = {"index": feed_r0, "lower": feed_r0 + (rs - feed_r0) * t}.get(step, rs)
                wa = load_a
            elif i == n - 2:  # the part unloaded this cycle: slides off in "raise"
                far = rs + 0.1 + FEED_LEN - w / 2 - 0.05
                r = {"raise": rs + (far - rs) * t, "idle": far}.get(step, rs)
                wa = unload_a if step in ("raise", "idle") else a
            pose[self.work(i)] = PartState(self._polar(r, wa, wz), rotation=(0.0, 0.0, wa))
            pressed = T <= i <= n - 2 or (i == T - 1 and pressed_now)
            pose[self.pin(i)] = PartState(self._polar(r, wa, pin_z), rotation=(0.0, 0.0, wa),
                                         visible=pressed)
        # the next part moves up the infeed in "idle", to where work_{n-1} waits at phase 0
        feed_far = rs + FEED_LEN + 0.02 - w / 2
        fr = feed_r0 + (feed_far - feed_r0) * (1 - t) if step == "idle" else feed_far
        pose["feed_next"] = PartState(self._polar(fr, load_a, wz), rotation=(0.0, 0.0, load_a),
                                      visible=step == "idle")
        pose["odd_part"] = PartState(self._polar(rs, load_a, wz), visible=False)
        used = set(pose)
        for name in self._numbered():
            if name not in used:
                pose[name] = PartState((0.0, 0.0, TOP), visible=False)

        pose.update(self.tool_states(self.head_z(step, t)))
        return pose

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        R, rs = self._v("table_radius"), self.r_station
        far = rs + 0.1 + FEED_LEN
        pts = [(R, R), (-R, -R), (R, -R), (-R, R)]
        pts += [self._polar(far, self.slot_angle(j), 0.0)[:2] for j in (0, self.n - 1)]
        pts += [self._polar(self._column_r + 0.1, self.slot_angle(self.tool_slot), 0.0)[:2]]
        xy = np.array(pts)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        return np.array([lo[0], lo[1], 0.0]), np.array([hi[0], hi[1], self._arm_z + 0.25])


# ---------------------------------------------------------------------- device-specific kinds


@dataclass(frozen=True)
class WrongPart(AnomalyKind):
    """A station holds another part (round, other colour) in place of work_0 for one cycle."""

    def plan(self, device, schedule, cycle, rng):
        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            s = pose["work_0"]
            h = device.parts()["odd_part"].size[2]
            x, y, _ = s.location
            pose["odd_part"] = PartState((x, y, TOP + NEST_H + h / 2))
            pose["work_0"] = s.moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply)


@dataclass(frozen=True)
class OverRotation(AnomalyKind):
    """The table indexes too far and dwells there: every fixture stands off its station, the new
    part is pushed onto the nominal spot beside its fixture."""

    extra: tuple[float, float] = (0.15, 0.3)  # of one index

    def plan(self, device, schedule, cycle, rng):
        extra = rng.uniform(*self.extra) * device.step_angle
        riding = set(device.riding())

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            turn = extra * min(max(device.table_progress(pose), 0.0), 1.0)
            for name in riding:
                if name in ("work_out", "pin_out"):
                    x, y, _ = pose[name].location
                    if math.hypot(x, y) > device.r_station + 1e-6:
                        continue  # on its way out: pushed along the chute
                pose[name] = turned(pose[name], 2, turn)
            return pose
        return self._state_edit(schedule, cycle, apply)


@dataclass(frozen=True)
class NoFeed(AnomalyKind):
    """No part arrives: the infeed is empty and the load station stays empty for a cycle."""

    def plan(self, device, schedule, cycle, rng):
        name = "work_in"

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            pose[name] = pose[name].moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply)


@dataclass(frozen=True)
class ToolDuringIndex(AnomalyKind):
    """Wrong order: the press head comes down while the table is still turning, and is down when
    the lowering should start."""

    def plan(self, device, schedule, cycle, rng):
        stroke, low = device.values["stroke"], device._head_low

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            p = min(max(device.table_progress(pose), 0.0), 1.0)
            head = pose["head"].location[2]
            if head < low + stroke - 1e-9 and p >= 1.0:  # the lower step: stay down
                z = low
            else:
                z = low + (1 - p) * stroke
            pose.update(device.tool_states(z))
            return pose
        return self._state_edit(schedule, cycle, apply, "index", "lower")


@dataclass(frozen=True)
class NoStroke(AnomalyKind):
    """The press does not come down: the head stays up and the part leaves without its pin."""

    def plan(self, device, schedule, cycle, rng):
        pin = "pin_tool"
        top = device._head_low + device.values["stroke"]

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            pose.update(device.tool_states(top))
            pose[pin] = pose[pin].moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply, "lower")


# Part names for every N: kinds list the parts of the largest table; masks ignore absent ones.
_N_MAX = 8
_TOOL = ("head", "ram")
_RIDING = (*RotaryTable._numbered(), "work_out", "work_tool", "pin_out", "pin_tool")
_DWELL = _TOOL + ("work_in", "work_out", "pin_out", "pin_tool", "feed_next")

RotaryTable.anomalies = {k.name: k for k in (
    ColorChange("part_color", "appearance", "a part of another colour rides the table", ("work_0",)),
    ShapeChange("part_shape", "appearance", "a part bigger than the others", ("work_0",),
                factor=(1.3, 1.6)),
    WrongPart("wrong_part", "appearance", "a station holds the wrong (round) part",
              ("work_0", "odd_part")),
    Shift("part_shift", "position", "a part sits off its fixture", ("work_0",), axis=0,
          fraction=(0.35, 0.6)),
    Tilt("part_tilt", "position", "a part sits askew in its fixture", ("work_0",)),
    OverRotation("over_rotation", "position", "the table indexes too far", _RIDING),
    Stall("stall", "motion", "the table stops mid-index, then goes on", _RIDING, step="index"),
    SpeedChange("fast_index", "motion", "the table indexes too fast", _RIDING, step="index"),
    Jerk("jerk", "motion", "the table shakes while indexing", _RIDING, step="index",
         amplitude=(0.02, 0.035)),
    Reverse("reverse", "motion", "the table turns back mid-index", _RIDING, step="index"),
    NoFeed("no_feed", "logic", "no part is loaded: a station stays empty", ("work_in",)),
    ToolDuringIndex("tool_during_index", "logic", "the press comes down while the table turns",
                    _TOOL),
    NoStroke("no_stroke", "logic", "the press does not come down; the part gets no pin",
             _TOOL + ("pin_tool",)),
    CutStep("skip_press", "logic", "the head rises at once, skipping the press dwell", _DWELL,
            step="press", next_step="raise"),
)}
