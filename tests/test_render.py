"""Real Blender renders (bpy, Workbench, small frames): layout, labels, masks, twins, errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

bpy = pytest.importorskip("bpy")

from ipadgen.cli import main  # noqa: E402
from ipadgen.devices import DEVICES, get_device  # noqa: E402
from ipadgen.render.blender import BlenderRenderer  # noqa: E402
from ipadgen.scene import plan_video, scene_camera, scene_device  # noqa: E402
from ipadgen.spec import NuisanceSpec, RenderSpec, SceneSpec  # noqa: E402

pytestmark = pytest.mark.blender
LIFTER = get_device("lifter")
SMALL = ["--resolution", "64", "--fps", "4", "--quiet"]


def frames(video_dir: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(video_dir.glob("*.jpg"))])


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    assert main(["render", "--device", "lifter", "--anomalies", "appearance,position", "--out",
                 str(out), "--scene-name", "S", "--train-videos", "1", "--test-videos", "2",
                 "--cycles", "2", *SMALL]) == 0
    return out / "S"


def test_layout_and_file_names(scene):
    assert (scene / "scene.json").is_file()
    record = json.loads((scene / "scene.json").read_text())
    assert record["spec"]["device"] == "lifter" and set(record["spec"]["params"]) == set(LIFTER.params)
    assert "blender" in record["versions"]
    for split, videos in (("training", ["01"]), ("testing", ["01", "02"])):
        assert sorted(p.name for p in (scene / split / "frames").iterdir()) == videos
        for v in videos:
            names = sorted(p.name for p in (scene / split / "frames" / v).iterdir())
            assert names == [f"{i:03d}.jpg" for i in range(len(names))]
            assert Image.open(scene / split / "frames" / v / "000.jpg").size == (64, 64)
            period = np.load(scene / split / "period" / f"{v}.npy")
            assert period.shape == (len(names),)
            assert np.all((period["phase"] >= 0) & (period["phase"] < 1))
            meta = json.loads((scene / split / "meta" / f"{v}.json").read_text())
            assert meta["frames"] == len(names)
    assert sorted(p.name for p in (scene / "test_label").iterdir()) == ["001.npy", "002.npy"]
    assert not list(scene.parent.glob(".*partial*")), "no staging folder left behind"


def test_labels_masks_and_meta_agree(scene):
    for v in ("01", "02"):
        n = len(list((scene / "testing" / "frames" / v).glob("*.jpg")))
        labels = np.load(scene / "test_label" / f"{int(v):03d}.npy")
        assert labels.dtype == np.uint8 and labels.shape == (n,) and labels.any()
        meta = json.loads((scene / "testing" / "meta" / f"{v}.json").read_text())
        expected = np.zeros(n, dtype=np.uint8)
        for a in meta["anomalies"]:
            assert a["category"] in ("appearance", "position")
            expected[a["first_frame"]: a["last_frame"] + 1] = 1
        np.testing.assert_array_equal(labels, expected)
        masks = sorted((scene / "testing" / "masks" / v).glob("*.png"))
        assert len(masks) == n
        for f, path in enumerate(masks):
            on = (np.asarray(Image.open(path)) > 127).sum()
            assert (on > 0) == bool(labels[f]), f"frame {f}: mask {on} px, label {labels[f]}"


def test_preview_contact_sheet(scene, tmp_path):
    assert main(["preview", str(scene), "--out", str(tmp_path / "sheet.png")]) == 0
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.height == 3 * 192 and sheet.width >= 4 * 192
    red = np.asarray(sheet.convert("RGB"))
    assert ((red[..., 0] > 200) & (red[..., 1] < 80)).any(), "mask outlines are drawn"


def _render_small(out: Path, seed: int, name: str, extra=()) -> Path:
    assert main(["render", "--device", "lifter", "--anomalies", "stall", "--out", str(out),
                 "--scene-name", name, "--seed", str(seed), "--train-videos", "1",
                 "--test-videos", "0", "--cycles", "1", "--resolution", "48", "--fps", "3",
                 "--quiet", *extra]) == 0
    return out / name / "training" / "frames" / "01"


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path):
    a = frames(_render_small(tmp_path, 3, "a"))
    b = frames(_render_small(tmp_path, 3, "b"))
    c = frames(_render_small(tmp_path, 4, "c"))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or np.abs(a.astype(int) - c).mean() > 1.0


def test_cycles_engine_renders(tmp_path):
    video = _render_small(tmp_path, 0, "cy", ["--engine", "cycles", "--samples", "2"])
    f = frames(video)
    assert f.shape[1:] == (48, 48, 3) and f.std() > 5


# --------------------------------------------------------------------- the normal twin


_renderers: dict[str, BlenderRenderer] = {}


def twin_spec(device: str, kind: str) -> SceneSpec:
    return SceneSpec(name="t", device=device, anomalies=(kind,), fps=5, cycles=3,
                     max_anomalies_per_video=1, nuisance=NuisanceSpec.off(),
                     render=RenderSpec(resolution=96))


@pytest.fixture(scope="module")
def twin_renderer():
    """One Blender scene per device, shared by its kinds (parameters come from seed 0)."""
    def get(device: str, spec: SceneSpec, d) -> BlenderRenderer:
        if device not in _renderers:
            _renderers[device] = BlenderRenderer(d.parts(), scene_camera(spec, d), spec.render)
        return _renderers[device]
    yield get
    for r in _renderers.values():
        r.close()
    _renderers.clear()


def _spread(first: int, last: int, k: int = 10) -> list[int]:
    return sorted(set(np.linspace(first, last, k).round().astype(int).tolist()))


@pytest.mark.parametrize("device_name, kind",
                         [(d, k) for d, cls in DEVICES.items() for k in cls.anomalies])
def test_anomaly_against_its_normal_twin(device_name, kind, twin_renderer):
    assert_true_to_its_twin(device_name, kind, twin_renderer)


def assert_true_to_its_twin(device_name: str, kind: str, twin_renderer) -> None:
    """Render one anomaly of `kind` in the middle cycle and the same schedule played without it:
    identical before the edit, different inside the anomaly's mask on every labelled frame, the
    twin again (shifted by the program's delay) after it, and no visible change on edited frames
    labelled normal (tests/test_new_family.py runs it on a family of its own)."""
    spec = twin_spec(device_name, kind)
    device = scene_device(spec)
    plan = plan_video(spec, device, "testing", 1)
    # the anomaly in the middle cycle, so there are frames before and after it
    planned = device.anomalies[kind].plan(device, plan.schedule, 1, np.random.default_rng(7))
    prog = device.play(plan.schedule, plan.n_frames, [planned])
    (event,) = prog.events
    # the twin: the same schedule played with no anomaly, long enough for a program running early
    twin = device.play(plan.schedule, plan.n_frames + max(0, -prog.shift), [])
    lo, hi = event["edited_frames"]
    first, last = event["first_frame"], event["last_frame"]
    r = twin_renderer(device_name, spec, device)

    def pixels(pose, f):
        return r.render(pose, plan.nuisance.frame(f)).astype(int)

    for f in (lo - 2, lo - 1):  # before the edit: identical
        np.testing.assert_array_equal(pixels(prog.poses[f], f), pixels(twin.poses[f], f))
    parts = set(event["parts"])
    for f in _spread(first, last):  # every anomalous frame differs inside the mask
        nuisance = plan.nuisance.frame(f)
        mask = r.render_mask(prog.poses[f], nuisance, parts) | r.render_mask(twin.poses[f], nuisance, parts)
        assert mask.any(), f"frame {f}: empty mask"
        changed = np.abs(pixels(prog.poses[f], f) - pixels(twin.poses[f], f)).max(axis=2) > 0
        assert (changed & mask).any(), f"frame {f} labelled {kind} looks like its twin"
    for f in sorted({hi, hi + 1, (hi + plan.n_frames) // 2, plan.n_frames - 1}):
        if hi <= f < plan.n_frames:  # after the edit: the twin, shifted by the program's delay
            np.testing.assert_array_equal(pixels(prog.poses[f], f),
                                          pixels(twin.poses[f - prog.shift], f))
    for f in set(range(lo, hi)) - set(range(first, last + 1)):  # edited but not labelled
        diff = np.abs(pixels(prog.poses[f], f) - pixels(twin.poses[f], f))
        assert diff.mean() < 0.5, f"frame {f} differs visibly from its twin but is labelled normal"


# --------------------------------------------------------------------- bad input, resume

BASE = ["render", "--device", "lifter", "--anomalies", "logic"]


@pytest.mark.parametrize("args, needle", [
    (["--device", "toaster"], "allowed: " + ", ".join(DEVICES)),
    (["--anomalies", "explosion"], "allowed: all, appearance, position, motion, logic"),
    (["--resolution", "0"], "--resolution"),
    (["--train-videos", "-1"], "--train-videos"),
    (["--test-videos", "-2"], "--test-videos"),
    (["--cycles", "0"], "--cycles"),
    (["--engine", "eevee"], "'workbench' or 'cycles'"),
    (["--scene-name", ""], "--scene-name is empty"),
    (["--scene-name", "a b"], "pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$'"),  # capitals kept
    (["--train-videos", "100000"], "--train-videos must be at most 1000 (got 100000)"),  # planned up front: GBs
    (["--cycles", "100000"], "--cycles must be at most 200 (got 100000)"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert main(BASE + ["--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_version_is_the_installed_distribution_s(capsys):
    from importlib import metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ipadgen {metadata.version('ipad-vad')}"


def test_an_internal_bug_keeps_its_traceback_instead_of_exit_2(monkeypatch):
    """Only usage and data errors are one line: a ValueError from a bug must not pass for bad input."""
    from ipadgen import cli

    class Broken:
        description = "a device whose code is wrong"

        @property
        def params(self):
            raise ValueError("a bug in a device family")

    monkeypatch.setitem(cli.DEVICES, "broken", Broken())
    with pytest.raises(ValueError, match="a bug in a device family"):
        main(["devices"])


@pytest.mark.parametrize("argv, needle", [
    (["preview", "nowhere", "--frames", "0"], "--frames must be at least 1 (got 0)"),
    (["preview", "nowhere", "--frames", "-2"], "--frames must be at least 1 (got -2)"),
    (["gallery", "--resolution", "7"], "--resolution must be at least 16 pixels (got 7)"),
])
def test_preview_and_gallery_refuse_sizes_that_make_broken_sheets(tmp_path, capsys, argv, needle):
    assert main(argv + ["--out", str(tmp_path / "sheet")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "sheet").exists()


def test_output_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    assert main(BASE + ["--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_interrupted_render_resumes_to_the_same_result(tmp_path):
    args = ["--device", "lifter", "--anomalies", "motion", "--train-videos", "2",
            "--test-videos", "2", "--cycles", "2", "--resolution", "48", "--fps", "3", "--quiet"]
    cmd = [sys.executable, "-m", "ipadgen.cli", "render", *args, "--scene-name", "S"]
    stage = tmp_path / "cut" / ".S.partial"
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "cut")], start_new_session=True)
    deadline = time.time() + 120
    while not (stage / "training" / "meta" / "01.json").exists():
        assert proc.poll() is None and time.time() < deadline, "render ended before the cut"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut" / "S").exists(), "a half-written scene is never visible"
    subprocess.run(cmd + ["--out", str(tmp_path / "cut")], check=True)
    subprocess.run(cmd + ["--out", str(tmp_path / "whole")], check=True)
    cut, whole = tmp_path / "cut" / "S", tmp_path / "whole" / "S"
    assert not stage.exists()
    for v in ("01", "02"):
        np.testing.assert_array_equal(np.load(cut / "test_label" / f"0{v}.npy"),
                                      np.load(whole / "test_label" / f"0{v}.npy"))
        for split in ("training", "testing"):
            np.testing.assert_array_equal(frames(cut / split / "frames" / v),
                                          frames(whole / split / "frames" / v))


def test_an_output_under_a_file_and_an_unfinished_render_of_another_spec_are_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    assert main(BASE + ["--out", str(tmp_path / "file" / "sub")]) == 2
    assert "cannot be written" in capsys.readouterr().err
    stage = tmp_path / "o" / ".S.partial"
    stage.mkdir(parents=True)
    (stage / "scene.json").write_text('{"spec": {"name": "other"}}')
    assert main(BASE + ["--out", str(tmp_path / "o"), "--scene-name", "S"]) == 2
    err = capsys.readouterr().err
    assert "holds an unfinished render of a different spec; remove it to start over" in err and err.count("\n") == 1
    assert (tmp_path / "file").read_text() == "keep me" and (stage / "scene.json").is_file()
