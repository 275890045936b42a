"""The data path for a GPU: frames decoded once into memory-mapped uint8 files, uint8 clips batched
and made float on the device, giving exactly the clips of the float path."""

import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ipad_detect.data import ClipDataset, FrameCache, Uint8Clips, Video, clips_to_float, load_scene
from ipad_detect.train import TrainOptions, frame_cache_folder, training_loader


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory):
    from conftest import write_scene

    root = tmp_path_factory.mktemp("data")
    write_scene(root, "S01", num_frames=20, train_videos=2)
    return root


def test_frames_are_decoded_once_into_a_mapped_file_and_read_back(scene_root, tmp_path, monkeypatch):
    video = load_scene(scene_root, "S01").training[0]
    decoded = FrameCache(32).get(video)
    mapped = FrameCache(32, tmp_path / "cache").get(video)
    path = tmp_path / "cache" / "S01" / "training-01-32px.npy"
    assert path.is_file() and isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, decoded)

    monkeypatch.setattr(Video, "read", lambda self, size: pytest.fail("decoded again"))
    np.testing.assert_array_equal(FrameCache(32, tmp_path / "cache").get(video), decoded)  # from the file


def test_a_cache_file_older_than_its_video_is_decoded_anew(scene_root, tmp_path):
    video = load_scene(scene_root, "S01").training[0]
    FrameCache(32, tmp_path).get(video)
    path = tmp_path / "S01" / "training-01-32px.npy"
    np.save(path, np.zeros((20, 32, 32, 3), np.uint8))  # garbage that the checks let through ...
    os.utime(path, (1, 1))  # ... but older than the frames
    np.testing.assert_array_equal(FrameCache(32, tmp_path).get(video), FrameCache(32).get(video))


def test_uint8_batches_made_float_are_the_float_batches_in_the_same_order(scene_root, tmp_path):
    videos = load_scene(scene_root, "S01").training
    clips = ClipDataset(videos, 32, phase_bins=10, cache=FrameCache(32, tmp_path))
    before = DataLoader(clips, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(3))
    now = training_loader(Uint8Clips(clips), 4, torch.device("cpu"), generator=torch.Generator().manual_seed(3))
    seen = 0
    for (expected, expected_targets), (batch, targets) in zip(before, now, strict=True):
        assert batch.dtype == torch.uint8
        assert torch.equal(clips_to_float(batch), expected) and torch.equal(targets, expected_targets)
        seen += len(batch)
    assert seen == len(clips) == 10


def test_the_frame_cache_is_never_inside_the_data(scene_root, tmp_path):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert frame_cache_folder(scene_root, tmp_path / "run", TrainOptions(), cpu) is None  # in memory on a CPU
    assert frame_cache_folder(scene_root, tmp_path / "run", TrainOptions(), cuda) == tmp_path / "run" / "frames"
    with pytest.raises(ValueError, match="lies inside the data root"):
        frame_cache_folder(scene_root, None, TrainOptions(frame_cache=scene_root / "S01" / "cache"), cpu)
