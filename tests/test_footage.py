"""Video files in place of frame folders, `ipad-detect import`, and the IPAD release's label file."""
import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import write_scene

from ipad_detect.cli import main
from ipad_detect.config import get_config
from ipad_detect.data import DataError, load_scene, read_frames, release_labels_path, video_from_frame_dir
from ipad_detect.evaluate import evaluate_scene
from ipad_detect.footage import Crop, FootageError, constant_rate_picks, decode_video, irregular_rate
from ipad_detect.scoring import score_videos
from ipad_detect.train import TrainOptions, train

TINY = get_config("tiny")


def write_mp4(path, frames_rgb, fps=10.0):
    """Frames as an mp4 file through opencv (mp4v: in every opencv-python build)."""
    height, width = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def as_video_files(scene_dir):
    """Replace every frame folder of the scene by an mp4 file of the same frames."""
    for folder in sorted(scene_dir.glob("*/frames/*")):
        frames = read_frames(sorted(folder.glob("*.jpg")), 48)
        write_mp4(folder.with_suffix(".mp4"), frames)
        shutil.rmtree(folder)


@pytest.fixture
def scene_root(tmp_path):
    write_scene(tmp_path / "jpg", "S01", num_frames=40)
    return tmp_path / "jpg"


def test_a_scene_of_video_files_reads_and_scores_like_its_frames(scene_root, tmp_path):
    files = tmp_path / "mp4"
    shutil.copytree(scene_root, files)
    as_video_files(files / "S01")
    jpg, mp4 = load_scene(scene_root, "S01"), load_scene(files, "S01")
    assert [v.name for v in mp4.testing] == ["01", "02", "03"] and mp4.testing[0].file.suffix == ".mp4"
    for a, b in zip(jpg.testing + jpg.training, mp4.testing + mp4.training):
        assert a.num_frames == b.num_frames and np.array_equal(a.labels, b.labels) if a.labels is not None else True
        difference = np.abs(a.read(48).astype(int) - b.read(48).astype(int)).mean()
        assert difference < 4, difference  # two lossy codecs of the same pictures
    aucs = []
    for root, scene in ((scene_root, jpg), (files, mp4)):
        model = train(root, ["S01"], TINY, None, TrainOptions(kind="clip-nn", progress=False)).model
        aucs.append(evaluate_scene(score_videos(model, "clip-nn", TINY, scene.testing, None, progress=False)).auc)
    assert aucs[1] == pytest.approx(aucs[0], abs=0.05) and aucs[1] > 0.8, aucs


def test_score_takes_a_video_file(scene_root, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(scene_root), "--scene", "S01", "--config", "tiny", "--model", "clip-nn",
                 "--out", str(run), "--quiet"]) == 0
    video = tmp_path / "cam.mp4"
    frames = video_from_frame_dir(scene_root / "S01" / "testing" / "frames" / "02").frame_paths
    write_mp4(video, read_frames(frames, 48))
    assert main(["score", str(video), "--checkpoint", str(run), "--out", str(tmp_path / "scores"), "--quiet"]) == 0
    rows = (tmp_path / "scores" / "cam-scores.csv").read_text().splitlines()
    assert len(rows) == 1 + 40 - 15  # a score per clip centre


def test_a_folder_and_a_file_of_one_video_is_refused(scene_root):
    folder = scene_root / "S01" / "training" / "frames" / "01"
    write_mp4(folder.with_suffix(".mp4"), read_frames(sorted(folder.glob("*.jpg")), 48))
    with pytest.raises(DataError, match="holds video 01 twice"):
        load_scene(scene_root, "S01")


