import csv
import json
import subprocess
import sys

import pytest

from ipad_detect.cli import main, reconstruction_summary

VERBS = ("train", "pretrain", "evaluate", "score")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from conftest import write_scene

    root = tmp_path_factory.mktemp("cli")
    write_scene(root, "S01", num_frames=20, train_videos=1)
    write_scene(root, "S02", num_frames=20, train_videos=1)
    return root


@pytest.mark.parametrize("verb, option", [("train", "--max-clips"), ("pretrain", "comma list"),
                                           ("evaluate", "--norm <scene|video>"), ("score", "VIDEO"),
                                           ("import", "--crop X,Y,W,H"), ("train", "[default: 50]")])
def test_every_verb_has_help(verb, option, capsys):
    assert main([verb, "--help"]) == 0
    assert option in " ".join(capsys.readouterr().out.replace("│", " ").split())  # rich's boxes aside


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "ipad_detect.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and all(verb in done.stdout for verb in VERBS)


def test_train_evaluate_score_on_fixture_data(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--scene", "S01", "--config", "tiny", "--epochs", "1",
                 "--max-clips", "4", "--batch-size", "2", "--out", str(run), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "checkpoint: " in printed and (run / "epoch-0001" / "model.safetensors").is_file()
    assert "each scene's mean frame would give" in printed and "in each frame's light" in printed

    report = tmp_path / "eval.json"
    assert main(["evaluate", "--data", str(data), "--scene", "S01", "--checkpoint", str(run), "--out", str(report),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "S01: frame AUC" in printed and "video 03: one class only" in printed
    result = json.loads(report.read_text())
    assert 0.0 <= result["auc"] <= 1.0 and result["phase_weight"] == 0.0 and result["cycle_length"] == pytest.approx(12)
    assert set(result["videos"]) == {"01", "02", "03"} and result["per_video_auc"]["03"] is None
    assert len(result["videos"]["02"]["anomaly_score"]) == 5 == len(result["videos"]["02"]["labels"])

    assert main(["score", str(data / "S01" / "testing" / "frames" / "02"), "--checkpoint", str(run),
                 "--out", str(tmp_path / "scores"), "--quiet"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "scores" / "S01-testing-02-scores.csv")))
    assert [int(r["frame"]) for r in rows] == [8, 9, 10, 11, 12]
    assert [r["label"] for r in rows] == ["1"] * 5  # labels found next to the video
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 and r["phase_error"] != "" for r in rows)
    assert (tmp_path / "scores" / "S01-testing-02-scores.png").read_bytes()[:4] == b"\x89PNG"


def test_reconstruction_summary_notes_only_a_model_not_below_the_mean_frame():
    assert "note" not in reconstruction_summary(0.0008, 0.0011)
    assert "note: not below the mean frame" in reconstruction_summary(0.0018, 0.0011)
    assert "note: not below the mean frame" in reconstruction_summary(0.0008, 0.0011, 0.0005)  # its light


def test_pretrain_clip_nn_on_two_scenes_and_phase_nn_only_on_one(data, tmp_path, capsys):
    run = tmp_path / "nn"
    assert main(["pretrain", "--data", str(data), "--scene", "S01,S02", "--model", "clip-nn", "--config", "tiny",
                 "--out", str(run), "--quiet"]) == 0
    assert "on S01, S02" in capsys.readouterr().out
    assert main(["pretrain", "--data", str(data), "--scene", "S01,S02", "--model", "phase-nn", "--config", "tiny",
                 "--out", str(tmp_path / "phase"), "--quiet"]) == 2
    assert "phase-nn banks one scene's cycle" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(data), "--scene", "S02", "--checkpoint", str(run), "--norm", "video",
                 "--out", str(tmp_path / "e.json"), "--quiet"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["norm"] == "video"


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--data", "{data}", "--scene", "S09", "--checkpoint", "{data}"],
     "S09 does not exist; scenes under"),
    (["evaluate", "--data", "{data}", "--scene", "S01", "--checkpoint", "{data}/nowhere"], "no checkpoint at"),
    (["train", "--data", "{data}", "--scene", "S01,S02", "--config", "tiny"], "use `ipad-detect pretrain`"),
    (["train", "--data", "{data}", "--scene", "S01", "--epochs", "0"], "--epochs 0 is not allowed"),
    (["train", "--data", "{data}/missing", "--scene", "S01"], "scenes under"),
    (["score", "{data}/S01/testing/frames/07", "--checkpoint", "{data}"], "is not a folder of frames"),
])
def test_bad_input_exits_2_with_one_line(data, argv, message, capsys):
    assert main([a.format(data=data) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_choices_and_options_are_refused_in_one_line(capsys):
    assert main(["train", "--data", "x", "--scene", "S01", "--model", "resnet"]) == 2
    err = capsys.readouterr().err
    assert "ipad-detect train: error: --model: invalid choice: 'resnet' (choose from 'full'," in err
    assert err.count("\n") == 1
    assert main(["train", "--data", "x", "--scene", "S01", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "ipad-detect train: error: No such option: --bogus" in err and err.count("\n") == 1
    assert main(["watch", "cam", "--checkpoint", "c", "--every", "0"]) == 2
    assert "--every 0 is not allowed; it must be at least 1" in capsys.readouterr().err


def test_version_names_the_installed_distribution(capsys):
    from importlib import metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ipad-detect {metadata.version('ipad-vad')}\n"


def test_calibrate_takes_several_videos_after_one_normal():
    from ipad_detect.cli import _spread

    assert _spread(["calibrate", "--normal", "a", "b", "--quiet", "--normal", "c"]) == [
        "calibrate", "--normal", "a", "--normal", "b", "--quiet", "--normal", "c"]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_exits_2(data, capsys):
    assert main(["train", "--data", str(data), "--scene", "S01", "--device", "cuda"]) == 2
    assert "torch sees no CUDA GPU; use --device cpu" in capsys.readouterr().err


def test_score_of_a_video_shorter_than_a_clip_exits_2(data, tmp_path, capsys):
    import shutil

    short = tmp_path / "short"
    short.mkdir()
    for i in range(10):
        shutil.copy(data / "S01" / "testing" / "frames" / "01" / f"{i:03d}.jpg", short / f"{i:03d}.jpg")
    assert main(["pretrain", "--data", str(data), "--scene", "S01", "--model", "phase-nn", "--config", "tiny",
                 "--out", str(tmp_path / "nn"), "--quiet"]) == 0
    assert main(["score", str(short), "--checkpoint", str(tmp_path / "nn"), "--out", str(tmp_path)]) == 2
    assert "a video of 10 frames is shorter than one clip of 16 frames" in capsys.readouterr().err


def test_training_that_diverges_stops_with_a_clear_error_and_writes_no_checkpoint(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--scene", "S01", "--config", "tiny", "--max-clips", "4",
                 "--batch-size", "2", "--out", str(run), "--quiet", "--epochs", "2", "--lr", "1e9"]) == 2
    error = capsys.readouterr().err
    assert "training diverged" in error and "Lower --lr" in error and "no checkpoint was written" in error
    assert not any(p.name.startswith("epoch-") for p in run.iterdir()) if run.exists() else True


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "{data}", "--scene", "S01", "--out", "{file}"], "--out {file} cannot be written"),
    (["evaluate", "--data", "{data}", "--scene", "S01", "--checkpoint", "{data}/nowhere", "--out", "{file}/e.json"],
     "--out {file}/e.json cannot be written"),
    (["evaluate", "--data", "{data}", "--scene", "S01", "--checkpoint", "{data}/nowhere", "--out", "{data}"],
     "is a folder; give a file name"),
    (["evaluate", "--data", "{data}", "--scene", "S01", "--checkpoint", "{data}/nowhere", "--phase-weight", "5"],
     "--phase-weight 5.0 is not allowed"),
    (["score", "{data}/S01/testing/frames/01", "--checkpoint", "{data}/nowhere", "--out", "{file}"],
     "--out {file} cannot be written"),
    (["estimate-period", "--data", "{data}", "--scene", "S01", "--out", "{file}/est"], "cannot be written"),
    (["train", "--data", "{data}", "--scene", "S01", "--out", "{data}/S01/run"], "lies inside --data"),
    (["evaluate", "--data", "{data}", "--scene", "S01", "--checkpoint", "{data}/nowhere", "--out", "{data}/e.json"],
     "lies inside --data"),
    (["finetune", "--data", "{data}", "--real", "S01", "--from", "{data}/nowhere", "--out", "{data}/ft"],
     "lies inside --data"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(data, tmp_path, argv, message, capsys):
    """Checked first: no checkpoint is even looked for (`nowhere` would be the error otherwise)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    assert main([a.format(data=data, file=a_file) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message.format(file=a_file) in err and err.count("\n") == 1
    assert a_file.read_text() == "not a folder"


@pytest.fixture(scope="module")
def reference_run(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(["pretrain", "--data", str(data), "--scene", "S01", "--model", "clip-nn", "--config", "tiny",
                 "--out", str(run), "--quiet"]) == 0
    return run / "epoch-0001"


@pytest.mark.parametrize("damage, message", [
    (lambda c: (c / "config.json").write_text("{not json"), "config.json cannot be read as a checkpoint description"),
    (lambda c: (c / "config.json").write_text(json.dumps({**json.loads((c / "config.json").read_text()),
                                                           "kind": "full"})),
     "model.safetensors does not hold the weights of the 'full' model"),
    (lambda c: (c / "config.json").write_text(json.dumps({**json.loads((c / "config.json").read_text()),
                                                           "config": {"name": "tiny", "clip_len": 0}})),
     "config.json does not describe a model"),
    (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:100]),
     "model.safetensors cannot be read as safetensors weights"),
    (lambda c: (c / "model.safetensors").write_bytes(bytes(range(256)) * 8), "cannot be read as safetensors weights"),
])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(data, reference_run, tmp_path, damage, message, capsys):
    import shutil

    checkpoint = tmp_path / "epoch-0001"
    shutil.copytree(reference_run, checkpoint)
    damage(checkpoint)
    assert main(["evaluate", "--data", str(data), "--scene", "S01", "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "e.json"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(checkpoint) in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_internal_bug_keeps_its_traceback(monkeypatch):
    import ipad_detect.cli as cli

    def broken(args):
        raise TypeError("a bug, not bad input")

    monkeypatch.setattr(cli, "_run_report", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["report", "x.json", "--out", "rep"])
