"""The evaluation protocol against values worked out by hand (see the comments)."""

import numpy as np
import pytest

from ipad_detect.evaluate import VideoScores, dataset_auc, evaluate_scene, frame_auc, psnr, trim_labels


def _video(name, centre_labels, psnr_values, phase_error=None):
    """Full-length labels: the trimmed-away head (8) and tail (7) are set to the opposite class of
    what dominates, so forgetting the trimming changes the answer (or the lengths)."""
    n = len(centre_labels) + 15
    labels = np.ones(n, np.uint8)
    labels[8:n - 7] = centre_labels
    return VideoScores(name, labels, np.array(psnr_values, float),
                       None if phase_error is None else np.array(phase_error, float))


def _three_videos(with_phase=False):
    # A: 18 frames -> 3 clips; B: 19 frames -> 4 clips; C: 18 frames, all normal.
    return [
        _video("01", [0, 1, 1], [30, 20, 25], [0, 4, 2] if with_phase else None),
        _video("02", [0, 0, 1, 0], [40, 36, 32, 38], [1, 0, 8, 0] if with_phase else None),
        _video("03", [0, 0, 0], [33, 34, 35], [0, 0, 0] if with_phase else None),
    ]


def test_psnr_of_centre_frames_on_minus_one_to_one():
    target = np.zeros((2, 3, 4, 4))
    recon = np.stack([np.full((3, 4, 4), 0.1), np.full((3, 4, 4), -1.0)])
    np.testing.assert_allclose(psnr(recon, target), [20.0, 0.0])  # mse 0.01 and 1


def test_trimming_drops_first_8_and_last_7():
    labels = np.arange(40)
    assert trim_labels(labels).tolist() == list(range(8, 33))  # 40 - 15 = 25 clips


def test_scene_normalised_auc_by_hand():
    result = evaluate_scene(_three_videos(), norm="scene")
    # scene min 20, max 40 -> A [.5, 0, .25], B [1, .8, .6, .9], C [.65, .7, .75]
    np.testing.assert_allclose(result.normality["02"], [1, 0.8, 0.6, 0.9])
    # normal: .5 1 .8 .9 .65 .7 .75 ; anomalous: 0 .25 .6 -> 21 pairs, only (.5 < .6) is wrong
    assert result.auc == pytest.approx(20 / 21)
    assert result.per_video_auc == {"01": 1.0, "02": 1.0, "03": None}
    np.testing.assert_array_equal(result.labels["01"], [0, 1, 1])


def test_video_normalisation_differs_by_hand():
    result = evaluate_scene(_three_videos(), norm="video")
    # A [1, 0, .5], B [1, .5, 0, .75], C [0, .5, 1]; anomalous 0 .5 0
    # normal 1: 3, 1: 3, .5: 2.5 (one tie), .75: 3, 0: 1 (two ties), .5: 2.5, 1: 3 -> 18 / 21
    assert result.auc == pytest.approx(18 / 21)
    assert evaluate_scene(_three_videos(), norm="scene").auc != result.auc
    assert result.per_video_auc["01"] == 1.0  # per-video ranking does not depend on the normalisation


def test_phase_error_combination_by_hand():
    result = evaluate_scene(_three_videos(with_phase=True), norm="scene", phase_weight=0.5)
    # E_p scene min 0, max 8 -> phase normality B [.875, 1, 0, 1]; recon B [1, .8, .6, .9]
    np.testing.assert_allclose(result.normality["02"], [0.9375, 0.9, 0.3, 0.95])
    assert result.auc == 1.0  # every normal frame now above every anomalous one
    period_only = evaluate_scene(_three_videos(with_phase=True), phase_weight=1.0)
    np.testing.assert_allclose(period_only.normality["01"], [1, 0.5, 0.75])


def test_bad_inputs_and_dataset_mean():
    with pytest.raises(ValueError, match="allowed: scene, video"):
        evaluate_scene(_three_videos(), norm="global")
    broken = _three_videos()
    broken[0].psnr = broken[0].psnr[:2]
    with pytest.raises(ValueError, match="video 01: 2 clip scores for 18 frames; expected 18 - 15 = 3"):
        evaluate_scene(broken)
    assert frame_auc(np.zeros(4), np.arange(4)) is None
    assert dataset_auc({"S01": 0.8, "S02": 0.6, "S03": None}) == pytest.approx(0.7)
