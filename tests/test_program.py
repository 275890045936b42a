"""The cycle program, anomaly planning and labels: pure numpy, no Blender."""
import subprocess
import sys

import numpy as np
import pytest

from ipadgen.devices import DEVICES, get_device
from ipadgen.scene import plan_video, scene_device
from ipadgen.spec import NuisanceSpec, SceneSpec, resolve_anomalies

LIFTER = get_device("lifter")
ALL_KINDS = [(d, k) for d, cls in DEVICES.items() for k in cls.anomalies]


def spec_for(kind, seed=0, device="lifter", **kw):
    return SceneSpec(name="t", device=device, anomalies=(kind,), seed=seed,
                     max_anomalies_per_video=1, **kw)


def test_generator_core_imports_without_bpy():
    code = ("import sys; sys.modules['bpy'] = None\n"
            "import ipadgen.program, ipadgen.scene, ipadgen.devices, ipadgen.spec, ipadgen.cli\n"
            "import ipadgen.writer, ipadgen.preview\n"
            "assert 'bpy' not in sys.modules or sys.modules['bpy'] is None\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lifter_has_two_kinds_per_category():
    cats = [k.category for k in LIFTER.anomalies.values()]
    for c in ("appearance", "position", "motion", "logic"):
        assert cats.count(c) >= 2, c


@pytest.mark.parametrize("device", list(DEVICES))
def test_cycle_lengths_are_those_of_real_machines(device):
    """5 to 30 seconds per cycle, as the IPAD paper reports."""
    cls = DEVICES[device]
    for seed in range(20):
        d = scene_device(spec_for(next(iter(cls.anomalies)), seed, device))
        seconds = sum(s.seconds for s in d.steps())
        assert 5.0 <= seconds <= 30.0, (seed, seconds)


@pytest.mark.parametrize("device, kind", ALL_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_are_one_exactly_on_the_anomaly_span(device, kind, seed):
    spec = spec_for(kind, seed, device)
    device = scene_device(spec)
    for index in (1, 2):
        plan = plan_video(spec, device, "testing", index)
        prog = plan.program
        assert len(prog.labels) == plan.n_frames == len(prog.cycle) == len(prog.phase)
        (event,) = prog.events
        assert event["kind"] == kind and event["first_frame"] is not None
        expected = np.zeros(plan.n_frames, dtype=np.uint8)
        expected[event["first_frame"]: event["last_frame"] + 1] = 1
        np.testing.assert_array_equal(prog.labels, expected)
        lo, hi = event["edited_frames"]
        assert lo <= event["first_frame"] and event["last_frame"] < hi
        # the first cycle is a normal stretch
        assert not prog.labels[prog.cycle == 0].any()


@pytest.mark.parametrize("name", list(DEVICES))
def test_period_labels_of_normal_videos(name):
    spec = spec_for(next(iter(DEVICES[name].anomalies)), device=name, cycles=4)
    device = scene_device(spec)
    for index in (1, 2, 3):
        prog = plan_video(spec, device, "training", index).program
        assert prog.labels.sum() == 0 and not prog.events
        assert np.all((prog.phase >= 0) & (prog.phase < 1))
        steps = np.diff(prog.cycle)
        assert set(np.unique(steps)) <= {0, 1}, "cycle index goes up by one at a boundary"
        assert prog.cycle[0] == 0 and prog.cycle[-1] == 3
        within = steps == 0
        assert np.all(np.diff(prog.phase)[within] > 0), "phase increases within a cycle"
        lengths = np.bincount(prog.cycle)
        assert lengths.min() != lengths.max(), "cycle-to-cycle length variation"


def test_a_stall_holds_the_phase_and_delays_the_rest():
    spec = spec_for("stall")
    plan = plan_video(spec, scene_device(spec), "testing", 1)
    prog = plan.program
    lo, hi = prog.events[0]["edited_frames"]
    assert np.all(prog.phase[lo:hi] == prog.phase[lo]), "a stalled device has a stalled phase"
    assert prog.shift == hi - lo - 1 > 0


def test_skipping_the_hold_jumps_the_phase_forward():
    spec = spec_for("skip_hold")
    prog = plan_video(spec, scene_device(spec), "testing", 1).program
    lo, _ = prog.events[0]["edited_frames"]
    jump = prog.phase[lo] - prog.phase[lo - 1]
    assert jump > 3 * np.median(np.diff(prog.phase)[:20])
    assert prog.shift < 0


def test_planning_is_deterministic_per_seed_and_video():
    spec = spec_for("load_color", seed=5)
    a = plan_video(spec, scene_device(spec), "testing", 2)
    b = plan_video(spec, scene_device(spec), "testing", 2)
    np.testing.assert_array_equal(a.program.labels, b.program.labels)
    np.testing.assert_array_equal(a.nuisance.exposure, b.nuisance.exposure)
    c = plan_video(spec, scene_device(spec), "testing", 3)
    assert not np.array_equal(a.nuisance.exposure, c.nuisance.exposure)
    other = scene_device(spec_for("load_color", seed=6))
    assert other.values != scene_device(spec).values


def test_nuisances_vary_and_can_be_turned_off():
    spec = spec_for("stall")
    plan = plan_video(spec, scene_device(spec), "training", 1)
    assert np.ptp(plan.nuisance.exposure) > 0.05 and np.ptp(plan.nuisance.temperature) > 50
    assert np.abs(plan.nuisance.camera_offset).max() > 0
    off = spec.model_copy(update={"nuisance": NuisanceSpec.off()})
    quiet = plan_video(off, scene_device(off), "training", 1)
    assert np.all(quiet.nuisance.exposure == 0) and np.all(quiet.nuisance.camera_offset == 0)


def test_parameters_stay_in_their_declared_ranges():
    for seed in range(20):
        values = scene_device(spec_for("stall", seed)).values
        for name, r in LIFTER.params.items():
            assert r.low <= values[name] <= r.high


def test_given_parameters_are_checked():
    with pytest.raises(ValueError, match="outside its range"):
        scene_device(SceneSpec(name="t", device="lifter", anomalies=("stall",),
                               params={"lift_height": 9.0}))
    with pytest.raises(ValueError, match="allowed"):
        scene_device(SceneSpec(name="t", device="lifter", anomalies=("stall",),
                               params={"wings": 1.0}))


def test_resolve_anomalies():
    assert resolve_anomalies(LIFTER, "logic") == ("empty_lift", "skip_hold", "early_lower", "no_lift")
    assert resolve_anomalies(LIFTER, "stall,load_color") == ("load_color", "stall")
    assert resolve_anomalies(LIFTER, "all") == tuple(LIFTER.anomalies)
    with pytest.raises(ValueError, match="allowed: all, appearance"):
        resolve_anomalies(LIFTER, "explosion")


def test_device_registry_names_allowed_values():
    assert "lifter" in DEVICES
    with pytest.raises(ValueError, match="allowed: ") as err:
        get_device("toaster")
    assert all(name in str(err.value) for name in DEVICES)


@pytest.mark.parametrize("name", list(DEVICES))
def test_every_part_is_posed_once_by_its_layer(name):
    device = scene_device(spec_for(next(iter(DEVICES[name].anomalies)), device=name))
    parts = device.parts()
    rest = device.rest_pose()
    pose = device.pose(0.37)
    assert set(pose) == set(parts)
    assert all(pose[n] == state for n, state in rest.items() if n in parts)  # a part at rest stays put
    assert rest, "the static parts are declared with their rest pose"


def test_a_part_with_no_rest_pose_and_no_built_state_is_named():
    class Half(LIFTER):
        def build(self, m):
            return {k: v for k, v in super().build(m).items() if k != "rod"}

    device = Half(scene_device(spec_for("stall")).values)
    with pytest.raises(ValueError, match="lifter: parts rod have neither a rest pose"):
        plan_video(spec_for("stall"), device, "training", 1)
