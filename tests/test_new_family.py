"""A device family is one file: this one declares a stamper (a ram comes down on a block and goes
back up), configures generic anomaly kinds of `ipadgen.anomalies` for it, and renders each kind
against its normal twin with the same check every shipped family passes (test_render.py)."""
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("bpy")

from test_render import assert_true_to_its_twin  # noqa: E402

from ipadgen import devices  # noqa: E402
from ipadgen.anomalies import ColorChange, CutStep, Shift, Stall  # noqa: E402
from ipadgen.params import ParamRange  # noqa: E402
from ipadgen.program import Device, Part, PartState, Pose, Step  # noqa: E402
from ipadgen.render.blender import BlenderRenderer  # noqa: E402
from ipadgen.scene import scene_camera  # noqa: E402

pytestmark = pytest.mark.blender
TABLE_TOP = 0.5


@dataclass(frozen=True)
class Motion:
    lowered: float  # 0: ram up .. 1: ram down on the block


class Stamper(Device):
    name = "stamper"
    description = "stamper: the ram comes down on a block, dwells, goes back up, idles"
    params = {
        "block_size": ParamRange(0.2, 0.3, "m", "side of the block under the ram"),
        "stroke": ParamRange(0.3, 0.45, "m", "how far the ram travels"),
        "ram_speed": ParamRange(0.3, 0.5, "m/s"),
        "dwell_seconds": ParamRange(0.6, 1.0, "s", "the ram down on the block"),
        "idle_seconds": ParamRange(0.6, 1.0, "s", "the ram up"),
    }
    anomalies = {k.name: k for k in (
        ColorChange("block_color", "appearance", "the block has another colour", ("block",)),
        Shift("block_shift", "position", "the block sits off-centre under the ram", ("block",), axis=0),
        Stall("stall", "motion", "the ram stops on its way down, then goes on", ("ram",), step="down"),
        CutStep("skip_dwell", "logic", "the ram goes back up at once, skipping the dwell", ("ram",),
                step="dwell", next_step="up"),
    )}

    def parts(self) -> dict[str, Part]:
        """Every part once; those that never move with their rest pose."""
        block = self._v("block_size")
        parts = [
            Part("floor", "box", (6.0, 6.0, 0.02), (0.55, 0.55, 0.53), "concrete", rest=PartState((0.0, 0.0, -0.01))),
            Part("table", "box", (0.8, 0.6, TABLE_TOP), (0.2, 0.3, 0.5), "paint",
                 rest=PartState((0.0, 0.0, TABLE_TOP / 2))),
            Part("block", "box", (block, block, block), (0.85, 0.6, 0.1), "paint",
                 rest=PartState((0.0, 0.0, TABLE_TOP + block / 2))),
            Part("ram", "box", (0.15, 0.15, 0.3), (0.8, 0.8, 0.82), "steel"),
        ]
        return {p.name: p for p in parts}

    def steps(self) -> list[Step]:
        travel = self._v("stroke") / self._v("ram_speed")
        return [Step("down", travel), Step("dwell", self._v("dwell_seconds")), Step("up", travel),
                Step("idle", self._v("idle_seconds"))]

    def motion(self, phase: float) -> Motion:
        """The program as a few typed values: here, how far the ram is down."""
        step, t = self.step_at(phase)
        return Motion(lowered={"down": t, "dwell": 1.0, "up": 1.0 - t}.get(step, 0.0))

    def build(self, m: Motion) -> Pose:
        """The moving parts for those values."""
        ram_bottom = TABLE_TOP + self._v("block_size") + self._v("stroke") * (1.0 - m.lowered)
        return {"ram": PartState((0.0, 0.0, ram_bottom + 0.15))}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        top = TABLE_TOP + self._v("block_size") + self._v("stroke") + 0.3
        return np.array([-0.4, -0.3, 0.0]), np.array([0.4, 0.3, top])


@pytest.fixture(scope="module")
def stamper_renderer():
    renderers = []

    def get(device_name, spec, device):
        if not renderers:
            renderers.append(BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render))
        return renderers[0]
    yield get
    for r in renderers:
        r.close()


@pytest.fixture
def registered(monkeypatch):
    """The family is found by name, as a file in ipadgen/devices/ would be."""
    monkeypatch.setitem(devices.DEVICES, Stamper.name, Stamper)


@pytest.mark.parametrize("kind", list(Stamper.anomalies))
def test_a_family_of_one_file_renders_every_kind_true_to_its_twin(kind, registered, stamper_renderer):
    assert {a.category for a in Stamper.anomalies.values()} == {"appearance", "position", "motion", "logic"}
    assert_true_to_its_twin(Stamper.name, kind, stamper_renderer)
