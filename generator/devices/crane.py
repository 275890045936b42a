"""Crane: an overhead gantry (bridge) crane moves a load from a pickup spot to a set-down spot.

Cycle: the hook comes down to the load, a sling is hooked on, the hoist lifts the load, the bridge
travels along its runway (the trolley shifting across the bridge on the way), the load is lowered
onto the set-down spot, the sling is taken off, the hook goes up, the bridge travels back, a short
idle; the next load is then waiting at the pickup spot. x runs along the runway, y across the
bridge, z is up, the camera looks from -y.

`rig(x, y, hook_z, load)` builds every moving part from the bridge's x, the trolley's y and the
hook's height; device-specific anomalies read those back from a pose and rebuild.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, CutStep, Jerk, Missing, ShapeChange, SpeedChange, Stall, Tilt
from ipadgen.devices.motion import rotate
from ipadgen.params import ParamRange
from ipadgen.program import ClockEdit, Device, Part, PartState, Pose, StateEdit, Step

SKID = 0.1  # load bottom when it rests on its skids
SLING_H = 0.45  # from the hook's point down to the load's top
BLOCK_H = 0.3
BRIDGE = ("girder_a", "girder_b", "end_near", "end_far", "trolley", "hoist_motor", "drum",
          "beacon")
HANGING = ("cable", "block", "hook", "sling_a", "sling_b")
MOVING = BRIDGE + HANGING + ("load",)
COLUMNS = 2


@dataclass(frozen=True)
class Motion:
    x: float  # bridge
    y: float  # trolley
    hook_z: float
    load_at: str  # "a" | "b" | "hook"
    slings: bool  # the slings hooked on


class Crane(Device):
    name = "crane"
    description = "overhead gantry crane: hooks a load, hoists, travels, sets it down, returns"
    params = {
        "load_length": ParamRange(0.7, 1.1, "m"),
        "load_width": ParamRange(0.5, 0.8, "m"),
        "load_height": ParamRange(0.4, 0.7, "m"),
        "load_hue": ParamRange(0.0, 1.0, ""),
        "crane_hue": ParamRange(0.08, 0.16, "", "hue of the bridge paint (orange .. yellow)"),
        "runway_height": ParamRange(2.9, 3.4, "m", "top of the runway beams"),
        "span": ParamRange(2.4, 3.0, "m", "distance between the runways"),
        "travel_distance": ParamRange(2.2, 3.2, "m", "pickup spot to set-down spot"),
        "trolley_shift": ParamRange(0.2, 0.6, "m", "trolley move across the bridge"),
        "lift": ParamRange(0.7, 1.1, "m", "how high the load is hoisted"),
        "hoist_speed": ParamRange(0.35, 0.5, "m/s"),
        "bridge_speed": ParamRange(0.6, 0.9, "m/s"),
        "hook_seconds": ParamRange(0.8, 1.5, "s", "hooking on / taking off the sling"),
        "idle_seconds": ParamRange(0.3, 1.0, "s"),
    }

    # ------------------------------------------------------------------ layout

    @property
    def xa(self) -> float:
        return 0.0

    @property
    def xb(self) -> float:
        return self._v("travel_distance")

    @property
    def ya(self) -> float:
        return -self._v("trolley_shift") / 2

    @property
    def yb(self) -> float:
        return self._v("trolley_shift") / 2

    @property
    def z_grab(self) -> float:
        """Hook point height when the hook is at a resting load."""
        return SKID + self._v("load_height") + SLING_H

    @property
    def z_travel(self) -> float:
        return self.z_grab + self._v("lift")

    @property
    def pivot_z(self) -> float:
        """Where the cable leaves the trolley."""
        return self._v("runway_height") + 0.47

    @property
    def x_lo(self) -> float:
        return self.xa - self._v("load_length") / 2 - 0.7

    @property
    def x_hi(self) -> float:
        return self.xb + self._v("load_length") / 2 + 0.7

    def parts(self) -> dict[str, Part]:
        ll, lw, lh = self._v("load_length"), self._v("load_width"), self._v("load_height")
        span, hr = self._v("span"), self._v("runway_height")
        paint = tuple(colorsys.hsv_to_rgb(self._v("crane_hue"), 0.85, 0.95))
        load = tuple(colorsys.hsv_to_rgb(self._v("load_hue"), 0.6, 0.7))
        dark, grey, black = (0.17, 0.17, 0.18), (0.42, 0.44, 0.47), (0.05, 0.05, 0.05)
        runway = self.x_hi - self.x_lo + 0.4
        mid = (self.x_lo + self.x_hi) / 2
        skid, wood = (0.12, lw + 0.2, SKID), (0.6, 0.45, 0.27)
        p = [
            Part("floor", "box", (16.0, 16.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (16.0, 0.1, 5.0), (0.72, 0.71, 0.68), "concrete",
                 rest=PartState((0.0, span / 2 + 0.9, 2.5))),
            Part("runway_near", "box", (runway, 0.2, 0.3), grey, "steel", rest=PartState((mid, -span / 2, hr - 0.15))),
            Part("runway_far", "box", (runway, 0.2, 0.3), grey, "steel", rest=PartState((mid, span / 2, hr - 0.15))),
            *[Part(f"column_{side}_{i}", "box", (0.22, 0.22, hr - 0.3), grey, "steel",
                   rest=PartState((float(x), y, (hr - 0.3) / 2)))
              for side, y in (("near", -span / 2), ("far", span / 2))
              for i, x in enumerate(np.linspace(self.x_lo, self.x_hi, COLUMNS))],
            Part("girder_a", "box", (0.16, span + 0.3, 0.35), paint, "paint"),
            Part("girder_b", "box", (0.16, span + 0.3, 0.35), paint, "paint"),
            Part("end_near", "box", (0.9, 0.25, 0.3), paint, "paint"),
            Part("end_far", "box", (0.9, 0.25, 0.3), paint, "paint"),
            Part("trolley", "box", (0.75, 0.55, 0.28), dark, "paint"),
            Part("hoist_motor", "box", (0.3, 0.25, 0.25), (0.2, 0.4, 0.25), "paint"),
            Part("drum", "cylinder", (0.26, 0.26, 0.45), grey, "steel"),
            Part("beacon", "cylinder", (0.1, 0.1, 0.1), (0.95, 0.45, 0.05), "plastic"),
            Part("cable", "box", (0.04, 0.04, 1.0), black, "steel"),
            Part("block", "box", (0.26, 0.14, BLOCK_H), paint, "paint"),
            Part("hook", "box", (0.06, 0.06, 0.14), dark, "steel"),
            Part("sling_a", "box", (0.06, 0.1, 1.0), (0.15, 0.35, 0.85), "plastic"),
            Part("sling_b", "box", (0.06, 0.1, 1.0), (0.15, 0.35, 0.85), "plastic"),
            Part("load", "box", (ll, lw, lh), load, "steel"),
            Part("skid_a1", "box", skid, wood, "cardboard", rest=PartState((self.xa - 0.3 * ll, self.ya, SKID / 2))),
            Part("skid_a2", "box", skid, wood, "cardboard", rest=PartState((self.xa + 0.3 * ll, self.ya, SKID / 2))),
            Part("skid_b1", "box", skid, wood, "cardboard", rest=PartState((self.xb - 0.3 * ll, self.yb, SKID / 2))),
            Part("skid_b2", "box", skid, wood, "cardboard", rest=PartState((self.xb + 0.3 * ll, self.yb, SKID / 2))),
            Part("mark_b", "box", (ll + 0.3, lw + 0.3, 0.003), (0.92, 0.78, 0.1), "paint",
                 rest=PartState((self.xb, self.yb, 0.0015))),
            Part("walkway_line", "box", (16.0, 0.08, 0.004), (0.92, 0.78, 0.1), "paint",
                 rest=PartState((0.0, -span / 2 - 0.35, 0.002))),
        ]
        return {q.name: q for q in p}

    def steps(self) -> list[Step]:
        lift, hs = self._v("lift"), self._v("hoist_speed")
        travel = math.hypot(self.xb - self.xa, self.yb - self.ya) / self._v("bridge_speed")
        hook = self._v("hook_seconds")
        return [Step("lower_empty", lift / hs), Step("hook", hook), Step("hoist", lift / hs),
                Step("travel", travel), Step("lower", lift / hs), Step("release", hook),
                Step("raise_empty", lift / hs), Step("return", travel),
                Step("idle", self._v("idle_seconds"))]

    # ------------------------------------------------------------------ the program

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        za, zt = self.z_grab, self.z_travel
        if step == "lower_empty":
            return Motion(self.xa, self.ya, zt - t * (zt - za), "a", False)
        if step == "hook":
            return Motion(self.xa, self.ya, za, "a", t >= 0.5)
        if step == "hoist":
            return Motion(self.xa, self.ya, za + t * (zt - za), "hook", True)
        if step == "travel":
            return Motion(self.xa + t * (self.xb - self.xa), self.ya + t * (self.yb - self.ya), zt, "hook", True)
        if step == "lower":
            return Motion(self.xb, self.yb, zt - t * (zt - za), "hook", True)
        if step == "release":
            return Motion(self.xb, self.yb, za, "b", t < 0.5)
        if step == "raise_empty":
            return Motion(self.xb, self.yb, za + t * (zt - za), "b", False)
        if step == "return":
            return Motion(self.xb + t * (self.xa - self.xb), self.yb + t * (self.ya - self.yb), zt, "b", False)
        return Motion(self.xa, self.ya, zt, "b", False)  # idle

    def rig(self, x: float, y: float, hz: float, load_at: str, slings: bool) -> Pose:
        """Bridge, trolley, hook, slings and load for bridge x, trolley y and hook point z."""
        span, hr = self._v("span"), self._v("runway_height")
        lh, ll = self._v("load_height"), self._v("load_length")
        gz = hr + 0.3
        s = {
            "girder_a": PartState((x - 0.28, 0.0, gz)),
            "girder_b": PartState((x + 0.28, 0.0, gz)),
            "end_near": PartState((x, -span / 2, hr + 0.15)),
            "end_far": PartState((x, span / 2, hr + 0.15)),
            "trolley": PartState((x, y, hr + 0.615)),
            "hoist_motor": PartState((x + 0.5, y, hr + 0.6)),
            "drum": PartState((x, y, hr + 0.9), rotation=(math.pi / 2, 0.0, 0.0)),
            "beacon": PartState((x - 0.3, y, hr + 0.8)),
        }
        top = hz + 0.1 + BLOCK_H  # top of the hook block
        cable = self.pivot_z - top
        s["cable"] = PartState((x, y, top + cable / 2), scale=(1.0, 1.0, cable))
        s["block"] = PartState((x, y, hz + 0.1 + BLOCK_H / 2))
        s["hook"] = PartState((x, y, hz + 0.07))
        load_top = hz - SLING_H
        for name, sign in (("sling_a", -1.0), ("sling_b", 1.0)):
            dx, dz = sign * 0.4 * ll, SLING_H
            length = math.hypot(dx, dz)
            s[name] = PartState((x + dx / 2, y, load_top + dz / 2),
                                rotation=(0.0, math.atan2(-dx, dz), 0.0),
                                scale=(1.0, 1.0, length), visible=slings)
        if load_at == "hook":
            s["load"] = PartState((x, y, load_top - lh / 2))
        elif load_at == "a":
            s["load"] = PartState((self.xa, self.ya, SKID + lh / 2))
        else:
            s["load"] = PartState((self.xb, self.yb, SKID + lh / 2))
        return s

    def build(self, m: Motion) -> Pose:
        return self.rig(m.x, m.y, m.hook_z, m.load_at, m.slings)

    def hook_point(self, pose: Pose) -> tuple[float, float, float]:
        """(bridge x, trolley y, hook z) of a pose."""
        x, y, _ = pose["trolley"].location
        return x, y, pose["hook"].location[2] - 0.07

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        span = self._v("span")
        return (np.array([self.x_lo, -span / 2 - 0.2, 0.0]),
                np.array([self.x_hi, span / 2 + 0.2, self._v("runway_height") + 1.0]))


# ---------------------------------------------------------------------- device-specific kinds


def _loaded(device: Crane, pose: Pose) -> tuple[str, bool]:
    """Where the load is in a pose, and whether the slings are on."""
    x, y, hz = device.hook_point(pose)
    lx, ly, lz = pose["load"].location
    on_hook = abs(lz - (hz - SLING_H - device._v("load_height") / 2)) < 1e-9 and \
        abs(lx - x) < 1e-9 and abs(ly - y) < 1e-9
    if on_hook:
        return "hook", pose["sling_a"].visible
    return ("a" if abs(lx - device.xa) < 1e-9 and abs(ly - device.ya) < 1e-9 else "b",
            pose["sling_a"].visible)


@dataclass(frozen=True)
class Swing(AnomalyKind):
    """The load swings on its cable while the bridge travels (about the trolley, along x)."""

    def plan(self, device, schedule, cycle, rng):
        amp = rng.uniform(0.18, 0.3)
        waves = int(rng.integers(2, 4))
        sign = rng.choice([-1.0, 1.0])

        def apply(pose, frame, phase):
            x, y, hz = device.hook_point(pose)
            p = (x - device.xa) / (device.xb - device.xa)
            theta = sign * amp * math.sin(math.pi * p) * (0.6 + 0.4 * math.sin(2 * math.pi * waves * p))
            phi = -theta
            pz = device.pivot_z
            for name in HANGING + ("load",):
                st = pose[name]
                dx, dz = st.location[0] - x, st.location[2] - pz
                nx, _, nz = rotate((dx, 0.0, dz), 1, phi)
                rx, ry, rz = st.rotation
                pose[name] = st.moved(location=(x + nx, st.location[1], pz + nz),
                                      rotation=(rx, ry + phi, rz))
            return pose
        return self._state_edit(schedule, cycle, apply, "travel", "travel")


@dataclass(frozen=True)
class WrongSpot(AnomalyKind):
    """The bridge stops short of (or runs past) the set-down spot: the hook comes down and the
    load is set down off its mark."""

    def plan(self, device, schedule, cycle, rng):
        off = rng.uniform(0.45, 0.7) * rng.choice([-1.0, 1.0])
        xa, xb = device.xa, device.xb

        def remap(x):
            return xa + (x - xa) * (xb + off - xa) / (xb - xa)

        def apply(pose, frame, phase):
            x, y, hz = device.hook_point(pose)
            where, slings = _loaded(device, pose)
            rig = device.rig(remap(x), y, hz, where, slings)
            if where == "a":
                rig["load"] = pose["load"]
            elif where == "b":
                lx, ly, lz = pose["load"].location
                rig["load"] = pose["load"].moved(location=(remap(lx), ly, lz))
            pose.update(rig)
            return pose
        return self._state_edit(schedule, cycle, apply, "travel")


@dataclass(frozen=True)
class NotHooked(AnomalyKind):
    """The sling is never hooked on: the crane hoists its empty hook and makes its trip while the
    load stays at the pickup spot."""

    def plan(self, device, schedule, cycle, rng):

        def apply(pose, frame, phase):
            x, y, hz = device.hook_point(pose)
            pose.update(device.rig(x, y, hz, "a", False))
            return pose
        return self._state_edit(schedule, cycle, apply, "hook")


@dataclass(frozen=True)
class DragsLoad(AnomalyKind):
    """Steps in the wrong order: the bridge travels before the load is hoisted, dragging it
    across the floor, and hoists at the set-down spot."""

    def plan(self, device, schedule, cycle, rng):
        a0, a1 = schedule.step_span(cycle, "hoist")
        b0, b1 = schedule.step_span(cycle, "travel")
        seq = tuple(float(u) for u in [*range(b0, b1), *range(a0, a1)])
        za, zt, lh = device.z_grab, device.z_travel, device._v("load_height")

        def apply(pose, frame, phase):
            x, y, hz = device.hook_point(pose)
            if abs(hz - zt) < 1e-9:  # a travel pose: at the load's height instead
                rig = device.rig(x, y, za, "hook", True)
                lx, ly, _ = rig["load"].location
                rig["load"] = rig["load"].moved(location=(lx, ly, SKID + lh / 2))
            else:  # a hoist pose: at the set-down spot instead
                rig = device.rig(device.xb, device.yb, hz, "hook", True)
            pose.update(rig)
            return pose
        return self._event(cycle, clock=ClockEdit(a0, seq, b1), state=StateEdit(a0, b1, apply))


Crane.anomalies = {k.name: k for k in (
    ColorChange("load_color", "appearance", "the load has another colour", ("load",)),
    ShapeChange("load_shape", "appearance", "the load is bigger than the others", ("load",),
                factor=(1.25, 1.45)),
    Missing("missing_sling", "appearance", "the load hangs on one sling leg only", ("sling_b",),
            steps=("hoist", "travel", "lower")),
    Tilt("load_askew", "position", "the load lies askew", ("load",)),
    WrongSpot("wrong_spot", "position", "the hook comes down at the wrong spot: the load is set "
              "down off its mark", MOVING),
    Swing("swing", "motion", "the load swings on its cable while the bridge travels",
          HANGING + ("load",)),
    Stall("stall", "motion", "the bridge stops on its way, then goes on", MOVING, step="travel"),
    SpeedChange("fast_travel", "motion", "the bridge races to the set-down spot", MOVING,
                step="travel"),
    Jerk("jerk", "motion", "the hoist judders while lifting", HANGING + ("load",), step="hoist"),
    NotHooked("not_hooked", "logic", "the sling is not hooked on: the crane leaves without the "
              "load", HANGING + ("load",)),
    DragsLoad("drags_load", "logic", "wrong order: the bridge travels before hoisting and drags "
              "the load", MOVING),
    CutStep("skip_hook", "logic", "the hoist lifts before the sling is hooked on (hook step "
            "cut short)", HANGING + ("load",), step="hook", next_step="hoist", keep=(0.0, 0.3)),
)}
