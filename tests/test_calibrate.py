"""`ipad-detect calibrate`: a threshold from normal footage alone, that works without any anomaly."""
import json
import shutil

import numpy as np
import pytest
from conftest import normal_phases, write_scene, write_video

from ipad_detect.calibrate import THRESHOLD_FILE, Threshold, alarm_spans, choose_threshold
from ipad_detect.cli import main


def test_alarm_spans_need_the_minimum_duration():
    scores = np.array([0, 5, 5, 0, 5, 5, 5, 0, 5])
    assert alarm_spans(scores, 1, 3) == [(4, 6)]
    assert alarm_spans(scores, 1, 1) == [(1, 2), (4, 6), (8, 8)]


def test_the_threshold_is_the_lowest_that_keeps_the_allowed_alarms():
    normal = [np.array([0., 1, 2, 9, 9, 1]), np.array([0., 3, 3, 3, 0])]
    assert choose_threshold(normal, allowed=0, min_frames=2) == (9.0, 0)  # 9, 9 is an alarm below 9
    assert choose_threshold(normal, allowed=1, min_frames=2) == (3.0, 1)  # the 9s; 3, 3, 3 is a second below 3
    assert choose_threshold(normal, allowed=1, min_frames=4) == (0.0, 1)  # 1, 2, 9, 9, 1 is the one run of 4
    # no anomaly anywhere, one frame tall: never the minimum score (that would flag every frame)
    assert choose_threshold(normal, allowed=0, min_frames=1)[0] == 9.0


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory):
    """Training videos that start between frames (0.37, 0.71 of a cycle): no clip of one is exactly in
    another, as in real footage."""
    root = tmp_path_factory.mktemp("calibrate")
    scene = write_scene(root, "S01", num_frames=48, train_videos=1)
    for name, start in (("02", 0.37), ("03", 0.71)):
        write_video(scene, "training", name, normal_phases(48, start), period_format="structured")
    return root


@pytest.mark.parametrize("model", ["clip-nn", "full"])
def test_calibrate_on_training_videos_left_out_and_reports_test_quality(scene_root, tmp_path, capsys, model):
    run = tmp_path / "run"
    assert main(["train", "--data", str(scene_root), "--scene", "S01", "--config", "tiny", "--model", model,
                 "--epochs", "1", "--max-clips", "8", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--checkpoint", str(run), "--data", str(scene_root), "--scene", "S01", "--fps", "10",
                 "--min-duration", "0.3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "one left out of the bank at a time" in out and "expected false alarms: none in" in out, out
    saved = Threshold.load(next(run.glob("epoch-*")))
    assert saved.normal_alarms == 0 and saved.min_frames == 3 and saved.normal_frames == 3 * (48 - 15)
    assert saved.precision is not None and "anomalies found" in out
    if model == "clip-nn":  # the red square is far from every normal clip
        assert saved.anomalies_found.split()[0] != "0" and saved.precision > 0.5, out


def test_calibrate_without_any_anomaly_flags_not_everything(scene_root, tmp_path, capsys):
    """Held-out normal videos only, and a scene with no test videos at all (anomalib #2433)."""
    root = tmp_path / "data"
    shutil.copytree(scene_root / "S01", root / "S01")
    shutil.rmtree(root / "S01" / "testing")
    shutil.rmtree(root / "S01" / "test_label")
    run = tmp_path / "run"
    assert main(["train", "--data", str(root), "--scene", "S01", "--config", "tiny", "--model", "clip-nn",
                 "--out", str(run), "--quiet"]) == 0
    held_out = scene_root / "S01" / "testing" / "frames" / "03"  # normal
    assert main(["calibrate", "--checkpoint", str(run), "--data", str(root), "--scene", "S01", "--fps", "10",
                 "--normal", str(held_out), "--false-alarms-per-hour", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "held-out normal videos" in out and "precision" not in out
    record = json.loads(next(run.glob("epoch-*/" + THRESHOLD_FILE)).read_text())
    assert record["normal_alarms"] == 0 and record["precision"] is None


@pytest.mark.parametrize("args, message", [
    (["--false-alarms-per-hour", "-1"], "--false-alarms-per-hour -1.0 is not allowed"),
    (["--min-duration", "0"], "--min-duration 0.0 is not allowed"),
    ([], "give --fps"),
])
def test_calibrate_errors(scene_root, tmp_path, capsys, args, message):
    assert main(["calibrate", "--checkpoint", str(tmp_path), "--data", str(scene_root), "--scene", "S01",
                 *args]) == 2
    assert message in capsys.readouterr().err
