"""Sorter: a colour sorter on a belt conveyor diverts each item into the lane of its colour.

Cycle: three items (one per lane colour) come in one after the other from the infeed; the belt
carries each past the colour scanner to the lane of its colour and stops, the lane's pusher
shoves the item off the belt onto the lane's roller chute, the item rolls to the end stop, the
pusher retracts, the next item comes. x runs along the belt, the lanes leave the belt towards the
camera (-y), the pushers stand behind the belt (+y), z is up.

Every item's path is one function of a path parameter; device-specific anomalies read an item's
stage back from its pose (on the belt: y = 0) and rebuild it with `item_state`.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, Jerk, Missing, Reverse, ShapeChange, SpeedChange, Stall, Tilt
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

N = 3
LANE_OF = (1, 0, 2)  # item k goes to lane LANE_OF[k]; lane 0 is nearest the infeed
X_START = -0.9  # infeed end of the belt
FIRST_LANE = 0.9
ROLLERS = 5
CLEATS = 10
PUSH_PARTS = tuple(f"{p}_{i}" for i in range(N) for p in ("rod", "paddle"))
ITEMS = tuple(f"item_{k}" for k in range(N))
CLEAT_NAMES = tuple(f"cleat_{c}" for c in range(CLEATS))


@dataclass(frozen=True)
class Motion:
    paths: tuple[float | None, ...]  # per item: 0..1 on the belt, 1..2 pushed, 2..3 down the chute; None: not in yet
    pushers: tuple[float, ...]  # per lane: the pusher's extension, 0..1
    belt: float  # how far the belt has run in this cycle


class Sorter(Device):
    name = "sorter"
    description = "colour sorter: items on a belt are pushed into the lane of their colour"
    params = {
        "item_size": ParamRange(0.28, 0.38, "m", "item length and depth"),
        "item_height": ParamRange(0.2, 0.35, "m"),
        "hue": ParamRange(0.0, 1.0, "", "hue of lane 0's colour; the others follow at 1/3 steps"),
        "frame_hue": ParamRange(0.5, 0.7, "", "hue of the conveyor frame paint"),
        "belt_height": ParamRange(0.7, 0.9, "m", "belt top above the floor"),
        "lane_spacing": ParamRange(0.8, 1.05, "m"),
        "chute_length": ParamRange(1.0, 1.2, "m"),
        "belt_speed": ParamRange(0.6, 1.0, "m/s"),
        "push_seconds": ParamRange(0.6, 0.9, "s"),
        "retract_seconds": ParamRange(0.8, 1.3, "s", "pusher back while the item rolls down"),
        "idle_seconds": ParamRange(0.3, 1.2, "s"),
    }

    # ------------------------------------------------------------------ layout

    @property
    def belt_w(self) -> float:
        return self._v("item_size") + 0.25

    def lane_x(self, lane: int) -> float:
        return FIRST_LANE + lane * self._v("lane_spacing")

    @property
    def x_in(self) -> float:
        return X_START + self._v("item_size") / 2 + 0.03

    @property
    def x_end(self) -> float:
        return self.lane_x(N - 1) + 0.75

    @property
    def chute_w(self) -> float:
        return self._v("item_size") + 0.16

    @property
    def y_chute0(self) -> float:
        """Item centre when pushed fully onto the chute."""
        return -self.belt_w / 2 - self._v("item_size") / 2 - 0.01

    @property
    def y_rest(self) -> float:
        return -self.belt_w / 2 - self._v("chute_length") + self._v("item_size") / 2 + 0.04

    @property
    def paddle_home(self) -> float:
        """y of the paddle face when retracted (just behind the belt's far edge)."""
        return self.belt_w / 2 + 0.04

    @property
    def paddle_reach(self) -> float:
        """y of the paddle face fully extended (the item's back face on the chute)."""
        return self.y_chute0 + self._v("item_size") / 2

    def color(self, lane: int) -> tuple[float, float, float]:
        return tuple(colorsys.hsv_to_rgb((self._v("hue") + lane / N) % 1.0, 0.8, 0.85))

    def unknown_color(self, lane: int) -> tuple[float, float, float]:
        """A colour half way between two lane colours: none of the lanes takes it."""
        return tuple(colorsys.hsv_to_rgb((self._v("hue") + (lane + 0.5) / N) % 1.0, 0.8, 0.85))

    def parts(self) -> dict[str, Part]:
        s, ih, bw = self._v("item_size"), self._v("item_height"), self.belt_w
        zb, cl, cw = self._v("belt_height"), self._v("chute_length"), self.chute_w
        frame = tuple(colorsys.hsv_to_rgb(self._v("frame_hue"), 0.55, 0.55))
        dark, black, steel = (0.15, 0.15, 0.16), (0.06, 0.06, 0.06), (0.62, 0.63, 0.66)
        length = self.x_end - X_START
        mid = (X_START + self.x_end) / 2
        across = (math.pi / 2, 0.0, 0.0)  # a cylinder lying across the belt
        leg_at = [(float(x), y) for x in np.linspace(X_START + 0.1, self.x_end - 0.1, 3)
                  for y in (-bw / 2 - 0.02, bw / 2 + 0.02)]
        p = [
            Part("floor", "box", (16.0, 16.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (16.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, 1.6, 2.0))),
            Part("belt", "box", (length, bw, 0.04), black, "rubber", rest=PartState((mid, 0.0, zb - 0.02))),
            Part("rail_near", "box", (length, 0.04, 0.14), frame, "paint",
                 rest=PartState((mid, -bw / 2 - 0.02, zb - 0.03))),
            Part("rail_far", "box", (length, 0.04, 0.14), frame, "paint",
                 rest=PartState((mid, bw / 2 + 0.02, zb - 0.03))),
            Part("drum_in", "cylinder", (0.12, 0.12, bw), steel, "steel",
                 rest=PartState((X_START, 0.0, zb - 0.06), rotation=across)),
            Part("drum_out", "cylinder", (0.12, 0.12, bw), steel, "steel",
                 rest=PartState((self.x_end, 0.0, zb - 0.06), rotation=across)),
            Part("motor", "box", (0.25, 0.2, 0.2), (0.2, 0.35, 0.25), "paint",
                 rest=PartState((self.x_end - 0.1, bw / 2 + 0.14, zb - 0.2))),
            *[Part(f"leg_{i}", "box", (0.06, 0.06, zb - 0.1), frame, "paint", rest=PartState((x, y, (zb - 0.1) / 2)))
              for i, (x, y) in enumerate(leg_at)],
            Part("arch_near", "box", (0.06, 0.06, ih + 0.35), dark, "paint",
                 rest=PartState((0.25, -bw / 2 - 0.07, zb + (ih + 0.35) / 2))),
            Part("arch_far", "box", (0.06, 0.06, ih + 0.35), dark, "paint",
                 rest=PartState((0.25, bw / 2 + 0.07, zb + (ih + 0.35) / 2))),
            Part("arch_top", "box", (0.08, bw + 0.16, 0.06), dark, "paint",
                 rest=PartState((0.25, 0.0, zb + ih + 0.35))),
            Part("scanner", "box", (0.14, 0.16, 0.08), (0.95, 0.55, 0.05), "plastic",
                 rest=PartState((0.25, 0.0, zb + ih + 0.28))),
            Part("cabinet", "box", (0.5, 0.3, 1.2), (0.82, 0.83, 0.8), "paint",
                 rest=PartState((self.x_end + 0.5, 0.9, 0.6))),
            Part("cabinet_light", "cylinder", (0.08, 0.08, 0.1), (0.1, 0.8, 0.2), "plastic",
                 rest=PartState((self.x_end + 0.5, 0.9, 1.25))),
            *[Part(c, "box", (0.03, bw, 0.012), (0.3, 0.3, 0.32), "rubber") for c in CLEAT_NAMES],
            *[Part(it, "box", (s, s, ih), self.color(LANE_OF[k]), "cardboard")
              for k, it in enumerate(ITEMS)],
        ]
        for i in range(N):
            x = self.lane_x(i)
            yc = -bw / 2 - cl / 2
            zp = zb + ih * 0.5
            p += [
                Part(f"chute_{i}", "box", (cw, cl, 0.05), frame, "paint", rest=PartState((x, yc, zb - 0.025))),
                Part(f"guard_a_{i}", "box", (0.03, cl, 0.1), steel, "steel",
                     rest=PartState((x - cw / 2, yc, zb + 0.03))),
                Part(f"guard_b_{i}", "box", (0.03, cl, 0.1), steel, "steel",
                     rest=PartState((x + cw / 2, yc, zb + 0.03))),
                Part(f"stop_{i}", "box", (cw, 0.04, 0.12), dark, "paint",
                     rest=PartState((x, -bw / 2 - cl - 0.02, zb + 0.04))),
                Part(f"chute_leg_{i}", "box", (0.05, 0.05, zb - 0.05), frame, "paint",
                     rest=PartState((x, -bw / 2 - cl + 0.1, (zb - 0.05) / 2))),
                Part(f"post_{i}", "box", (0.04, 0.04, 0.5), dark, "paint",
                     rest=PartState((x + cw / 2 + 0.08, -bw / 2 - cl + 0.05, zb + 0.2))),
                Part(f"lamp_{i}", "cylinder", (0.11, 0.11, 0.12), self.color(i), "plastic",
                     rest=PartState((x + cw / 2 + 0.08, -bw / 2 - cl + 0.05, zb + 0.5))),
                Part(f"body_{i}", "cylinder", (0.1, 0.1, 0.35), steel, "steel",
                     rest=PartState((x, bw / 2 + 0.1 + 0.175, zp), rotation=across)),
                Part(f"bracket_{i}", "box", (0.06, 0.06, zb + 0.05), dark, "paint",
                     rest=PartState((x, bw / 2 + 0.3, (zb + 0.05) / 2))),
                Part(f"rod_{i}", "cylinder", (0.035, 0.035, 1.0), (0.85, 0.85, 0.88), "chrome"),
                Part(f"paddle_{i}", "box", (s + 0.08, 0.03, ih * 0.8), (0.9, 0.75, 0.1), "paint"),
                *[Part(f"roller_{i}_{r}", "cylinder", (0.04, 0.04, cw - 0.04), steel, "steel",
                       rest=PartState((x, -bw / 2 - 0.08 - r * (cl - 0.16) / (ROLLERS - 1), zb - 0.01),
                                      rotation=(0.0, math.pi / 2, 0.0)))
                  for r in range(ROLLERS)],
            ]
        return {q.name: q for q in p}

    def steps(self) -> list[Step]:
        v = self._v("belt_speed")
        out = []
        for k in range(N):
            out += [Step(f"feed_{k}", (self.lane_x(LANE_OF[k]) - self.x_in) / v),
                    Step(f"push_{k}", self._v("push_seconds")),
                    Step(f"retract_{k}", self._v("retract_seconds"))]
        return out + [Step("idle", self._v("idle_seconds"))]

    # ------------------------------------------------------------------ the program

    def item_state(self, lane: int, s: float, x_lane: float | None = None) -> PartState:
        """Item on its path to `lane`: s in [0, 1] on the belt, [1, 2] pushed, [2, 3] rolling
        down the chute, 3 at the end stop."""
        zb, ih = self._v("belt_height"), self._v("item_height")
        xl = self.lane_x(lane) if x_lane is None else x_lane
        z = zb + ih / 2
        if s <= 1.0:
            return PartState((self.x_in + s * (xl - self.x_in), 0.0, z))
        if s <= 2.0:
            face = self.paddle_home + (s - 1.0) * (self.paddle_reach - self.paddle_home)
            return PartState((xl, min(0.0, face - self._v("item_size") / 2), z))
        t = min(s - 2.0, 1.0)
        return PartState((xl, self.y_chute0 + t * (self.y_rest - self.y_chute0), z))

    def pusher(self, lane: int, ext: float) -> Pose:
        """Rod and paddle of one pusher, ext in [0, 1] of its stroke."""
        face = self.paddle_home + ext * (self.paddle_reach - self.paddle_home)
        zp = self._v("belt_height") + self._v("item_height") * 0.5
        back = self.belt_w / 2 + 0.1 + 0.35  # back end of the cylinder body
        paddle_y = face + 0.015
        rod = back - 0.05 - (paddle_y + 0.015)
        x = self.lane_x(lane)
        return {f"paddle_{lane}": PartState((x, paddle_y, zp)),
                f"rod_{lane}": PartState((x, paddle_y + 0.015 + rod / 2, zp),
                                         rotation=(math.pi / 2, 0.0, 0.0), scale=(1.0, 1.0, rod))}

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        name, _, idx = step.partition("_")
        k = N if step == "idle" else int(idx)
        stage = {"feed": 0.0, "push": 1.0, "retract": 2.0}.get(name, 3.0)
        s: list[float | None] = [3.0 if m < k else None for m in range(N)]
        travel = sum(self.lane_x(LANE_OF[m]) - self.x_in for m in range(min(k, N)))
        ext = [0.0] * N
        if k < N:
            s[k] = stage + t
            if name == "feed":
                travel += t * (self.lane_x(LANE_OF[k]) - self.x_in)
            else:
                travel += self.lane_x(LANE_OF[k]) - self.x_in
            if name == "push":
                ext[LANE_OF[k]] = t
            elif name == "retract":
                ext[LANE_OF[k]] = 1.0 - t
        return Motion(tuple(s), tuple(ext), travel)

    def build(self, m: Motion) -> Pose:
        pose = {}
        for k, it in enumerate(ITEMS):
            if m.paths[k] is None:
                pose[it] = PartState((self.x_in, 0.0, self._v("belt_height")), visible=False)
            else:
                pose[it] = self.item_state(LANE_OF[k], m.paths[k])
        for lane in range(N):
            pose.update(self.pusher(lane, m.pushers[lane]))
        length = self.x_end - X_START
        zb = self._v("belt_height")
        for c, name in enumerate(CLEAT_NAMES):
            x = X_START + 0.05 + (c * length / CLEATS + m.belt) % (length - 0.1)
            pose[name] = PartState((x, 0.0, zb + 0.006))
        return pose

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        bw, cl = self.belt_w, self._v("chute_length")
        lo = np.array([X_START - 0.1, -bw / 2 - cl - 0.1, 0.0])
        hi = np.array([self.x_end + 0.3, bw / 2 + 0.6, self._v("belt_height") + 0.6])
        return lo, hi


# ---------------------------------------------------------------------- device-specific kinds


def _on_belt(pose: Pose, item: str) -> bool:
    return pose[item].visible and pose[item].location[1] == 0.0


def _pushed_stage(device: Sorter, state: PartState) -> float:
    """Path parameter of an item off the belt line (y < 0): pushed or on the chute."""
    y = state.location[1]
    if y >= device.y_chute0 + 1e-9:
        face = y + device._v("item_size") / 2
        return 1.0 + (face - device.paddle_home) / (device.paddle_reach - device.paddle_home)
    return 2.0 + (y - device.y_chute0) / (device.y_rest - device.y_chute0)


@dataclass(frozen=True)
class WrongLane(AnomalyKind):
    """The belt takes the item to another lane and that lane's pusher sorts it there."""

    item: int = 0

    def plan(self, device, schedule, cycle, rng):
        k = self.item
        right = LANE_OF[k]
        wrong = int(rng.choice([i for i in range(N) if i != right]))
        x0, xr, xw = device.x_in, device.lane_x(right), device.lane_x(wrong)
        it = ITEMS[k]
        queue = device.y_rest + device._v("item_size") + 0.02

        def apply(pose, frame, phase):
            st = pose[it]
            if not st.visible:
                return pose
            x, y, z = st.location
            if y < device.y_chute0:  # on the chute: stop behind the item already at the stop
                y = device.y_chute0 + (y - device.y_chute0) * (queue - device.y_chute0) / (
                    device.y_rest - device.y_chute0)
            pose[it] = st.moved(location=(x0 + (x - x0) * (xw - x0) / (xr - x0), y, z))
            ext = (pose[f"paddle_{right}"].location[1] - device.paddle_home) / (
                device.paddle_reach - device.paddle_home)
            pose.update(device.pusher(right, 0.0))
            pose.update(device.pusher(wrong, ext))
            return pose
        return self._state_edit(schedule, cycle, apply, f"feed_{k}")


@dataclass(frozen=True)
class NotDiverted(AnomalyKind):
    """The item's pusher does not fire: the item stays on the belt and rides on with the next
    items towards the belt's end. With `recolor`, the item has a colour no lane takes (and is
    rightly not diverted)."""

    item: int = 0
    recolor: bool = False

    def plan(self, device, schedule, cycle, rng):
        k = self.item
        lane = LANE_OF[k]
        it = ITEMS[k]
        first = f"feed_{k}" if self.recolor else f"push_{k}"
        color = device.unknown_color(lane)
        x_stop = device.x_end - device._v("item_size") / 2 - 0.02

        def apply(pose, frame, phase):
            st = pose[it]
            if not st.visible:
                return pose
            if self.recolor:
                st = st.moved(color=color)
            if _on_belt(pose, it) and st.location[0] < device.lane_x(lane):
                pose[it] = st  # still on its way
                return pose
            # the belt has run on by as much as the later items have travelled
            advance = sum(pose[ITEMS[m]].location[0] - device.x_in for m in range(k + 1, N)
                          if pose[ITEMS[m]].visible)
            x = min(device.lane_x(lane) + advance, x_stop)
            pose[it] = st.moved(location=(x, 0.0, st.location[2]))
            pose.update(device.pusher(lane, 0.0))
            return pose
        return self._state_edit(schedule, cycle, apply, first)


@dataclass(frozen=True)
class EmptyFire(AnomalyKind):
    """A pusher fires while no item is in front of it (while the next item rides to lane 0)."""

    def plan(self, device, schedule, cycle, rng):
        k = LANE_OF.index(0)
        lane = int(rng.choice([i for i in range(N) if i != 0]))
        x0, x1 = device.x_in, device.lane_x(0)
        a, b = sorted(rng.uniform(0.1, 0.9, size=2))
        if b - a < 0.4:
            a, b = 0.15, 0.85

        def apply(pose, frame, phase):
            t = (pose[ITEMS[k]].location[0] - x0) / (x1 - x0)
            u = (t - a) / (b - a)
            if not (_on_belt(pose, ITEMS[k]) and 0.0 < u < 1.0):
                return pose
            pose.update(device.pusher(lane, float(np.clip(1.0 - abs(2.0 * u - 1.0), 0.0, 1.0))))
            return pose
        return self._state_edit(schedule, cycle, apply, f"feed_{k}", f"feed_{k}")


@dataclass(frozen=True)
class OffMark(AnomalyKind):
    """The belt stops the item off its lane's mark: the pusher hits it off-centre and it lands
    askew against the chute's guard."""

    item: int = 0

    def plan(self, device, schedule, cycle, rng):
        k = self.item
        it = ITEMS[k]
        off = rng.uniform(0.55, 0.8) * (device.chute_w - device._v("item_size")) / 2 + 0.06
        off *= rng.choice([-1.0, 1.0])
        turn = rng.uniform(0.25, 0.45) * np.sign(off)
        x0, xl = device.x_in, device.lane_x(LANE_OF[k])

        def apply(pose, frame, phase):
            st = pose[it]
            if not st.visible:
                return pose
            x, y, z = st.location
            if _on_belt(pose, it):
                s = (x - x0) / (xl - x0)
                pose[it] = st.moved(location=(x + off * s, y, z))
                return pose
            stage = _pushed_stage(device, st)
            r = float(np.clip(stage - 1.0, 0.0, 1.0))
            pose[it] = st.moved(location=(x + off, y, z), rotation=(0.0, 0.0, turn * r))
            return pose
        return self._state_edit(schedule, cycle, apply, f"feed_{k}")


PUSHER_1 = (f"rod_{LANE_OF[1]}", f"paddle_{LANE_OF[1]}")

Sorter.anomalies = {k.name: k for k in (
    ColorChange("item_color", "appearance", "an item has another colour than the lanes' ones",
                ("item_1",)),
    ShapeChange("item_shape", "appearance", "an item is bigger than the others", ("item_2",),
                factor=(1.3, 1.5)),
    Missing("missing_lamp", "appearance", "a lane's colour lamp is missing", ("lamp_1",)),
    NotDiverted("unknown_color", "appearance", "an item of an unknown colour rides past all lanes",
                ("item_1",) + PUSHER_1, item=1, recolor=True),
    Tilt("item_askew", "position", "an item rides askew on the belt", ("item_0",),
         steps=("feed_0",)),
    OffMark("off_mark", "position", "an item is pushed off-centre and lands askew in its lane",
            ("item_2",), item=2),
    Stall("stall", "motion", "the belt stops for a while with an item on it",
          ITEMS + CLEAT_NAMES, step="feed_1"),
    SpeedChange("fast_push", "motion", "a pusher shoves the item far too fast",
                ("item_0",) + PUSH_PARTS, step="push_0", factor=(1.8, 2.2)),
    Jerk("jerk", "motion", "a pusher judders while it pushes", PUSHER_1, step="push_1",
         amplitude=(0.025, 0.04)),
    Reverse("reverse", "motion", "the belt runs backwards for a moment",
            ITEMS + CLEAT_NAMES, step="feed_2"),
    WrongLane("wrong_lane", "logic", "an item is sorted into the lane of another colour",
              ("item_2",) + PUSH_PARTS, item=2),
    NotDiverted("not_diverted", "logic", "an item's pusher does not fire, the item rides on",
                ("item_0", f"rod_{LANE_OF[0]}", f"paddle_{LANE_OF[0]}"), item=0),
    EmptyFire("empty_fire", "logic", "a pusher fires with no item in front of it", PUSH_PARTS),
    Missing("missing_item", "logic", "an item does not come: the belt runs and a pusher fires "
            "for nothing", ("item_1",)),
)}
