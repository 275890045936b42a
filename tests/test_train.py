import dataclasses

import numpy as np
import pytest
import torch

from ipad_detect.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from ipad_detect.config import get_config
from ipad_detect.data import FrameCache, load_scene, read_frames
from ipad_detect.evaluate import evaluate_scene
from ipad_detect.scoring import score_videos
from ipad_detect.train import TrainOptions, epoch_clips, parse_scenes, static_frame_mse, train

TINY = get_config("tiny")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    from conftest import write_scene

    root = tmp_path_factory.mktemp("small")
    write_scene(root, "S01", num_frames=20, train_videos=1)  # 5 clips per video
    return root


def test_tiny_full_model_lowers_its_loss_and_round_trips(small_root, tmp_path):
    torch.set_num_threads(2)
    options = TrainOptions(kind="full", epochs=2, batch_size=2, lr=1e-3, max_clips=4, progress=False)
    result = train(small_root, ["S01"], TINY, tmp_path / "run", options)
    assert len(result.epoch_losses) == 2 and result.epoch_losses[1] < result.epoch_losses[0]
    assert len(result.epoch_recon) == 2 and all(0 < r < t for r, t in zip(result.epoch_recon, result.epoch_losses))
    assert result.checkpoint.name == "epoch-0002" and result.cycle_lengths["S01"] == pytest.approx(12, rel=1e-3)

    videos = load_scene(small_root, "S01").testing[:1]
    before = score_videos(result.model, "full", TINY, videos, cycle_length=12.0, progress=False)
    loaded = load_checkpoint(tmp_path / "run")  # the run folder resolves to its newest epoch
    assert (loaded.kind, loaded.config, loaded.epoch) == ("full", TINY, 2)
    assert loaded.info["cycle_length"] == pytest.approx(12, rel=1e-3)
    after = score_videos(loaded.model, loaded.kind, loaded.config, videos, cycle_length=12.0, progress=False)
    np.testing.assert_array_equal(before[0].psnr, after[0].psnr)
    np.testing.assert_array_equal(before[0].phase_error, after[0].phase_error)
    assert before[0].phase_error is not None and len(before[0].psnr) == 5


def test_resume_continues_from_the_saved_epoch(small_root, tmp_path):
    # 3 of 5 clips per epoch
    options = TrainOptions(kind="conae", epochs=2, batch_size=2, lr=1e-3, max_clips=3, seed=3, progress=False)
    straight = train(small_root, ["S01"], TINY, tmp_path / "straight", options)

    interrupted = TrainOptions(**{**options.__dict__, "epochs": 1})
    first = train(small_root, ["S01"], TINY, tmp_path / "resumed", interrupted)
    assert first.checkpoint.name == "epoch-0001"
    resumed = train(small_root, ["S01"], TINY, tmp_path / "resumed", options)
    assert len(resumed.epoch_losses) == 1  # only epoch 2 ran
    assert resumed.epoch_losses[0] == pytest.approx(straight.epoch_losses[1], rel=1e-6)
    assert find_checkpoint(tmp_path / "resumed").name == "epoch-0002"
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0, msg=name)
    # the result still tells the whole training: both epochs, the first session's time included
    assert [e["epoch"] for e in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0] and resumed.seconds > first.seconds > 0
    assert resumed.last_recon == pytest.approx(straight.last_recon, rel=1e-6)
    again = train(small_root, ["S01"], TINY, tmp_path / "resumed", options)  # finished: no epoch runs
    assert again.epoch_losses == [] and again.history == resumed.history
    assert again.static_frame_mse == pytest.approx(straight.static_frame_mse)

    with pytest.raises(ValueError, match="differs from this run's 'memae'"):
        train(small_root, ["S01"], TINY, tmp_path / "resumed", TrainOptions(kind="memae", epochs=3, progress=False))


def test_a_resume_with_other_settings_is_refused_naming_them(small_root, tmp_path):
    options = TrainOptions(kind="conae", epochs=1, batch_size=2, lr=1e-3, max_clips=3, progress=False)
    train(small_root, ["S01"], TINY, tmp_path / "run", options)
    for change, named in [({"lr": 0.5}, "lr 0.001 -> 0.5"), ({"seed": 4}, "seed 0 -> 4"),
                          ({"max_clips": 4}, "max_clips 3 -> 4")]:
        with pytest.raises(ValueError, match=named):
            changed = TrainOptions(**{**options.__dict__, "epochs": 2, **change})
            train(small_root, ["S01"], TINY, tmp_path / "run", changed)
    assert find_checkpoint(tmp_path / "run").name == "epoch-0001"  # nothing was trained or written


