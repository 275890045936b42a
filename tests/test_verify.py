"""`ipadgen verify`: passes on a rendered scene, fails (exit 1, names the problem) on tampered
copies. Real Blender renders: lifter, 48 px, 3 fps, 2 cycles."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ipadgen.cli import main

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

SPEC = {"name": "V", "device": "lifter", "anomalies": ["load_color", "load_shift", "stall"],
        "seed": 11, "train_videos": 1, "test_videos": 2, "cycles": 2, "fps": 3,
        "max_anomalies_per_video": 1, "render": {"resolution": 48}}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify")
    (root / "V.yaml").write_text(yaml.safe_dump(SPEC))
    assert main(["render-set", str(root / "V.yaml"), "--out", str(root / "out"), "--workers", "2",
                 "--quiet"]) == 0
    return root / "out" / "V"


@pytest.fixture
def copy(scene, tmp_path) -> Path:
    target = tmp_path / "V"
    shutil.copytree(scene, target)
    return target


def _rows(out: str) -> list[list[str]]:
    return [ln.split(None, 3) for ln in out.splitlines()[2:-1]]


def _failures(out: str) -> list[list[str]]:
    return [r for r in _rows(out) if len(r) > 2 and r[2] == "FAIL"]


def _labelled(scene: Path) -> tuple[str, int]:
    """A test video and one of its labelled frames."""
    for v in ("01", "02"):
        labels = np.load(scene / "test_label" / f"0{v}.npy")
        if labels.any():
            return v, int(np.nonzero(labels)[0][len(np.nonzero(labels)[0]) // 2])
    raise AssertionError("no anomalous frame in the scene")


def test_verify_passes_on_a_rendered_scene(scene, capsys):
    assert main(["verify", str(scene)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert out.splitlines()[1].split() == ["check", "video", "result", "detail"]
    checks = {(r[0], r[1]) for r in rows}
    for v in ("01", "02"):
        for check in ("frames", "period", "meta", "labels", "masks", "pixels", "twin"):
            assert (check, f"testing/{v}") in checks, (check, v)
    assert ("frames", "training/01") in checks and ("layout", "scene") in checks
    assert all(r[2] == "ok" for r in rows), out
    assert "labelled frames rendered" in out and "0 failed" in out.splitlines()[-1]


def test_deleted_frame_fails(copy, capsys):
    (copy / "testing" / "frames" / "01" / "005.jpg").unlink()
    assert main(["verify", str(copy)]) == 1
    failed = _failures(capsys.readouterr().out)
    assert ["frames", "testing/01"] in [r[:2] for r in failed]
    assert any("missing 005.jpg" in r[3] for r in failed)
    assert any(r[:2] == ["labels", "testing/01"] and "labels for" in r[3] for r in failed), \
        "the label length no longer matches the frame count"


def test_flipped_label_fails(copy, capsys):
    path = copy / "test_label" / "002.npy"
    labels = np.load(path)
    labels[3] ^= 1
    np.save(path, labels)
    assert main(["verify", str(copy)]) == 1
    failed = _failures(capsys.readouterr().out)
    assert any(r[:2] == ["labels", "testing/02"] and "differs from the re-plan at 1 frames, first 3"
               in r[3] for r in failed), failed


def test_anomalous_frame_replaced_by_a_normal_one_fails(copy, capsys):
    video, f = _labelled(copy)
    frames = copy / "testing" / "frames" / video
    shutil.copy(frames / "000.jpg", frames / f"{f:03d}.jpg")
    assert main(["verify", str(copy), "--all-frames"]) == 1
    failed = _failures(capsys.readouterr().out)
    assert any(r[:2] == ["pixels", f"testing/{video}"] and f"frame {f} is not the planned frame"
               in r[3] for r in failed), failed


def test_structure_only_without_blender(copy, capsys):
    video, f = _labelled(copy)
    mask = copy / "testing" / "masks" / video / f"{f:03d}.png"
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(mask)
    (copy / "training" / "period" / ".01.npy.tmp").write_bytes(b"half")
    assert main(["verify", str(copy), "--no-render"]) == 1
    out = capsys.readouterr().out
    failed = _failures(out)
    assert any(r[:2] == ["masks", f"testing/{video}"] and f"empty on anomalous frame {f}" in r[3]
               for r in failed), failed
    assert any(r[0] == "layout" and "leftover temp files" in r[3] for r in failed)
    assert "skipped (--no-render)" in out


def test_not_a_scene_is_a_usage_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "not a rendered scene" in capsys.readouterr().err


@pytest.mark.parametrize("render", [True, False])
def test_a_truncated_frame_fails_with_and_without_rendering(copy, capsys, render):
    frame = copy / "testing" / "frames" / "01" / "010.jpg"
    frame.write_bytes(frame.read_bytes()[:200])  # the right name, a picture cut short
    assert main(["verify", str(copy)] + ([] if render else ["--no-render"])) == 1
    failed = _failures(capsys.readouterr().out)
    assert any(r[:2] == ["frames", "testing/01"] and "1 frame(s) do not decode: 010.jpg" in r[3]
               for r in failed), failed


@pytest.mark.parametrize("text, needle", [("[1, 2]", "scene.json holds a list, not an object"),
                                          ("{bad", "scene.json cannot be read as JSON")])
def test_a_scene_json_that_is_not_an_object_fails_the_spec_check(tmp_path, capsys, text, needle):
    (tmp_path / "S").mkdir()
    (tmp_path / "S" / "scene.json").write_text(text)
    assert main(["verify", str(tmp_path / "S")]) == 1
    failed = _failures(capsys.readouterr().out)
    assert [r[:2] for r in failed] == [["spec", "scene"]] and needle in failed[0][3]


def test_the_release_label_file_is_test_label_joined_and_the_detector_reads_it_alone(copy, tmp_path, capsys):
    joined = np.load(copy / "frame_labels_V.npy")
    parts = [np.load(copy / "test_label" / f"00{i}.npy") for i in (1, 2)]
    assert joined.shape == (1, sum(map(len, parts))) and np.array_equal(joined[0], np.concatenate(parts))
    release = tmp_path / "release"  # as the IPAD authors' code reads it: no test_label/
    shutil.copytree(copy, release / "V")
    shutil.rmtree(release / "V" / "test_label")

    def detect(*args):  # its own process: torch's extensions must not load beside a rendering bpy
        done = subprocess.run([sys.executable, "-m", "ipad_detect.cli", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    data = tmp_path / "data"  # a root of its own: the run and the JSON below may not lie inside --data
    shutil.copytree(copy, data / "V")
    run = tmp_path / "run"
    detect("train", "--data", str(data), "--scene", "V", "--config", "tiny", "--model", "clip-nn",
           "--out", str(run), "--quiet")
    aucs = [detect("evaluate", "--data", str(root), "--scene", "V", "--checkpoint", str(run), "--out",
                   str(tmp_path / f"{i}.json"), "--quiet").split("frame AUC ")[1].split()[0]
            for i, root in enumerate((data, release))]
    assert aucs[0] == aucs[1] and aucs[0].endswith("%"), aucs
    joined[0, 3] ^= 1  # out of step with test_label/
    np.save(copy / "frame_labels_V.npy", joined)
    assert main(["verify", str(copy), "--no-render"]) == 1
    assert "frame_labels_V.npy (shape" in capsys.readouterr().out
