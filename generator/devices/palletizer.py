"""Palletizer: a gantry picks boxes off an infeed conveyor and stacks them on a pallet, layer by layer.

Cycle: for each box (four per layer, 2 x 2 pattern, 2 or 3 layers) the gripper lowers onto the box
waiting at the end of the infeed, lifts it, travels over the pallet, lowers it onto its spot,
releases, rises and returns; meanwhile the next box slides up the infeed. When the stack is
complete the loaded pallet rolls out (+x) on the pallet conveyor and an empty one rolls in from -x.
z is up, the camera looks from -y; the infeed runs along x behind the pallet (+y).

Boxes are named by placement order, box_0 first. A device-specific edit recomputes the pose of its
variant of the program at the program phase that `StateEdit.apply` receives.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import ColorChange, Jerk, ShapeChange, Shift, SpeedChange, Stall, Tilt, VariantCycle
from ipadgen.devices.motion import lerp, ramp, turned
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

PER_LAYER = 4
MAX_LAYERS = 3
MAX_BOXES = PER_LAYER * MAX_LAYERS
PATTERN = ((-1, -1), (1, -1), (-1, 1), (1, 1))  # front row first, the gripper comes from the back
BED_H = 0.2  # pallet conveyor top
PALLET_H = 0.14
TOP = BED_H + PALLET_H  # pallet top
FEED_Z = 0.6  # infeed conveyor top
GAP = 0.02
# sub-phases of one place step
LOWER, GRIP, LIFT, TRAVEL, SET, RELEASE, RISE = 0.12, 0.18, 0.30, 0.50, 0.64, 0.70, 0.82
GANTRY = ("bridge", "carriage", "mast", "plate", "cup_a", "cup_b", "hose")



class Palletizer(Device):
    name = "palletizer"
    description = "gantry palletizer: picks boxes off an infeed and stacks them on a pallet in layers"
    params = {
        "layers": ParamRange(2.0, 3.0, "", "layers per pallet (rounded)"),
        "box_length": ParamRange(0.3, 0.4, "m"),
        "box_width": ParamRange(0.24, 0.32, "m"),
        "box_height": ParamRange(0.18, 0.26, "m"),
        "box_hue": ParamRange(0.06, 0.11, "", "cardboard hue"),
        "frame_hue": ParamRange(0.0, 1.0, "", "hue of the gantry paint"),
        "place_seconds": ParamRange(1.5, 2.0, "s", "one pick-and-place"),
        "out_seconds": ParamRange(1.0, 1.5, "s", "loaded pallet rolls out"),
        "in_seconds": ParamRange(1.0, 1.5, "s", "empty pallet rolls in"),
    }

    @property
    def layers(self) -> int:
        return int(round(self._v("layers")))

    @property
    def m(self) -> int:
        return self.layers * PER_LAYER

    @property
    def pallet_size(self) -> tuple[float, float]:
        return 2 * self._v("box_length") + 0.08, 2 * self._v("box_width") + 0.08

    @property
    def y_pick(self) -> float:
        return self.pallet_size[1] / 2 + 0.55 + self._v("box_width") / 2

    @property
    def z_travel(self) -> float:
        """Gripper plate bottom at rest: a box carried below it clears the full stack."""
        return TOP + (self.layers + 1) * self._v("box_height") + 0.1

    @property
    def travel_out(self) -> float:
        return self.pallet_size[0] + 0.2

    @property
    def x_post(self) -> float:
        return self.pallet_size[0] / 2 + 0.45

    @property
    def y_front(self) -> float:
        return -self.pallet_size[1] / 2 - 0.3

    @property
    def y_back(self) -> float:
        return self.y_pick + 0.4

    @property
    def h_top(self) -> float:
        return self.z_travel + 0.3

    def target(self, g: int) -> tuple[float, float, float]:
        """Centre of box g on the pallet (pallet at the station)."""
        bx, by, bh = self._v("box_length"), self._v("box_width"), self._v("box_height")
        sx, sy = PATTERN[g % PER_LAYER]
        return (sx * (bx / 2 + GAP / 2), sy * (by / 2 + GAP / 2), TOP + bh * (g // PER_LAYER + 0.5))

    @property
    def pick(self) -> tuple[float, float, float]:
        return (0.0, self.y_pick, FEED_Z + self._v("box_height") / 2)

    # ------------------------------------------------------------------ parts

    def parts(self) -> dict[str, Part]:
        bx, by, bh = self._v("box_length"), self._v("box_width"), self._v("box_height")
        px, py = self.pallet_size
        paint = tuple(colorsys.hsv_to_rgb(self._v("frame_hue"), 0.7, 0.75))
        box = tuple(colorsys.hsv_to_rgb(self._v("box_hue"), 0.55, 0.72))
        wood, dark, steel = (0.62, 0.48, 0.3), (0.16, 0.17, 0.19), (0.6, 0.62, 0.65)
        yellow = (0.93, 0.74, 0.08)
        span_y = self.y_back - self.y_front
        span_mid = (self.y_back + self.y_front) / 2
        bed_len = px + 2 * self.travel_out
        pick = self.pick
        feed_x = -0.9 + bx / 2 + 0.04
        post_at = {"post_fl": (-self.x_post, self.y_front), "post_fr": (self.x_post, self.y_front),
                   "post_bl": (-self.x_post, self.y_back), "post_br": (self.x_post, self.y_back)}
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete",
                 rest=PartState((0.0, self.y_back + 0.8, 2.0))),
            Part("bed", "box", (bed_len, py + 0.1, BED_H - 0.02), dark, "paint",
                 rest=PartState((0.0, 0.0, (BED_H - 0.02) / 2))),
            Part("bed_rail_a", "box", (bed_len, 0.04, 0.04), steel, "steel",
                 rest=PartState((0.0, -py / 2 - 0.03, BED_H - 0.01))),
            Part("bed_rail_b", "box", (bed_len, 0.04, 0.04), steel, "steel",
                 rest=PartState((0.0, py / 2 + 0.03, BED_H - 0.01))),
            Part("pallet", "box", (px, py, PALLET_H), wood, "cardboard"),
            Part("pallet_new", "box", (px, py, PALLET_H), wood, "cardboard"),
            Part("infeed", "box", (1.8, by + 0.1, 0.1), (0.22, 0.24, 0.27), "rubber",
                 rest=PartState((feed_x, pick[1], FEED_Z - 0.05))),
            Part("infeed_frame", "box", (1.8, by + 0.14, FEED_Z - 0.1), (0.3, 0.33, 0.38), "paint",
                 rest=PartState((feed_x, pick[1], (FEED_Z - 0.1) / 2))),
            Part("stop", "box", (0.04, by + 0.14, 0.08), yellow, "paint",
                 rest=PartState((bx / 2 + 0.06, pick[1], FEED_Z + 0.04))),
            Part("rail_left", "box", (0.12, span_y + 0.12, 0.12), paint, "paint",
                 rest=PartState((-self.x_post, span_mid, self.h_top + 0.06))),
            Part("rail_right", "box", (0.12, span_y + 0.12, 0.12), paint, "paint",
                 rest=PartState((self.x_post, span_mid, self.h_top + 0.06))),
            Part("bridge", "box", (2 * self.x_post + 0.12, 0.16, 0.14), paint, "paint"),
            Part("carriage", "box", (0.26, 0.26, 0.22), dark, "paint"),
            Part("mast", "box", (0.08, 0.08, self.z_travel - TOP - self._v("box_height") + 0.6),
                 steel, "steel"),
            Part("plate", "box", (bx * 0.85, by * 0.85, 0.05), (0.2, 0.2, 0.22), "steel"),
            Part("cup_a", "cylinder", (0.07, 0.07, 0.03), (0.1, 0.1, 0.1), "rubber"),
            Part("cup_b", "cylinder", (0.07, 0.07, 0.03), (0.1, 0.1, 0.1), "rubber"),
            Part("hose", "box", (0.03, 0.03, 0.5), (0.1, 0.1, 0.12), "rubber"),
            Part("cabinet", "box", (0.5, 0.35, 1.4), (0.85, 0.86, 0.84), "paint",
                 rest=PartState((self.x_post + 0.5, self.y_back + 0.3, 0.7))),
            Part("beacon", "cylinder", (0.1, 0.1, 0.14), (0.95, 0.55, 0.05), "plastic",
                 rest=PartState((self.x_post, self.y_back, self.h_top + 0.19))),
            Part("fence", "box", (0.04, span_y, 1.2), yellow, "paint",
                 rest=PartState((-self.x_post - 0.9, span_mid, 0.6))),
            Part("box_next", "box", (bx, by, bh), box, "cardboard"),
        ]
        for post, (x, y) in post_at.items():
            parts.append(Part(post, "box", (0.12, 0.12, self.h_top), paint, "paint",
                              rest=PartState((x, y, self.h_top / 2))))
        parts += [Part(f"box_{g}", "box", (bx, by, bh), box, "cardboard") for g in range(MAX_BOXES)]
        return {p.name: p for p in parts}

    # ------------------------------------------------------------------ program

    def steps(self) -> list[Step]:
        place = self._v("place_seconds")
        return ([Step(f"place_{g}", place) for g in range(self.m)]
                + [Step("out", self._v("out_seconds")), Step("in", self._v("in_seconds"))])

    def _where(self, phase: float) -> tuple[int, float]:
        """(step index: g for place_g, m for out, m + 1 for in; progress)."""
        step, t = self.step_at(phase)
        if step == "out":
            return self.m, t
        if step == "in":
            return self.m + 1, t
        return int(step.split("_")[1]), t

    def gripper(self, g: int, t: float, target) -> tuple[float, float, float]:
        """Plate-bottom position during place step g bringing its box to `target` (centre)."""
        bh = self._v("box_height")
        pick = self.pick
        rest = (pick[0], pick[1], self.z_travel)
        at_pick = (pick[0], pick[1], pick[2] + bh / 2)
        above = (target[0], target[1], self.z_travel)
        at_target = (target[0], target[1], target[2] + bh / 2)
        if t < LOWER:
            return lerp(rest, at_pick, ramp(t, 0, LOWER))
        if t < GRIP:
            return at_pick
        if t < LIFT:
            return lerp(at_pick, rest, ramp(t, GRIP, LIFT))
        if t < TRAVEL:
            return lerp(rest, above, ramp(t, LIFT, TRAVEL))
        if t < SET:
            return lerp(above, at_target, ramp(t, TRAVEL, SET))
        if t < RELEASE:
            return at_target
        if t < RISE:
            return lerp(at_target, above, ramp(t, RELEASE, RISE))
        return lerp(above, rest, ramp(t, RISE, 1.0))

    def pose(self, phase: float) -> Pose:
        return self.variant_pose(phase)

    def variant_pose(self, phase: float, targets: dict | None = None, missing: int | None = None,
                     drop: int | None = None, tilt: float = 0.0) -> Pose:
        """The program at `phase`; the keywords describe anomalous variants: boxes set down at
        other spots, a box that never comes, a box dropped in transit, a tilted pallet."""
        targets = targets or {}
        bx, bh = self._v("box_length"), self._v("box_height")
        px, py = self.pallet_size
        cur, t = self._where(phase)
        m = self.m
        pallet_x = {m: self.travel_out * t, m + 1: self.travel_out}.get(cur, 0.0)
        pick = self.pick
        feed_start = (-1.2, pick[1], pick[2])
        pose = self.rest_pose()

        def on_pallet(loc):
            return (loc[0] + pallet_x, loc[1], loc[2])

        # gripper
        if cur < m:
            grip = self.gripper(cur, t, targets.get(cur, self.target(cur)))
        else:
            grip = (pick[0], pick[1], self.z_travel)
        for g in range(MAX_BOXES):
            name = f"box_{g}"
            target = targets.get(g, self.target(g))
            if g >= m or g == missing:
                pose[name] = PartState(pick, visible=False)
                continue
            if cur == g - 1 and t >= LIFT:  # slides up the infeed while the previous one travels
                loc, visible = lerp(feed_start, pick, ramp(t, LIFT, RELEASE)), True
            elif cur < g:
                loc, visible = pick, False
            elif cur == g and t < GRIP:  # waiting at the stop
                loc, visible = pick, True
            elif cur == g and t < SET:  # carried
                loc, visible = (grip[0], grip[1], grip[2] - bh / 2), True
            else:
                loc, visible = on_pallet(target), True
            state = PartState(loc, visible=visible)
            if drop == g and cur == g and t >= LIFT:
                state = self._dropped(g, t, target) or state
            elif drop == g and cur > g:
                state = self._dropped(g, 1.0, target)
            pose[name] = state
        if tilt:
            self._tilt(pose, tilt, pallet_x, cur, t)
        nxt = ramp(t, 0.0, 0.8) if cur == m + 1 else 0.0
        pose["box_next"] = PartState(lerp(feed_start, pick, nxt), visible=cur == m + 1)

        pose["pallet"] = PartState((pallet_x, 0.0, BED_H + PALLET_H / 2))
        if tilt:
            pose["pallet"] = self._tilted(pose["pallet"], tilt, pallet_x)
        new_x = -self.travel_out * (1 - t) if cur == m + 1 else -self.travel_out
        pose["pallet_new"] = PartState((new_x, 0.0, BED_H + PALLET_H / 2), visible=cur == m + 1)

        gx, gy, gz = grip
        mast_len = self.z_travel - TOP - bh + 0.6
        pose.update({
            "bridge": PartState((0.0, gy, self.h_top + 0.07)),
            "carriage": PartState((gx, gy, self.h_top - 0.04)),
            "mast": PartState((gx, gy, gz + 0.05 + mast_len / 2)),
            "plate": PartState((gx, gy, gz + 0.025)),
            "cup_a": PartState((gx - bx * 0.22, gy, gz + 0.015)),
            "cup_b": PartState((gx + bx * 0.22, gy, gz + 0.015)),
            "hose": PartState((gx + 0.07, gy, gz + 0.3)),
        })
        return pose

    def _dropped(self, g: int, t: float, target) -> PartState | None:
        """Box g slips off the gripper over the gap between pallet and infeed and lands on the floor."""
        bh = self._v("box_height")
        pick, py = self.pick, self.pallet_size[1]
        y_gap = (py / 2 + 0.05 + pick[1] - (self._v("box_width") + 0.14) / 2) / 2
        f = (pick[1] - y_gap) / (pick[1] - target[1])  # fraction of the travel at the gap
        t_drop = LIFT + f * (TRAVEL - LIFT)
        if t < t_drop:
            return None
        x = pick[0] + f * (target[0] - pick[0])
        fall = ramp(t, t_drop, t_drop + 0.08)
        z = self.z_travel - bh / 2 + (bh / 2 - (self.z_travel - bh / 2)) * fall
        return PartState((x, y_gap, z), rotation=(0.0, 0.0, 0.5 * fall))

    def _tilted(self, state: PartState, angle: float, pallet_x: float) -> PartState:
        """Turned about the pallet's front bottom edge (a pallet on a broken slat)."""
        return turned(state, 0, angle, (state.location[0], -self.pallet_size[1] / 2, BED_H))

    def _tilt(self, pose: Pose, angle: float, pallet_x: float, cur: int, t: float) -> None:
        for g in range(self.m):
            s = pose[f"box_{g}"]
            if s.visible and (g < cur or g == cur and t >= SET):  # on the pallet
                pose[f"box_{g}"] = self._tilted(s, angle, pallet_x)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        px = self.pallet_size[0]
        far = px / 2 + self.travel_out
        return (np.array([-max(far, self.x_post + 0.9), self.y_front, 0.0]),
                np.array([max(far, self.x_post + 0.75), self.y_back, self.h_top + 0.25]))