def test_a_damaged_newest_checkpoint_is_skipped_and_the_resume_redoes_its_epoch(small_root, tmp_path, capsys):
    options = TrainOptions(kind="conae", epochs=2, batch_size=2, lr=1e-3, max_clips=3, seed=3, progress=False)
    straight = train(small_root, ["S01"], TINY, tmp_path / "run", options)
    weights = tmp_path / "run" / "epoch-0002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # a disk that filled up mid-write
    stale = tmp_path / "run" / ".tmp-epoch-0003-4194305"  # left by a killed run (no such process)
    stale.mkdir()
    resumed = train(small_root, ["S01"], TINY, tmp_path / "run", options)
    assert "skipping the damaged checkpoint" in capsys.readouterr().out
    assert len(resumed.epoch_losses) == 1
    assert resumed.epoch_losses[0] == pytest.approx(straight.epoch_losses[1], rel=1e-6)
    assert load_checkpoint(tmp_path / "run").epoch == 2 and not stale.exists()


def test_static_frame_mse_is_the_error_of_each_scenes_mean_frame(small_root):
    def pixels(video):
        return read_frames(video.frame_paths, 32).astype(np.float64) / 127.5 - 1

    def mean_frame_error(frames):
        return np.mean((frames - frames.mean(axis=0)) ** 2)

    videos = load_scene(small_root, "S01").testing[:2]  # normal, and one that turns red
    both = np.concatenate([pixels(v) for v in videos])
    assert static_frame_mse(videos, FrameCache(32)) == pytest.approx(mean_frame_error(both), rel=1e-6)
    apart = [videos[0], dataclasses.replace(videos[1], scene="S02")]  # two scenes: each its own mean frame
    separate = (mean_frame_error(pixels(videos[0])) + mean_frame_error(pixels(videos[1]))) / 2  # equal lengths
    assert separate < mean_frame_error(both)
    assert static_frame_mse(apart, FrameCache(32)) == pytest.approx(separate, rel=1e-6)


def test_max_clips_draws_a_fresh_reproducible_subset_every_epoch():
    clips = list(range(20))
    assert epoch_clips(clips, None, seed=0, epoch=0) is clips and epoch_clips(clips, 20, seed=0, epoch=0) is clips
    draws = [list(epoch_clips(clips, 8, seed=1, epoch=e)) for e in range(6)]
    assert all(len(d) == len(set(d)) == 8 for d in draws)
    assert len({tuple(d) for d in draws}) == 6  # another subset every epoch
    assert set().union(*draws) == set(clips)  # over the epochs every clip is seen
    assert list(epoch_clips(clips, 8, seed=1, epoch=3)) == draws[3]  # a resumed run draws the same
    assert list(epoch_clips(clips, 8, seed=2, epoch=3)) != draws[3]
    with pytest.raises(ValueError, match="max clips 0 is not allowed"):
        train("unused", ["S01"], TINY, None, TrainOptions(max_clips=0, progress=False))


def test_checkpoint_folders_are_complete_and_pruned(tmp_path):
    model = torch.nn.Linear(2, 2)
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path, model, "conae", TINY, epoch, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "epoch-0003"]
    assert sorted(p.name for p in (tmp_path / "epoch-0003").iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing")


def test_phase_nn_finds_the_wrong_colour(ipad_root, tmp_path):
    result = train(ipad_root, ["S01"], TINY, tmp_path / "nn", TrainOptions(kind="phase-nn", progress=False))
    loaded = load_checkpoint(tmp_path / "nn")
    scene = load_scene(ipad_root, "S01")
    scores = score_videos(loaded.model, "phase-nn", TINY, scene.testing, cycle_length=None, progress=False)
    evaluation = evaluate_scene(scores)
    assert evaluation.per_video_auc["02"] > 0.95  # a red square is far from every white one at that phase
    assert len(result.model.bank) == 96  # 2 training videos x 48 frames

    # Real-IPAD-like scene: no period files, the cycle length is estimated and test phases come
    # from the nearest training frame.
    real = train(ipad_root, ["R01"], TINY, None, TrainOptions(kind="phase-nn", progress=False))
    assert real.cycle_lengths["R01"] == pytest.approx(12, rel=0.02)
    real_scores = score_videos(real.model, "phase-nn", TINY, load_scene(ipad_root, "R01").testing, None,
                               progress=False)
    assert evaluate_scene(real_scores).per_video_auc["02"] > 0.95


def test_scene_lists():
    assert parse_scenes(["S01,S02", "S03"]) == ["S01", "S02", "S03"]
    with pytest.raises(ValueError, match="no scene given"):
        parse_scenes([" , "])
