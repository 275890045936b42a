"""Cycle length and phase estimated from frames only, checked against the known truth."""

import json

import numpy as np
import pytest

from ipad_detect.cli import main
from ipad_detect.data import DataError, FrameCache, load_scene, read_period
from ipad_detect.period_estimation import (
    PERIOD_DTYPE,
    estimate_cycle_length_from_features,
    estimate_phase,
    frame_features,
    label_videos,
    phase_error,
)
from ipad_detect.train import training_videos

SIZE = 64


def device_frame(phase: float) -> np.ndarray:
    """Two parts: a block going round a circle and a slide that rises and falls once per cycle."""
    frame = np.full((SIZE, SIZE, 3), 40.0)
    angle = 2 * np.pi * phase
    x, y = int(SIZE / 2 + 20 * np.cos(angle)), int(SIZE / 2 + 20 * np.sin(angle))
    frame[y - 5:y + 5, x - 5:x + 5] = (230, 200, 90)
    top = int(8 + 36 * abs(np.sin(np.pi * phase)))
    frame[top:top + 8, 2:12] = (90, 160, 230)
    return frame


def periodic_video(num_frames: int, cycle: float, start: float, rng: np.random.Generator, nuisance: bool = False,
                   jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Frames and true phase; each cycle's length is cycle · (1 ± jitter). With `nuisance`, the light
    drifts (gain 0.6 … 1.2 plus an offset and flicker) and sensor noise is added."""
    lengths = cycle * (1 + jitter * rng.uniform(-1, 1, size=num_frames))
    phases, position = [], start
    for _ in range(num_frames):
        phases.append(position % 1.0)
        position += 1.0 / lengths[int(position)]
    frames = np.stack([device_frame(p) for p in phases])
    if nuisance:
        t = np.arange(num_frames)[:, None, None, None]
        gain = 0.9 + 0.3 * np.sin(2 * np.pi * t / num_frames) + 0.04 * rng.standard_normal((num_frames, 1, 1, 1))
        frames = frames * gain + 15 * np.cos(t / 37.0) + 6 * rng.standard_normal(frames.shape)
    return np.clip(frames, 0, 255).astype(np.uint8), np.asarray(phases)


def true_cycle_length(phases: list[np.ndarray]) -> float:
    return 1.0 / np.concatenate([np.mod(np.diff(p), 1.0) for p in phases]).mean()


@pytest.mark.parametrize("cycle", [13.0, 23.7, 38.4])
@pytest.mark.parametrize("nuisance, jitter", [(False, 0.0), (True, 0.0), (True, 0.04)])
def test_cycle_length_within_2_percent_and_phase_follows(cycle, nuisance, jitter):
    rng = np.random.default_rng(int(cycle * 10))
    videos = [periodic_video(int(5.5 * cycle), cycle, start, rng, nuisance, jitter) for start in (0.0, 0.37, 0.81)]
    features = [frame_features(frames) for frames, _ in videos]
    truth = true_cycle_length([p for _, p in videos])

    estimate, _ = estimate_cycle_length_from_features(features)
    assert abs(estimate - truth) / truth < 0.02, (estimate, truth)

    phases = estimate_phase(features, estimate)
    error = phase_error({str(i): p for i, (_, p) in enumerate(phases)}, {str(i): p for i, (_, p) in enumerate(videos)})
    assert error < 0.03  # cycles, after removing the arbitrary origin
    for cycle_index, phase in phases:
        assert phase.min() >= 0 and phase.max() < 1 and cycle_index.dtype == np.int32
        assert np.all(np.diff(cycle_index) >= 0) and cycle_index[0] == 0


def test_light_level_alone_does_not_change_the_features():
    frames, _ = periodic_video(20, 10.0, 0.0, np.random.default_rng(0))
    dimmer = (frames.astype(float) * 0.5 + 10).astype(np.uint8)
    np.testing.assert_allclose(frame_features(frames), frame_features(dimmer), atol=0.05)


def test_phase_error_ignores_the_origin_but_not_disorder():
    truth = {"01": np.mod(np.arange(30) / 10, 1.0)}
    assert phase_error({"01": np.mod(truth["01"] + 0.3, 1.0)}, truth) < 1e-9
    shuffled = {"01": np.random.default_rng(0).permutation(truth["01"])}
    assert phase_error(shuffled, truth) > 0.15


def test_unlabelled_scene_gets_period_files_outside_the_data(ipad_root, tmp_path):
    before = sorted(p.relative_to(ipad_root) for p in ipad_root.rglob("*"))
    videos, lengths = training_videos(ipad_root, ["R01"], FrameCache(64), period_dir=tmp_path / "period")
    assert lengths["R01"] == pytest.approx(12, rel=0.02)
    for video in videos:
        written = tmp_path / "period" / "R01" / "training" / "period" / f"{video.name}.npy"
        assert np.load(written).dtype == PERIOD_DTYPE
        cycle, phase = read_period(written, video.num_frames)  # our reader takes it
        np.testing.assert_array_equal(phase, video.phase)
        assert np.all(np.mod(np.diff(phase), 1.0) == pytest.approx(1 / lengths["R01"], abs=0.02))
    summary = json.loads((tmp_path / "period" / "R01" / "estimate.json").read_text())
    assert summary["cycle_length"] == lengths["R01"] and summary["videos"] == ["01", "02"]
    assert sorted(p.relative_to(ipad_root) for p in ipad_root.rglob("*")) == before  # nothing written there


def test_labelled_videos_keep_their_labels(ipad_root):
    videos = load_scene(ipad_root, "S01", splits=("training",)).training
    labelled = [v.phase.copy() for v in videos]
    assert label_videos(videos, FrameCache(64)) == pytest.approx(12, rel=1e-3)
    for video, phase in zip(videos, labelled):
        np.testing.assert_array_equal(video.phase, phase)


def test_too_short_footage_is_refused():
    frames, _ = periodic_video(8, 12.0, 0.0, np.random.default_rng(0))
    with pytest.raises(DataError, match="too short to estimate a cycle length"):
        estimate_cycle_length_from_features([frame_features(frames)])


def test_cli_reports_errors_against_labels(ipad_root, tmp_path, capsys):
    assert main(["estimate-period", "--data", str(ipad_root), "--scene", "S01", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "S01: estimated cycle length 12.0" in printed and "error 0." in printed and "phase error" in printed
    assert (tmp_path / "S01" / "training" / "period" / "01.npy").is_file()
    summary = json.loads((tmp_path / "S01" / "estimate.json").read_text())
    assert summary["cycle_length_error_percent"] < 2 and summary["phase_error_cycles"] < 0.03

    assert main(["estimate-period", "--data", str(ipad_root), "--scene", "R01", "--out", str(ipad_root / "est")]) == 2
    assert "nothing is written into the dataset" in capsys.readouterr().err


def test_a_scene_name_that_leaves_its_folder_is_refused_before_anything_is_written(ipad_root, tmp_path, capsys):
    # `--scene ../<data>/S01` once wrote the estimate over the dataset's own period labels.
    labels = sorted((ipad_root / "S01" / "training" / "period").iterdir())
    before = [p.read_bytes() for p in labels]
    out = tmp_path / "est"
    escape = f"../{ipad_root.name}/S01"
    for verb in (["estimate-period", "--out", str(out)], ["train", "--epochs", "1", "--out", str(tmp_path / "run")]):
        assert main([verb[0], "--data", str(ipad_root), "--scene", escape, *verb[1:]]) == 2
        assert "is not allowed: give the name of one folder under the data root" in capsys.readouterr().err
    assert [p.read_bytes() for p in labels] == before and not out.exists() and not (tmp_path / "run").exists()