def test_import_writes_numbered_frames_and_a_record(tmp_path, capsys):
    frames = np.stack([np.full((60, 80, 3), 10 * i, np.uint8) for i in range(20)])
    write_mp4(tmp_path / "a.mp4", frames)
    write_mp4(tmp_path / "b.mp4", frames[:12])
    root = tmp_path / "data"
    assert main(["import", str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "--data", str(root), "--scene", "R05",
                 "--split", "training", "--size", "32", "--crop", "10,0,60,60", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "a.mp4 -> " in out and "20 frames at 10 fps, 32x32" in out
    names = sorted(p.name for p in (root / "R05" / "training" / "frames" / "01").iterdir())
    assert names == [f"{i:03d}.jpg" for i in range(20)]
    assert len(list((root / "R05" / "training" / "frames" / "02").iterdir())) == 12
    scene = load_scene(root, "R05", splits=("training",))
    assert [v.num_frames for v in scene.training] == [20, 12] and scene.training[0].read(32).shape == (20, 32, 32, 3)
    record = json.loads((root / "R05" / "imported.json").read_text())["training"]
    assert [r["video"] for r in record] == ["01", "02"] and record[0]["crop"] == [10, 0, 60, 60]
    # a second import continues the numbering; --fps resamples by timestamps
    assert main(["import", str(tmp_path / "a.mp4"), "--data", str(root), "--scene", "R05", "--split", "training",
                 "--fps", "5", "--size", "32", "--quiet"]) == 0
    assert "10 fps asked as 5 fps: resampled" in capsys.readouterr().out
    assert len(list((root / "R05" / "training" / "frames" / "03").iterdir())) == 10


@pytest.mark.parametrize("make, args, message", [
    (lambda p: p.write_text("not a video"), [], "opencv cannot open"),
    (lambda p: write_mp4(p, np.zeros((3, 40, 40, 3), np.uint8)), ["--crop", "0,0,50,40"],
     "reaches outside the 40x40 picture"),
    (lambda p: write_mp4(p, np.zeros((3, 40, 40, 3), np.uint8)), ["--crop", "0,0,40"], "is not x,y,w,h"),
    (lambda p: None, [], "does not exist"),
    (lambda p: write_mp4(p, np.zeros((3, 40, 40, 3), np.uint8)), ["--scene", "../up"], "is not allowed"),
])
def test_import_errors_are_one_line_and_write_nothing(tmp_path, capsys, make, args, message):
    video = tmp_path / "in.mp4"
    make(video)
    scene = ["--scene", "R05"] if "--scene" not in args else []
    assert main(["import", str(video), "--data", str(tmp_path / "data"), *scene, "--split", "testing", *args,
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp_path / "data").rglob("*.jpg"))


def test_a_stream_with_no_frames_is_an_error(tmp_path):
    video = tmp_path / "empty.mp4"
    write_mp4(video, np.zeros((0, 40, 40, 3), np.uint8))
    with pytest.raises(FootageError, match="no frames|cannot open"):
        decode_video(video)


def test_a_variable_frame_rate_is_found_and_resampled_to_a_constant_one():
    regular = np.arange(10) * 100.0
    assert not irregular_rate(regular)
    bursty = np.array([0, 33, 66, 100, 300, 333, 366, 400, 600, 633])  # a camera that drops frames
    assert irregular_rate(bursty)
    picks = constant_rate_picks(bursty.astype(float), 10.0)  # one frame every 100 ms, the newest shown by then
    assert picks.tolist() == [0, 3, 3, 4, 7, 7, 8]  # at 0, 100, … 600 ms


def test_crop_parsing():
    assert Crop.parse("1,2,3,4") == Crop(1, 2, 3, 4)
    with pytest.raises(FootageError, match="w and h at least 1"):
        Crop.parse("0,0,0,4")


def test_a_scene_with_only_the_release_label_file_evaluates_the_same(scene_root, tmp_path):
    scene = load_scene(scene_root, "S01")
    release = tmp_path / "release"
    shutil.copytree(scene_root, release)
    joined = np.concatenate([v.labels for v in scene.testing])[None]
    np.save(release_labels_path(release / "S01"), joined)
    shutil.rmtree(release / "S01" / "test_label")
    read = load_scene(release, "S01")
    for a, b in zip(scene.testing, read.testing):
        assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(video_from_frame_dir(release / "S01" / "testing" / "frames" / "02").labels,
                          scene.testing[1].labels)
    model = train(scene_root, ["S01"], TINY, None, TrainOptions(kind="clip-nn", progress=False)).model
    both = [evaluate_scene(score_videos(model, "clip-nn", TINY, s.testing, None, progress=False)).auc
            for s in (scene, read)]
    assert both[0] == both[1] and both[0] > 0.8
    np.save(release_labels_path(release / "S01"), joined[:, :-3])
    with pytest.raises(DataError, match="one label per test frame"):
        load_scene(release, "S01")
