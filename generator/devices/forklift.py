"""Forklift: a counterbalance truck picks a pallet off the floor and puts it into a rack.

Cycle: the truck drives up to the pallet (forks slide into its openings), lifts it a little,
carries it to the rack, raises it above the shelf beams, lowers it onto them, backs off while the
forks come down, a short idle; the next pallet is then waiting at the pickup spot. x runs from the
pickup spot (x = 0) to the rack, the forks point to +x, z is up, the camera looks from -y.

The truck is positioned by `cx`, the x of the carriage face (where the forks start), and the
forks by `fork_z`, the height of the middle of the fork blades. Device-specific anomalies read
these two back from a pose and rebuild the truck and the pallet with `_truck` and `_pallet`.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import (
    AnomalyKind,
    ColorChange,
    Jerk,
    Missing,
    Reverse,
    ShapeChange,
    Shift,
    SpeedChange,
    Stall,
    Tilt,
)
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, Step

FZ0 = 0.06  # fork blade middle when the forks are down (inside the pallet's openings)
PALLET_H = 0.14
MAST_H = 2.0
CLEAR = 0.1  # how far the pallet is raised above the shelf beams before it is lowered
SET_DOWN = 0.05  # how far the forks go below the pallet's resting height after setting it down
WHEELS = ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")
HUBS = ("hub_fl", "hub_fr", "hub_rl", "hub_rr")
POSTS = ("post_fl", "post_fr", "post_rl", "post_rr")
BODY = ("chassis", "counterweight", "hood", "seat", "seat_back", "driver", "driver_head", "cowl",
        "steering_wheel", "guard_roof", "beacon", "mast_l", "mast_r", "mast_top", "lift_cylinder",
        *WHEELS, *HUBS, *POSTS)
LIFT = ("carriage", "backrest_top", "backrest_l", "backrest_m", "backrest_r", "shank_l",
        "shank_r", "fork_l", "fork_r", "inner_l", "inner_r", "inner_top", "lift_rod",
        "chain_l", "chain_r")
TRUCK = BODY + LIFT
MOVING = TRUCK + ("pallet", "load")


@dataclass(frozen=True)
class Motion:
    cx: float  # x of the carriage face
    fork_z: float
    pallet_x: float  # centre
    pallet_z: float  # bottom


class Forklift(Device):
    name = "forklift"
    description = ("forklift: drives to a pallet, lifts it, carries it to a rack, sets it on the "
                   "shelf, backs off")
    params = {
        "pallet_length": ParamRange(1.0, 1.2, "m", "pallet size along the forks"),
        "pallet_width": ParamRange(0.8, 1.0, "m"),
        "load_height": ParamRange(0.4, 0.8, "m", "height of the goods on the pallet"),
        "load_hue": ParamRange(0.0, 1.0, "", "hue of the goods' wrapping"),
        "truck_hue": ParamRange(0.0, 0.35, "", "hue of the truck's paint (red .. yellow .. green)"),
        "shelf_height": ParamRange(0.7, 1.2, "m", "top of the rack's shelf beams"),
        "approach_distance": ParamRange(1.25, 1.8, "m", "home to the pallet"),
        "carry_distance": ParamRange(1.9, 2.6, "m", "pickup spot to the rack"),
        "carry_height": ParamRange(0.15, 0.3, "m", "fork lift while driving with the pallet"),
        "drive_speed": ParamRange(0.8, 1.3, "m/s"),
        "lift_speed": ParamRange(0.25, 0.45, "m/s"),
        "idle_seconds": ParamRange(0.5, 1.5, "s"),
    }

    # ------------------------------------------------------------------ layout

    @property
    def fork_len(self) -> float:
        return self._v("pallet_length") - 0.05

    @property
    def cx_pick(self) -> float:
        return -self._v("pallet_length") / 2 - 0.02

    @property
    def cx_home(self) -> float:
        return self.cx_pick - self._v("approach_distance")

    @property
    def x_rack(self) -> float:
        return self._v("carry_distance")

    @property
    def cx_rack(self) -> float:
        return self.x_rack - self._v("pallet_length") / 2 - 0.02

    def carried_x(self, cx: float) -> float:
        """Pallet centre x when it sits on the forks."""
        return cx + 0.02 + self._v("pallet_length") / 2

    @property
    def rack_height(self) -> float:
        return self._v("shelf_height") + 1.15

    def parts(self) -> dict[str, Part]:
        pl, pw, lh = self._v("pallet_length"), self._v("pallet_width"), self._v("load_height")
        paint = tuple(colorsys.hsv_to_rgb(self._v("truck_hue"), 0.85, 0.92))
        load = tuple(colorsys.hsv_to_rgb(self._v("load_hue"), 0.55, 0.8))
        dark, black, steel = (0.16, 0.16, 0.17), (0.05, 0.05, 0.05), (0.5, 0.52, 0.55)
        wood, blue, orange = (0.62, 0.45, 0.26), (0.12, 0.3, 0.6), (0.95, 0.5, 0.08)
        yellow = (0.92, 0.78, 0.1)
        h, xr, rh = self._v("shelf_height"), self.x_rack, self.rack_height
        fx, bx = xr - pl / 2 + 0.05, xr + pl / 2 - 0.05
        uy = pw / 2 + 0.12
        upright_at = ((fx, -uy), (fx, uy), (bx, -uy), (bx, uy))
        # a diagonal brace on each side frame, from low front to high back
        dz = h - 0.35
        angle = math.atan2(dz, bx - fx)
        length = math.hypot(dz, bx - fx) / pl

        def brace(y: float) -> PartState:
            return PartState((xr, y, 0.25 + dz / 2), rotation=(0.0, -angle, 0.0), scale=(length, 1.0, 1.0))
        p = [
            Part("floor", "box", (16.0, 16.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (16.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete", rest=PartState((0.0, 1.7, 2.0))),
            Part("lane_front", "box", (16.0, 0.08, 0.004), yellow, "paint", rest=PartState((0.0, -0.95, 0.002))),
            Part("lane_back", "box", (16.0, 0.08, 0.004), yellow, "paint", rest=PartState((0.0, 0.95, 0.002))),
            Part("pickup_mark", "box", (pl + 0.16, pw + 0.16, 0.003), (0.85, 0.85, 0.8), "paint",
                 rest=PartState((0.0, 0.0, 0.0015))),
            # the rack: four uprights, shelf beams, top beams, side bracing, stock below
            *[Part(f"upright_{i}", "box", (0.08, 0.08, rh), blue, "paint", rest=PartState((x, y, rh / 2)))
              for i, (x, y) in enumerate(upright_at)],
            Part("beam_front", "box", (0.06, pw + 0.32, 0.1), orange, "paint", rest=PartState((fx, 0.0, h - 0.05))),
            Part("beam_back", "box", (0.06, pw + 0.32, 0.1), orange, "paint", rest=PartState((bx, 0.0, h - 0.05))),
            Part("top_front", "box", (0.06, pw + 0.32, 0.1), orange, "paint", rest=PartState((fx, 0.0, rh - 0.08))),
            Part("top_back", "box", (0.06, pw + 0.32, 0.1), orange, "paint", rest=PartState((bx, 0.0, rh - 0.08))),
            Part("brace_near", "box", (pl, 0.03, 0.04), blue, "paint", rest=brace(-uy)),
            Part("brace_far", "box", (pl, 0.03, 0.04), blue, "paint", rest=brace(uy)),
            Part("stock_pallet", "box", (pl, pw, PALLET_H), wood, "cardboard", rest=PartState((xr, 0.0, PALLET_H / 2))),
            Part("stock_load", "box", (pl - 0.1, pw - 0.1, 0.4), (0.7, 0.6, 0.42), "cardboard",
                 rest=PartState((xr, 0.0, PALLET_H + 0.2))),
            # the work piece
            Part("pallet", "box", (pl, pw, PALLET_H), wood, "cardboard"),
            Part("load", "box", (pl - 0.08, pw - 0.08, lh), load, "plastic"),
            # the truck body
            Part("chassis", "box", (1.6, 0.95, 0.5), paint, "paint"),
            Part("counterweight", "box", (0.4, 1.0, 0.75), dark, "paint"),
            Part("hood", "box", (0.7, 0.85, 0.2), paint, "paint"),
            Part("seat", "box", (0.4, 0.45, 0.1), black, "rubber"),
            Part("seat_back", "box", (0.08, 0.45, 0.45), black, "rubber"),
            Part("driver", "box", (0.3, 0.38, 0.55), (0.15, 0.25, 0.55), "plastic"),
            Part("driver_head", "cylinder", (0.2, 0.2, 0.24), (0.85, 0.65, 0.5), "plastic"),
            Part("cowl", "box", (0.25, 0.8, 0.35), paint, "paint"),
            Part("steering_wheel", "cylinder", (0.32, 0.32, 0.04), black, "rubber"),
            Part("guard_roof", "box", (1.35, 0.95, 0.05), dark, "paint"),
            Part("beacon", "cylinder", (0.1, 0.1, 0.1), orange, "plastic"),
            Part("mast_l", "box", (0.1, 0.08, MAST_H), dark, "steel"),
            Part("mast_r", "box", (0.1, 0.08, MAST_H), dark, "steel"),
            Part("mast_top", "box", (0.1, 0.74, 0.08), dark, "steel"),
            Part("lift_cylinder", "cylinder", (0.09, 0.09, 1.1), dark, "steel"),
            *[Part(w, "cylinder", (0.5 if w[-2] == "f" else 0.42,) * 2 + (0.22,), black, "rubber")
              for w in WHEELS],
            *[Part(h, "cylinder", (0.24, 0.24, 0.23), steel, "steel") for h in HUBS],
            *[Part(s, "box", (0.06, 0.06, 1.4), dark, "paint") for s in POSTS],
            # the lifting parts
            Part("carriage", "box", (0.06, 0.85, 0.4), dark, "steel"),
            Part("backrest_top", "box", (0.03, 0.85, 0.04), dark, "steel"),
            Part("backrest_l", "box", (0.03, 0.04, 0.6), dark, "steel"),
            Part("backrest_m", "box", (0.03, 0.04, 0.6), dark, "steel"),
            Part("backrest_r", "box", (0.03, 0.04, 0.6), dark, "steel"),
            Part("shank_l", "box", (0.045, 0.12, 0.45), steel, "steel"),
            Part("shank_r", "box", (0.045, 0.12, 0.45), steel, "steel"),
            Part("fork_l", "box", (self.fork_len, 0.12, 0.045), steel, "steel"),
            Part("fork_r", "box", (self.fork_len, 0.12, 0.045), steel, "steel"),
            Part("inner_l", "box", (0.08, 0.06, MAST_H), (0.3, 0.3, 0.32), "steel"),
            Part("inner_r", "box", (0.08, 0.06, MAST_H), (0.3, 0.3, 0.32), "steel"),
            Part("inner_top", "box", (0.08, 0.6, 0.07), (0.3, 0.3, 0.32), "steel"),
            Part("lift_rod", "cylinder", (0.05, 0.05, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("chain_l", "box", (0.02, 0.03, 1.0), black, "steel"),
            Part("chain_r", "box", (0.02, 0.03, 1.0), black, "steel"),
        ]
        return {q.name: q for q in p}

    def steps(self) -> list[Step]:
        v, lift = self._v("drive_speed"), self._v("lift_speed")
        h, ch = self._v("shelf_height"), self._v("carry_height")
        return [
            Step("approach", self._v("approach_distance") / v),
            Step("lift", ch / lift),
            Step("carry", self._v("carry_distance") / v),
            Step("raise", (h + CLEAR - ch) / lift),
            Step("lower", (CLEAR + SET_DOWN) / (0.5 * lift)),
            Step("back_off", (self.cx_rack - self.cx_home) / (0.8 * v)),
            Step("idle", self._v("idle_seconds")),
        ]

    # ------------------------------------------------------------------ the program

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        h, ch = self._v("shelf_height"), self._v("carry_height")
        top = FZ0 + h + CLEAR
        if step == "approach":
            cx = self.cx_home + t * (self.cx_pick - self.cx_home)
            return Motion(cx, FZ0, 0.0, 0.0)
        if step == "lift":
            fz = FZ0 + t * ch
            return Motion(self.cx_pick, fz, self.carried_x(self.cx_pick), fz - FZ0)
        if step == "carry":
            cx = self.cx_pick + t * (self.cx_rack - self.cx_pick)
            fz = FZ0 + ch
            return Motion(cx, fz, self.carried_x(cx), fz - FZ0)
        if step == "raise":
            fz = FZ0 + ch + t * (top - FZ0 - ch)
            return Motion(self.cx_rack, fz, self.x_rack, fz - FZ0)
        if step == "lower":
            fz = top - t * (CLEAR + SET_DOWN)
            return Motion(self.cx_rack, fz, self.x_rack, max(fz - FZ0, h))
        if step == "back_off":
            d = t * (self.cx_rack - self.cx_home)
            out = self.fork_len + 0.15  # forks clear of the rack: they may come down
            high = FZ0 + h - SET_DOWN
            fz = high if d < out else high - (high - FZ0) * (d - out) / (
                self.cx_rack - self.cx_home - out)
            return Motion(self.cx_rack - d, fz, self.x_rack, h)
        return Motion(self.cx_home, FZ0, self.x_rack, h)  # idle

    def _truck(self, cx: float, fz: float) -> Pose:
        """Every part of the truck with the carriage face at x = cx and the forks at height fz."""
        lift = fz - FZ0
        inner_rise = lift / 2
        inner_top = 0.1 + MAST_H + inner_rise
        mx = cx - 0.12
        s = {
            "chassis": PartState((cx - 1.05, 0.0, 0.4)),
            "counterweight": PartState((cx - 1.75, 0.0, 0.525)),
            "hood": PartState((cx - 1.3, 0.0, 0.75)),
            "seat": PartState((cx - 1.05, 0.0, 0.9)),
            "seat_back": PartState((cx - 1.28, 0.0, 1.15)),
            "driver": PartState((cx - 1.08, 0.0, 1.22)),
            "driver_head": PartState((cx - 1.05, 0.0, 1.63)),
            "cowl": PartState((cx - 0.45, 0.0, 0.82)),
            "steering_wheel": PartState((cx - 0.68, 0.0, 1.08), rotation=(0.0, -0.7, 0.0)),
            "guard_roof": PartState((cx - 0.975, 0.0, 2.07)),
            "beacon": PartState((cx - 1.5, 0.0, 2.15)),
            "mast_l": PartState((mx, -0.33, 0.05 + MAST_H / 2)),
            "mast_r": PartState((mx, 0.33, 0.05 + MAST_H / 2)),
            "mast_top": PartState((mx, 0.0, 0.05 + MAST_H)),
            "lift_cylinder": PartState((cx - 0.2, 0.0, 0.15 + 0.55)),
            "carriage": PartState((cx - 0.03, 0.0, fz + 0.2)),
            "backrest_top": PartState((cx - 0.03, 0.0, fz + 1.0)),
            "backrest_l": PartState((cx - 0.03, -0.4, fz + 0.7)),
            "backrest_m": PartState((cx - 0.03, 0.0, fz + 0.7)),
            "backrest_r": PartState((cx - 0.03, 0.4, fz + 0.7)),
            "inner_l": PartState((mx, -0.26, 0.1 + MAST_H / 2 + inner_rise)),
            "inner_r": PartState((mx, 0.26, 0.1 + MAST_H / 2 + inner_rise)),
            "inner_top": PartState((mx, 0.0, inner_top)),
        }
        rod = inner_top - 1.25
        s["lift_rod"] = PartState((cx - 0.2, 0.0, 1.25 + rod / 2), scale=(1.0, 1.0, rod))
        chain = inner_top - (fz + 0.4)
        for name, y in (("chain_l", -0.15), ("chain_r", 0.15)):
            s[name] = PartState((cx - 0.07, y, fz + 0.4 + chain / 2), scale=(1.0, 1.0, chain))
        spread = 0.28
        for name, y in (("fork_l", -spread), ("fork_r", spread)):
            s[name] = PartState((cx + self.fork_len / 2, y, fz))
        for name, y in (("shank_l", -spread), ("shank_r", spread)):
            s[name] = PartState((cx + 0.0225, y, fz + 0.2))
        for name, x, y in (("fl", cx - 0.45, -0.42), ("fr", cx - 0.45, 0.42),
                           ("rl", cx - 1.55, -0.42), ("rr", cx - 1.55, 0.42)):
            z = 0.25 if name[0] == "f" else 0.21
            s[f"wheel_{name}"] = PartState((x, y, z), rotation=(math.pi / 2, 0.0, 0.0))
            s[f"hub_{name}"] = PartState((x, y, z), rotation=(math.pi / 2, 0.0, 0.0))
        for name, x, y in (("fl", cx - 0.33, -0.44), ("fr", cx - 0.33, 0.44),
                           ("rl", cx - 1.62, -0.44), ("rr", cx - 1.62, 0.44)):
            s[f"post_{name}"] = PartState((x, y, 1.35))
        return s

    def _pallet(self, x: float, bottom: float, y: float = 0.0) -> Pose:
        lh = self._v("load_height")
        return {"pallet": PartState((x, y, bottom + PALLET_H / 2)),
                "load": PartState((x, y, bottom + PALLET_H + lh / 2))}

    def build(self, m: Motion) -> Pose:
        return {**self._truck(m.cx, m.fork_z), **self._pallet(m.pallet_x, m.pallet_z)}

    def truck_at(self, pose: Pose) -> tuple[float, float]:
        """(cx, fork_z) of the truck in a pose."""
        return pose["carriage"].location[0] + 0.03, pose["fork_l"].location[2]

    def carrying(self, pose: Pose) -> bool:
        cx, fz = self.truck_at(pose)
        px, _, pz = pose["pallet"].location
        return abs(px - self.carried_x(cx)) < 1e-6 and abs(pz - PALLET_H / 2 - (fz - FZ0)) < 1e-6

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        pl, pw = self._v("pallet_length"), self._v("pallet_width")
        lo = np.array([self.cx_home - 1.95, -1.0, 0.0])
        hi = np.array([self.x_rack + pl / 2 + 0.1, pw / 2 + 0.2, max(2.3, self.rack_height)])
        return lo, hi


# ---------------------------------------------------------------------- device-specific kinds


def _update(pose: Pose, new: Pose) -> Pose:
    pose.update(new)
    return pose


class ForksTooHigh(AnomalyKind):
    """While carrying, the driver raises the forks far above the carry height (and lowers them
    again before the rack): the pallet travels high, the truck top-heavy."""

    def plan(self, device, schedule, cycle, rng):
        extra = rng.uniform(0.55, 0.85)
        ramp = 0.5

        def apply(pose, frame, phase):
            cx, fz = device.truck_at(pose)
            k = np.clip(min(cx - device.cx_pick, device.cx_rack - cx) / ramp, 0.0, 1.0)
            fz2 = fz + extra * float(k)
            return _update(pose, {**device._truck(cx, fz2),
                                  **device._pallet(device.carried_x(cx), fz2 - FZ0)})
        return self._state_edit(schedule, cycle, apply, "carry", "carry")


class LoadNotLifted(AnomalyKind):
    """The forks rise but the pallet stays at the pickup spot; the truck does its trip empty."""

    def plan(self, device, schedule, cycle, rng):
        return self._state_edit(
            schedule, cycle, lambda pose, frame, phase: _update(pose, device._pallet(0.0, 0.0)),
            "lift")


class DropsLoad(AnomalyKind):
    """On the way to the rack the goods topple off the pallet onto the floor beside the truck;
    the truck goes on and shelves the empty pallet."""

    def plan(self, device, schedule, cycle, rng):
        cx_drop = device.cx_pick + rng.uniform(0.25, 0.5) * (device.cx_rack - device.cx_pick)
        fall = 0.45  # truck travel while the goods fall
        lh, lw = device._v("load_height"), device._v("pallet_width") - 0.08
        ch = device._v("carry_height")
        x0 = device.carried_x(cx_drop)
        start = np.array([x0, 0.0, ch + PALLET_H + lh / 2])
        end = np.array([x0 + 0.1, -(0.65 + lh / 2), lw / 2])

        def apply(pose, frame, phase):
            cx, _ = device.truck_at(pose)
            if device.carrying(pose) and pose["pallet"].location[0] < device.x_rack - 1e-6:
                t = float(np.clip((cx - cx_drop) / fall, 0.0, 1.0))
                if t == 0.0:
                    return pose
            else:
                t = 1.0
            loc = start + t * (end - start)
            pose["load"] = PartState(tuple(float(a) for a in loc),
                                     rotation=(t * math.pi / 2, 0.0, t * 0.3))
            return pose
        return self._state_edit(schedule, cycle, apply, "carry")


class StopsShort(AnomalyKind):
    """The truck stops short of the rack and sets the pallet down half on the front beam, sticking
    out of the rack."""

    def plan(self, device, schedule, cycle, rng):
        short = rng.uniform(0.25, 0.4)
        stop = device.cx_rack - short
        span = device.cx_rack - device.cx_home

        def apply(pose, frame, phase):
            cx, fz = device.truck_at(pose)
            px, _, pz = pose["pallet"].location
            carried = device.carrying(pose) or (abs(px - device.x_rack) < 1e-6
                                                and abs(cx - device.cx_rack) < 1e-6)
            if carried:  # driving forward, raising or lowering at the rack
                cx2 = min(cx, stop)
                pallet = device._pallet(device.carried_x(cx2), pz - PALLET_H / 2)
            else:  # backing off: the offset fades out on the way home
                cx2 = cx - short * (cx - device.cx_home) / span
                pallet = device._pallet(px - short, pz - PALLET_H / 2)
            return _update(pose, {**device._truck(cx2, fz), **pallet})
        return self._state_edit(schedule, cycle, apply, "carry")


Forklift.anomalies = {k.name: k for k in (
    ColorChange("load_color", "appearance", "the goods on the pallet have another colour",
                ("load",)),
    ShapeChange("load_shape", "appearance", "the goods on the pallet are taller and wider",
                ("load",)),
    Missing("missing_guard", "appearance", "the overhead guard's roof is missing",
            ("guard_roof",)),
    Shift("load_shift", "position", "the goods sit off-centre on the pallet", ("load",), axis=1),
    Tilt("pallet_askew", "position", "the pallet waits askew at the pickup spot",
         ("pallet", "load"), steps=("approach",)),
    ForksTooHigh("forks_too_high", "position", "the truck drives with its forks raised far too "
                 "high", LIFT + ("pallet", "load")),
    Stall("stall", "motion", "the truck stops on its way to the rack, then goes on", MOVING,
          step="carry"),
    SpeedChange("fast_carry", "motion", "the truck races to the rack", MOVING, step="carry"),
    SpeedChange("fast_raise", "motion", "the mast raises the pallet too fast", MOVING,
                step="raise"),
    Jerk("jerk", "motion", "the forks and the pallet shake while driving",
         LIFT + ("pallet", "load"), step="carry"),
    Reverse("reverse", "motion", "the truck rolls back on its way to the rack, then goes on",
            MOVING, step="carry"),
    LoadNotLifted("load_not_lifted", "logic", "the forks rise but the pallet stays on the floor",
                  ("pallet", "load")),
    DropsLoad("drops_load", "logic", "the goods fall off the pallet on the way to the rack",
              ("load",)),
    StopsShort("stops_short", "logic", "the truck stops short and leaves the pallet sticking out "
               "of the rack", MOVING),
    Missing("empty_trip", "logic", "the truck makes its trip with no pallet to fetch",
            ("pallet", "load")),
)}