# ---------------------------------------------------------------------- device-specific kinds


@dataclass(frozen=True)
class WrongSpot(VariantCycle):
    """In the top layer, the third box is set down on top of the first instead of its own spot:
    a hole and a tower (the top layer, so neither is hidden by a later box)."""

    def variant(self, device, rng):
        x, y, z = device.target(device.m - 4)
        return {"targets": {device.m - 2: (x, y, z + device.values["box_height"])}}


@dataclass(frozen=True)
class MissingBox(VariantCycle):
    """No box comes up the infeed: the gripper goes through the motion empty, a layer lacks a box."""

    def variant(self, device, rng):
        return {"missing": device.m - 3}  # top layer, front right: its spot stays in view


@dataclass(frozen=True)
class DroppedBox(VariantCycle):
    """The gripper loses its box in transit; it falls to the floor, its spot stays empty."""

    def variant(self, device, rng):
        return {"drop": device.m - 4}  # top layer, front left


@dataclass(frozen=True)
class StackTilt(VariantCycle):
    """The pallet sits on a broken slat: pallet and stack lean forward."""

    degrees: tuple[float, float] = (5.0, 9.0)

    def variant(self, device, rng):
        return {"tilt": -math.radians(rng.uniform(*self.degrees))}


_BOXES = tuple(f"box_{g}" for g in range(MAX_BOXES))

