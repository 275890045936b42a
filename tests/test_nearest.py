"""The non-learned references (frame-nn, clip-nn, phase-nn): what each catches, and that none
reads a test video's labels or period labels."""

import shutil

import numpy as np
import pytest

from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.config import get_config
from ipad_detect.data import FrameCache, load_scene
from ipad_detect.evaluate import evaluate_scene
from ipad_detect.scoring import score_videos
from ipad_detect.train import TrainOptions, train

TINY = get_config("tiny")


@pytest.mark.parametrize("kind", ["frame-nn", "clip-nn", "phase-nn"])
def test_reference_finds_the_wrong_colour_and_round_trips(kind, ipad_root, tmp_path):
    result = train(ipad_root, ["S01"], TINY, tmp_path / kind, TrainOptions(kind=kind, progress=False))
    loaded = load_checkpoint(tmp_path / kind)
    scene = load_scene(ipad_root, "S01")
    scores = score_videos(loaded.model, kind, TINY, scene.testing, cycle_length=None, progress=False)
    assert evaluate_scene(scores).per_video_auc["02"] > 0.95  # a red square is far from every white one
    trained = score_videos(result.model, kind, TINY, scene.testing, cycle_length=None, progress=False)
    np.testing.assert_allclose(scores[0].psnr, trained[0].psnr)  # the bank survives the checkpoint


def test_clip_nn_and_phase_nn_see_a_stall_that_frame_nn_cannot(ipad_root, tmp_path):
    """Test video 01 stalls: every stalled frame is a normal-looking frame, so the nearest training
    frame is exact, while the clip around it (no motion) and the phase it is due at are not. The
    stall lasts a whole cycle, and the due phase, fitted over one cycle, follows it part of the way."""
    scene = load_scene(ipad_root, "S01")
    auc = {}
    for kind in ("frame-nn", "clip-nn", "phase-nn"):
        model = train(ipad_root, ["S01"], TINY, None, TrainOptions(kind=kind, progress=False)).model
        scores = score_videos(model, kind, TINY, scene.testing[:1], cycle_length=None, progress=False)
        auc[kind] = evaluate_scene(scores).auc
    assert auc["clip-nn"] > auc["frame-nn"] + 0.3 and auc["phase-nn"] > auc["frame-nn"] + 0.1, auc


@pytest.mark.parametrize("kind", ["frame-nn", "clip-nn"])
def test_a_training_video_is_its_own_nearest_neighbour_exactly(kind, ipad_root):
    """Each sample of a training video is in the bank: its distance is 0 (PSNR at the 100 dB cap), not
    the rounding floor of cdist's matrix product, which had ranked identical frames by their norm."""
    model = train(ipad_root, ["S01"], TINY, None, TrainOptions(kind=kind, progress=False)).model
    frames = FrameCache(TINY.image_size).get(load_scene(ipad_root, "S01").training[0])
    np.testing.assert_array_equal(model.score_video(frames, TINY.clip_len), 100.0)


def test_scores_never_read_test_period_labels(ipad_root, tmp_path):
    """Scoring a copy of the scene without its test period files gives the same scores."""
    copy = tmp_path / "root"
    shutil.copytree(ipad_root / "S01", copy / "S01")
    shutil.rmtree(copy / "S01" / "testing" / "period")
    for kind in ("phase-nn", "full"):
        options = TrainOptions(kind=kind, epochs=1, max_clips=8, progress=False)
        model = train(ipad_root, ["S01"], TINY, None, options).model
        with_labels = score_videos(model, kind, TINY, load_scene(ipad_root, "S01").testing, None, progress=False)
        without = score_videos(model, kind, TINY, load_scene(copy, "S01").testing, None, progress=False)
        for a, b in zip(with_labels, without):
            np.testing.assert_array_equal(a.psnr, b.psnr)
            if a.phase_error is not None:
                np.testing.assert_array_equal(a.phase_error, b.phase_error)
