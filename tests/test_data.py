import numpy as np
import pytest
import torch
from conftest import CYCLE_FRAMES, FRAME_SIZE
from PIL import Image

from ipad_detect.data import ClipDataset, DataError, clip_starts, cycle_length_from_labels, load_scene, read_frames


def test_reads_layout_labels_period_and_meta(ipad_root):
    scene = load_scene(ipad_root, "S01")
    assert [v.name for v in scene.training] == ["01", "02"]
    assert [v.name for v in scene.testing] == ["01", "02", "03"]
    stall, red, normal = scene.testing
    assert stall.num_frames == 48 and stall.labels.dtype == np.uint8
    assert stall.labels.sum() == 11 and red.labels.sum() == 12 and normal.labels.sum() == 0
    # structured period file (training) and (N, 2) columns (testing) both read
    train = scene.training[1]
    assert train.phase[0] == pytest.approx(0.25) and train.cycle.dtype == np.int64
    assert stall.phase[19] == pytest.approx(stall.phase[29])  # stalled phase
    assert train.meta == {"cycle_frames": CYCLE_FRAMES}
    assert scene.testing[0].frame_paths[5].name == "005.jpg"


def test_real_layout_without_period_files(ipad_root):
    scene = load_scene(ipad_root, "R01")
    assert all(v.phase is None and v.meta is None for v in scene.training + scene.testing)


def test_cycle_length_from_labels(ipad_root):
    scene = load_scene(ipad_root, "S01")
    assert cycle_length_from_labels(scene.training) == pytest.approx(CYCLE_FRAMES, rel=1e-3)
    assert cycle_length_from_labels(load_scene(ipad_root, "R01").training) is None


@pytest.mark.parametrize("delta, expected_tail", [(3, None), (-4, 1)])
def test_label_length_quirk_warns_and_aligns(make_scene, delta, expected_tail):
    scene_dir = make_scene()
    label_file = scene_dir / "test_label" / "002.npy"
    labels = np.load(label_file)
    if delta > 0:
        changed = np.concatenate([labels, np.ones(delta, np.uint8)])
    else:
        changed = labels[:delta].copy()
        changed[-1] = 1
    np.save(label_file, changed)
    with pytest.warns(UserWarning, match=r"S01/testing/frames/02 has 48 frames.*(truncated|padded)"):
        scene = load_scene(scene_dir.parent, "S01")
    aligned = scene.testing[1].labels
    assert len(aligned) == 48
    if delta > 0:
        np.testing.assert_array_equal(aligned, labels)  # the extra entries are dropped
    else:
        np.testing.assert_array_equal(aligned[len(changed):], expected_tail)  # padded with the last value
        np.testing.assert_array_equal(aligned[:len(changed)], changed)


def test_missing_scene_names_path_and_lists_scenes(ipad_root):
    with pytest.raises(DataError, match=r"S09 does not exist; scenes under .*: R01, S01, S02$"):
        load_scene(ipad_root, "S09")


def test_missing_split_folder(make_scene):
    scene_dir = make_scene()
    (scene_dir / "testing" / "frames").rename(scene_dir / "testing" / "other")
    with pytest.raises(DataError, match=r"testing/frames does not exist .*scenes under"):
        load_scene(scene_dir.parent, "S01")


def test_empty_scene(tmp_path):
    (tmp_path / "S01" / "training" / "frames").mkdir(parents=True)
    with pytest.raises(DataError, match="empty scene: .*training/frames holds no video folders"):
        load_scene(tmp_path, "S01", splits=("training",))


def test_badly_named_frames(make_scene):
    scene_dir = make_scene()
    frame_dir = scene_dir / "training" / "frames" / "01"
    (frame_dir / "005.jpg").rename(frame_dir / "frame5.jpg")
    with pytest.raises(DataError, match=r"frame5.jpg; allowed frame names: 000.jpg, 001.jpg"):
        load_scene(scene_dir.parent, "S01")
    (frame_dir / "frame5.jpg").rename(frame_dir / "5.jpg")
    with pytest.raises(DataError, match=r"5.jpg; allowed frame names"):
        load_scene(scene_dir.parent, "S01")
    (frame_dir / "5.jpg").rename(frame_dir / "050.jpg")
    with pytest.raises(DataError, match=r"without gaps; first missing index: 005"):
        load_scene(scene_dir.parent, "S01")


def test_unreadable_and_missized_frames(make_scene):
    scene_dir = make_scene()
    video = load_scene(scene_dir.parent, "S01").training[0]
    broken = video.frame_paths[7]
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"cannot read frame .*007.jpg"):
        read_frames(video.frame_paths, 32)
    Image.new("RGB", (FRAME_SIZE, FRAME_SIZE + 8)).save(broken)
    with pytest.raises(DataError, match=r"007.jpg is 48x56 but the video's first frame is 48x48"):
        read_frames(video.frame_paths, 32)


@pytest.mark.parametrize("write, message", [
    (lambda p: np.save(p, np.zeros((48, 3))), r"allowed: \(N, 2\) \[cycle, phase\]"),
    (lambda p: p.write_bytes(b"garbage, not numpy"), r"01.npy cannot be read as a numpy array"),
    (lambda p: np.save(p, np.array([{"a": 1}]), allow_pickle=True), r"01.npy cannot be read as a numpy array"),
    (lambda p: np.save(p, np.column_stack([np.zeros(48), np.full(48, np.nan)])), r"01.npy has phases outside"),
])
def test_bad_period_file_is_a_data_error_naming_it(make_scene, write, message):
    scene_dir = make_scene()
    write(scene_dir / "training" / "period" / "01.npy")
    with pytest.raises(DataError, match=message):
        load_scene(scene_dir.parent, "S01")


def test_clip_sampler_shapes_range_and_phase_targets(ipad_root):
    scene = load_scene(ipad_root, "S01")
    assert len(clip_starts(48, 16, 1)) == 33 and list(clip_starts(48, 16, 8)) == [0, 8, 16, 24, 32]
    dataset = ClipDataset(scene.training, image_size=32, clip_len=16, stride=4, phase_bins=24)
    assert len(dataset) == 2 * 9
    clip, target = dataset[10]  # video 02, start 4
    assert clip.shape == (3, 16, 32, 32) and clip.dtype == torch.float32
    assert -1.0 <= clip.min() < -0.8 and 0.8 < clip.max() <= 1.0
    video = scene.training[1]
    assert target == int(np.floor(video.phase[4 + 8] * 24))
    no_phase = ClipDataset(load_scene(ipad_root, "R01").training, image_size=32, phase_bins=24)
    assert no_phase[0][1] == -1
    with pytest.raises(DataError, match="shorter than one clip"):
        ClipDataset(scene.training, image_size=32, clip_len=64)