Palletizer.anomalies = {k.name: k for k in (
    ColorChange("box_color", "appearance", "a box of another colour", ("box_1",)),
    ShapeChange("box_shape", "appearance", "a box taller and wider than the others", ("box_1",),
                factor=(1.25, 1.5)),
    ColorChange("pallet_color", "appearance", "a pallet of another colour", ("pallet",)),
    Shift("box_shift", "position", "a box set down off its spot", ("box_5",), axis=0,
          fraction=(0.25, 0.4)),
    Tilt("box_tilt", "position", "a box set down askew", ("box_5",)),
    StackTilt("stack_tilt", "position", "pallet and stack lean forward", ("pallet", *_BOXES)),
    Stall("stall", "motion", "the gantry stops mid-move, then goes on", GANTRY + ("box_2", "box_3"),
          step="place_2"),
    SpeedChange("fast_place", "motion", "one pick-and-place runs too fast",
                GANTRY + ("box_2", "box_3"), step="place_2"),
    Jerk("jerk", "motion", "the gripper shakes during a pick-and-place", GANTRY, step="place_2",
         amplitude=(0.025, 0.04)),
    WrongSpot("wrong_spot", "logic", "a box is stacked on another instead of its own spot",
              ("box_6", "box_10")),
    MissingBox("missing_box", "logic", "a box never comes: the top layer lacks a box",
               ("box_5", "box_9")),
    DroppedBox("dropped_box", "logic", "the gripper drops a box in transit",
               ("box_4", "box_8")),
)}
