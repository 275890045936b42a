"""Conveyor: an indexing belt conveyor carrying boxes past a label stamp.

Boxes come out of an infeed tunnel on the left, the belt advances them one pitch per cycle, a
pneumatic stamp on a gantry over the middle station presses a label onto the box below it, and the
boxes disappear into an outfeed tunnel on the right. Cycle: advance (belt moves one pitch), dwell
(the box settles), stamp_down, stamp_up, idle. x runs along the belt, z is up, the camera looks
from -y.

Boxes are parts box_0 .. box_3; box_i travels from station i to station i + 1 in one cycle, so
the pose at the end of a cycle equals the pose at its start with every box one name further on.
Stations 0 and 4 lie inside the tunnels, where a box is hidden (visible=False once less than a
quarter of it sticks out). The belt's marks (cleats) wrap round inside the tunnels too.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ipadgen.anomalies import AnomalyKind, ColorChange, CutStep, Jerk, Missing, Reverse, Shift, SpeedChange, Stall, Tilt
from ipadgen.devices.motion import rotate
from ipadgen.params import ParamRange
from ipadgen.program import Device, Part, PartState, Pose, StateEdit, Step

N_BOXES = 4  # boxes on the belt; stations 0 .. N_BOXES, the stamp over station STAMP
STAMP = 2
N_CLEATS = 2 * N_BOXES  # belt marks, half a pitch apart
LABEL_THICK = 0.008
LABEL_SIZE = 0.6  # label length and width, as a fraction of the box's
STROKE = 0.2  # stamp travel
HOOD_CLEAR = 0.25  # tunnel length beyond the box length
VISIBLE_OUT = 0.25  # a box shows while at least this fraction of its length is out of a tunnel
BOXES = tuple(f"box_{i}" for i in range(N_BOXES))
LABELS = tuple(f"label_{i}" for i in range(1, N_BOXES))  # box_0 has not been stamped yet
CLEATS = tuple(f"cleat_{j}" for j in range(N_CLEATS))
LEGS = tuple(f"leg_{i}" for i in range(8))


@dataclass(frozen=True)
class Motion:
    belt: float  # belt travel in pitches, 0 .. 1
    stamp: float  # stamp head lowered, 0 .. 1 of its stroke
    labelled: bool  # the box under the stamp has its label
CARRIED = BOXES + LABELS
MOVING = CARRIED + CLEATS



class Conveyor(Device):
    name = "conveyor"
    description = "indexing belt conveyor: boxes advance one pitch, a stamp labels the middle one"
    params = {
        "pitch": ParamRange(0.7, 0.95, "m", "distance between boxes on the belt"),
        "belt_width": ParamRange(0.5, 0.7, "m"),
        "belt_height": ParamRange(0.7, 0.9, "m", "height of the belt top above the floor"),
        "box_length": ParamRange(0.3, 0.45, "m"),
        "box_width": ParamRange(0.25, 0.4, "m"),
        "box_height": ParamRange(0.2, 0.35, "m"),
        "box_hue": ParamRange(0.0, 1.0, "", "hue of the boxes"),
        "frame_hue": ParamRange(0.0, 1.0, "", "hue of the conveyor frame's paint"),
        "belt_speed": ParamRange(0.12, 0.25, "m/s"),
        "dwell_seconds": ParamRange(0.8, 1.5, "s", "pause after the belt stops"),
        "stamp_speed": ParamRange(0.2, 0.4, "m/s"),
        "idle_seconds": ParamRange(0.8, 2.5, "s", "pause before the next advance"),
    }

    # ------------------------------------------------------------------ geometry helpers

    @property
    def _x0(self) -> float:
        """x of station 0 (inside the infeed tunnel); the stamp station sits at x = 0."""
        return -STAMP * self._v("pitch")

    @property
    def _hood_length(self) -> float:
        return self._v("box_length") + HOOD_CLEAR

    @property
    def _hood_width(self) -> float:
        return self._v("belt_width") + 0.6  # wide enough for a box lying on its side

    @property
    def _hood_height(self) -> float:
        return max(self._v("box_height"), self._v("box_width")) + 0.3

    def station_x(self, s: float) -> float:
        return self._x0 + s * self._v("pitch")

    def box_visible(self, x: float, length: float | None = None, out: float = VISIBLE_OUT) -> bool:
        """Whether a thing of `length` (a box) centred at x sticks out of both tunnels by at
        least the fraction `out` of its length."""
        bl, hl = length or self._v("box_length"), self._hood_length
        out_in = (x + bl / 2) - (self.station_x(0) + hl / 2)
        out_out = (self.station_x(N_BOXES) - hl / 2) - (x - bl / 2)
        return min(out_in, out_out) >= out * bl

    def _stamp_rest(self) -> float:
        """z of the stamp head's bottom when up."""
        return self._v("belt_height") + self._v("box_height") + LABEL_THICK + STROKE

    def _gantry_top(self) -> float:
        return self._stamp_rest() + 0.45

    def box_state(self, x: float, y: float = 0.0, tip: float = 0.0, scale: float = 1.0,
                  dz: float = 0.0) -> tuple[PartState, PartState]:
        """A box (and its label on top) centred at x, tipped by `tip` radians about its front
        bottom edge (towards the camera), scaled by `scale`."""
        bw, bh = self._v("box_width") * scale, self._v("box_height") * scale
        belt = self._v("belt_height")
        pivot = (x, y - bw / 2, belt + dz)
        c = rotate((0.0, bw / 2, bh / 2), 0, -tip)
        lab = rotate((0.0, bw / 2, bh + LABEL_THICK / 2), 0, -tip)
        vis = self.box_visible(x)
        # the label shows while at least half of it is out of the tunnel
        lab_vis = vis and self.box_visible(x, LABEL_SIZE * self._v("box_length") * scale, 0.5)
        sc = (scale, scale, scale)
        box = PartState((pivot[0], pivot[1] + c[1], pivot[2] + c[2]), (-tip, 0.0, 0.0), sc,
                        visible=vis)
        label = PartState((pivot[0], pivot[1] + lab[1], pivot[2] + lab[2]), (-tip, 0.0, 0.0), sc,
                          visible=lab_vis)
        return box, label

    # ------------------------------------------------------------------ the device

    def parts(self) -> dict[str, Part]:
        p, wb = self._v("pitch"), self._v("belt_width")
        bl, bw, bh = self._v("box_length"), self._v("box_width"), self._v("box_height")
        hb = self._v("belt_height")
        frame = colorsys.hsv_to_rgb(self._v("frame_hue"), 0.55, 0.55)
        box = colorsys.hsv_to_rgb(self._v("box_hue"), 0.6, 0.78)
        belt_len = N_BOXES * p + self._hood_length + 0.3
        hood = (self._hood_length + 0.1, self._hood_width, self._hood_height)
        curtain = (0.02, wb + 0.35, self._hood_height - 0.15)
        hl = self._hood_length
        xc = self.station_x(N_BOXES / 2)
        side = wb / 2 + 0.025
        top = self._gantry_top()
        hood_z = hb - 0.12 + self._hood_height / 2
        x_in, x_out = self.station_x(0), self.station_x(N_BOXES)
        leg_at = [(float(lx), ly) for lx in np.linspace(xc - belt_len / 2 + 0.15, xc + belt_len / 2 - 0.15, 4)
                  for ly in (-side, side)]
        parts = [
            Part("floor", "box", (14.0, 14.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("wall", "box", (14.0, 0.1, 4.0), (0.72, 0.71, 0.68), "concrete",
                 rest=PartState((0.0, self._hood_width / 2 + 1.3, 2.0))),
            Part("belt", "box", (belt_len, wb, 0.03), (0.1, 0.1, 0.11), "rubber",
                 rest=PartState((xc, 0.0, hb - 0.015))),
            Part("frame_front", "box", (belt_len + 0.1, 0.05, 0.16), frame, "paint",
                 rest=PartState((xc, -side, hb - 0.06))),
            Part("frame_back", "box", (belt_len + 0.1, 0.05, 0.16), frame, "paint",
                 rest=PartState((xc, side, hb - 0.06))),
            Part("rail_front", "box", (belt_len - 0.2, 0.04, 0.04), frame, "paint",
                 rest=PartState((xc, -side - 0.01, hb + 0.01))),
            Part("rail_back", "box", (belt_len - 0.2, 0.04, 0.04), frame, "paint",
                 rest=PartState((xc, side + 0.01, hb + 0.01))),
            Part("roller_head", "cylinder", (0.13, 0.13, wb + 0.04), (0.7, 0.7, 0.72), "steel",
                 rest=PartState((xc + belt_len / 2 - 0.06, 0.0, hb - 0.065), (math.pi / 2, 0, 0))),
            Part("roller_tail", "cylinder", (0.13, 0.13, wb + 0.04), (0.7, 0.7, 0.72), "steel",
                 rest=PartState((xc - belt_len / 2 + 0.06, 0.0, hb - 0.065), (math.pi / 2, 0, 0))),
            Part("hood_in", "box", hood, (0.78, 0.8, 0.82), "paint", rest=PartState((x_in - 0.05, 0.0, hood_z))),
            Part("hood_out", "box", hood, (0.78, 0.8, 0.82), "paint", rest=PartState((x_out + 0.05, 0.0, hood_z))),
            Part("curtain_in", "box", curtain, (0.08, 0.08, 0.09), "rubber",
                 rest=PartState((x_in + hl / 2 + 0.01, 0.0, hb - 0.12 + (self._hood_height - 0.15) / 2))),
            Part("curtain_out", "box", curtain, (0.08, 0.08, 0.09), "rubber",
                 rest=PartState((x_out - hl / 2 - 0.01, 0.0, hb - 0.12 + (self._hood_height - 0.15) / 2))),
            Part("stripe_in", "box", (0.03, self._hood_width + 0.01, 0.08), (0.95, 0.75, 0.05), "paint",
                 rest=PartState((x_in + hl / 2 - 0.02, 0.0, hb - 0.12 + self._hood_height - 0.04))),
            Part("stripe_out", "box", (0.03, self._hood_width + 0.01, 0.08), (0.95, 0.75, 0.05), "paint",
                 rest=PartState((x_out - hl / 2 + 0.02, 0.0, hb - 0.12 + self._hood_height - 0.04))),
            Part("gearbox", "box", (0.22, 0.16, 0.2), (0.2, 0.22, 0.25), "paint",
                 rest=PartState((x_out - 0.1, -side - 0.11, hb - 0.25))),
            Part("motor", "cylinder", (0.17, 0.17, 0.3), (0.25, 0.35, 0.55), "paint",
                 rest=PartState((x_out - 0.1, -side - 0.11 - 0.2, hb - 0.25), (math.pi / 2, 0, 0))),
            Part("motor_fan", "cylinder", (0.15, 0.15, 0.05), (0.12, 0.12, 0.13), "paint",
                 rest=PartState((x_out - 0.1, -side - 0.11 - 0.37, hb - 0.25), (math.pi / 2, 0, 0))),
            Part("post_front", "box", (0.08, 0.08, self._gantry_top()), (0.95, 0.72, 0.08), "paint",
                 rest=PartState((0.0, -(wb / 2 + 0.2), top / 2))),
            Part("post_back", "box", (0.08, 0.08, self._gantry_top()), (0.95, 0.72, 0.08), "paint",
                 rest=PartState((0.0, wb / 2 + 0.2, top / 2))),
            Part("beam", "box", (0.12, wb + 0.5, 0.1), (0.95, 0.72, 0.08), "paint",
                 rest=PartState((0.0, 0.0, top - 0.05))),
            Part("cylinder", "cylinder", (0.12, 0.12, 0.3), (0.8, 0.82, 0.85), "steel",
                 rest=PartState((0.0, 0.0, top + 0.15))),
            Part("rod", "cylinder", (0.035, 0.035, 1.0), (0.85, 0.85, 0.88), "chrome"),
            Part("head", "box", (0.75 * bl, 0.75 * bw, 0.06), (0.85, 0.3, 0.12), "paint"),
            Part("hose", "box", (0.02, 0.02, 0.35), (0.1, 0.1, 0.12), "rubber",
                 rest=PartState((0.0, wb / 2 + 0.1, top + 0.12), (0.9, 0.0, 0.0))),
            Part("cabinet", "box", (0.45, 0.25, 0.7), (0.85, 0.86, 0.84), "paint",
                 rest=PartState((0.9 * p, self._hood_width / 2 + 0.45, 0.35))),
            Part("beacon", "cylinder", (0.1, 0.1, 0.12), (0.1, 0.8, 0.2), "plastic",
                 rest=PartState((0.9 * p, self._hood_width / 2 + 0.45, 0.76))),
            Part("brace_front", "box", (belt_len - 0.2, 0.04, 0.05), frame, "paint", rest=PartState((xc, -side, 0.25))),
            Part("brace_back", "box", (belt_len - 0.2, 0.04, 0.05), frame, "paint", rest=PartState((xc, side, 0.25))),
        ]
        parts += [Part(n, "box", (bl, bw, bh), tuple(box), "cardboard") for n in BOXES]
        parts += [Part(n, "box", (LABEL_SIZE * bl, LABEL_SIZE * bw, LABEL_THICK), (0.97, 0.97, 0.95), "plastic")
                  for n in LABELS]
        parts += [Part(n, "box", (0.04, wb - 0.04, 0.006), (0.45, 0.45, 0.45), "rubber")
                  for n in CLEATS]
        parts += [Part(n, "box", (0.06, 0.06, hb - 0.08), frame, "paint", rest=PartState((x, y, (hb - 0.08) / 2)))
                  for n, (x, y) in zip(LEGS, leg_at)]
        return {p.name: p for p in parts}

    def steps(self) -> list[Step]:
        stamp = STROKE / self._v("stamp_speed")
        return [
            Step("advance", self._v("pitch") / self._v("belt_speed")),
            Step("dwell", self._v("dwell_seconds")),
            Step("stamp_down", stamp),
            Step("stamp_up", stamp),
            Step("idle", self._v("idle_seconds")),
        ]

    def motion(self, phase: float) -> Motion:
        step, t = self.step_at(phase)
        s = t if step == "advance" else 1.0
        down = {"stamp_down": t, "stamp_up": 1.0 - t}.get(step, 0.0)
        return Motion(s, down, step in ("stamp_up", "idle"))

    def stamp_states(self, down: float) -> dict[str, PartState]:
        """Head and rod with the head lowered by `down` (0 .. 1) of its stroke."""
        bottom = self._stamp_rest() - down * STROKE
        beam_bottom = self._gantry_top() - 0.1
        rod_len = beam_bottom - (bottom + 0.06)
        return {
            "head": PartState((0.0, 0.0, bottom + 0.03)),
            "rod": PartState((0.0, 0.0, bottom + 0.06 + rod_len / 2), scale=(1.0, 1.0, rod_len)),
        }

    def build(self, m: Motion) -> Pose:
        p, hb = self._v("pitch"), self._v("belt_height")
        s, hl = m.belt, self._hood_length
        x_in, x_out = self.station_x(0), self.station_x(N_BOXES)
        pose = self.stamp_states(m.stamp)
        for i, name in enumerate(BOXES):
            box, label = self.box_state(self.station_x(i + s))
            pose[name] = box
            if i >= 1:
                lab = f"label_{i}"
                pose[lab] = label if (i >= 2 or m.labelled) else label.moved(visible=False)
        run = N_BOXES * p
        for j, name in enumerate(CLEATS):
            off = (j * p / 2 + s * p) % run
            x = x_in + off
            vis = (x - x_in) > hl / 2 + 0.03 and (x_out - x) > hl / 2 + 0.03
            pose[name] = PartState((x, 0.0, hb + 0.003), visible=vis)
        return pose

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        hl, wb = self._hood_length, self._v("belt_width")
        lo = np.array([self.station_x(0) - hl / 2, -(wb / 2 + 0.5), 0.0])
        hi = np.array([self.station_x(N_BOXES) + hl / 2, self._hood_width / 2 + 0.6,
                       self._gantry_top() + 0.3])
        return lo, hi


# --------------------------------------------------------------------- device-specific kinds


class WrongBox(AnomalyKind):
    """A box of the wrong (smaller) size goes by: the last box, for one cycle."""

    factor = (0.55, 0.7)

    def plan(self, device, schedule, cycle, rng):
        f = float(rng.uniform(*self.factor))

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            x = pose["box_3"].location[0]
            pose["box_3"], label = device.box_state(x, scale=f)
            pose["label_3"] = label
            return pose
        return self._state_edit(schedule, cycle, apply)


class BoxFallen(AnomalyKind):
    """A box falls over when the belt stops and is carried on lying on its side.

    From the dwell of `cycle` to the end of the next advance, the box at station 3 (box_2 while
    the belt stands, box_3 while it next moves) lies tipped towards the camera."""

    def plan(self, device, schedule, cycle, rng):
        p = device.values["pitch"]
        lo3, hi4 = device.station_x(3) - 0.01 * p, device.station_x(4) - 0.01 * p

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            for i, name in enumerate(BOXES):
                x = pose[name].location[0]
                if lo3 <= x < hi4:
                    box, label = device.box_state(x, tip=math.pi / 2)
                    pose[name] = box
                    if i >= 1:
                        lab = f"label_{i}"
                        pose[lab] = label.moved(visible=label.visible and pose[lab].visible)
            return pose
        lo = schedule.step_span(cycle, "dwell")[0]
        hi = schedule.step_span(cycle + 1, "advance")[1]
        return self._event(cycle, state=StateEdit(lo, hi, apply))


class BoxSlip(AnomalyKind):
    """The boxes slip on the belt: while the belt (its marks) advances they lag behind, then
    catch up as it stops."""

    power = (2.0, 3.0)

    def plan(self, device, schedule, cycle, rng):
        k = float(rng.uniform(*self.power))

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            s = (pose["box_0"].location[0] - device.station_x(0)) / device.values["pitch"]
            s = min(max(s, 0.0), 1.0)
            lag = s ** k
            for i, name in enumerate(BOXES):
                box, label = device.box_state(device.station_x(i + lag))
                pose[name] = box
                if i >= 1:
                    lab = f"label_{i}"
                    pose[lab] = label.moved(visible=label.visible and pose[lab].visible)
            return pose
        return self._state_edit(schedule, cycle, apply, "advance", "advance")


class DoubleFeed(AnomalyKind):
    """Two boxes come out of the infeed stuck together: no gap between box_0 and box_1."""

    def plan(self, device, schedule, cycle, rng):
        bl = device.values["box_length"]

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            x = pose["box_1"].location[0] - bl - 0.01
            pose["box_0"], _ = device.box_state(x)
            return pose
        return self._state_edit(schedule, cycle, apply)


class NoStamp(AnomalyKind):
    """The stamp does not fire: the head stays up and the box under it gets no label."""

    def plan(self, device, schedule, cycle, rng):
        rest = device.stamp_states(0.0)

        def apply(pose: Pose, frame: int, phase: float) -> Pose:
            pose.update(rest)
            pose["label_1"] = pose["label_1"].moved(visible=False)
            return pose
        return self._state_edit(schedule, cycle, apply, "stamp_down")


LAST = ("box_3", "label_3")
STAMP_PARTS = ("head", "rod")
Conveyor.anomalies = {k.name: k for k in (
    ColorChange("box_color", "appearance", "a box of another colour", ("box_3",)),
    WrongBox("wrong_box", "appearance", "a box of the wrong size", LAST),
    Missing("missing_label", "appearance", "a box goes by without its label", ("label_3",)),
    Tilt("box_skew", "position", "a box travels askew on the belt", LAST),
    Shift("box_shift", "position", "a box travels off-centre, overhanging the belt edge", LAST,
          axis=1),
    BoxFallen("box_fallen", "position", "a box falls over as the belt stops and travels on its side",
              ("box_2", "label_2", "box_3", "label_3")),
    Stall("belt_stall", "motion", "the belt stops mid-advance, then goes on", MOVING,
          step="advance"),
    SpeedChange("belt_fast", "motion", "the belt advances too fast", MOVING, step="advance"),
    Jerk("belt_jerk", "motion", "the boxes shake while the belt advances", CARRIED,
         step="advance"),
    Reverse("belt_reverse", "motion", "the belt runs backwards for a while mid-advance", MOVING,
            step="advance"),
    BoxSlip("box_slip", "motion", "the boxes slip on the moving belt, lagging behind it", CARRIED),
    DoubleFeed("double_feed", "logic", "two boxes come in stuck together, with no gap",
               ("box_0", "box_1")),
    NoStamp("no_stamp", "logic", "the stamp does not fire: no label on the box under it",
            STAMP_PARTS + ("label_1",)),
    CutStep("early_stamp", "logic", "the stamp fires before the box has settled", STAMP_PARTS,
            step="dwell", next_step="stamp_down"),
)}
