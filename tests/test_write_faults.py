"""Outputs that fail while they are written (a disk that fills up): one line, nothing of value lost.

The output check before the work (`--out` under a file, read-only) cannot see a disk that fills
during the work, so the writers themselves turn the OSError into a one-line error (issue 15).
"""
import errno

import pytest
import torch

from ipad_detect import checkpoint as checkpoint_module
from ipad_detect import report as report_module
from ipad_detect.checkpoint import CheckpointWriteError, save_checkpoint
from ipad_detect.cli import main
from ipad_detect.config import get_config


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_checkpoint_on_a_full_disk_is_one_error_and_the_earlier_one_is_kept(tmp_path, monkeypatch):
    run = tmp_path / "run"
    model = torch.nn.Linear(3, 2)
    save_checkpoint(run, model, "clip-nn", get_config("tiny"), 1)
    monkeypatch.setattr(checkpoint_module, "save_model", _disk_full)
    with pytest.raises(CheckpointWriteError, match=r"epoch-0002 could not be written \(No space left on device\)"):
        save_checkpoint(run, model, "clip-nn", get_config("tiny"), 2)
    assert sorted(p.name for p in run.iterdir()) == ["epoch-0001"]  # no temporary left behind
    assert (run / "epoch-0001" / "config.json").is_file()


def test_training_on_a_full_disk_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from conftest import write_scene

    write_scene(tmp_path / "data", "S01", num_frames=20, train_videos=1)
    monkeypatch.setattr(checkpoint_module, "save_model", _disk_full)
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tmp_path / "data"), "--scene", "S01", "--model", "clip-nn",
                 "--config", "tiny", "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "could not be written (No space left on device)" in err and err.count("\n") == 1, err
    assert not list(run.glob(".tmp-*"))


def test_a_report_on_a_full_disk_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from test_report import evaluation_json

    evaluation, _ = evaluation_json(tmp_path / "evaluation.json", "S01")
    monkeypatch.setattr(report_module.Table, "write", _disk_full)
    assert main(["report", "--out", str(tmp_path / "rep"), str(evaluation)]) == 2
    err = capsys.readouterr().err
    assert "could not be written (No space left on device)" in err and err.count("\n") == 1, err


def test_a_scene_stage_that_cannot_be_written_leaves_no_temporary(tmp_path, monkeypatch):
    from ipadgen import writer

    monkeypatch.setattr(writer, "write_json", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        writer.SceneWriter(tmp_path, "S", {"spec": {"name": "S"}})
    assert list(tmp_path.iterdir()) == []  # no .S.partial.new-<host>-<pid> left behind


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


@pytest.mark.parametrize("argv", [
    ["train", "--data", "{tmp}/data", "--scene", "S01", "--out", "{tmp}/run"],
    ["evaluate", "--data", "{tmp}/data", "--scene", "S01", "--checkpoint", "{tmp}/nowhere", "--out", "{tmp}/e.json"],
    ["report", "--out", "{tmp}/rep", "{tmp}/nowhere.json"],
])
def test_a_read_only_output_is_refused_before_the_work(tmp_path, monkeypatch, capsys, argv):
    """Root ignores file modes, so the read-only file system is simulated where the check probes it."""
    import tempfile

    from conftest import write_scene

    write_scene(tmp_path / "data", "S01", num_frames=20, train_videos=1)
    monkeypatch.setattr(tempfile, "TemporaryFile", _read_only)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "cannot be written (Read-only file system)" in err and err.count("\n") == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_report_under_a_file_is_refused_before_the_work(tmp_path, capsys):
    (tmp_path / "a-file").write_text("keep me")
    assert main(["report", "--out", str(tmp_path / "a-file" / "rep"), str(tmp_path / "nowhere.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot be written (" in err and "is a file, not a folder" in err and err.count("\n") == 1, err
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_a_read_only_render_output_is_one_line(tmp_path, monkeypatch, capsys):
    import tempfile

    from ipadgen.cli import main as ipadgen_main

    monkeypatch.setattr(tempfile, "TemporaryFile", _read_only)
    assert ipadgen_main(["render", "--device", "lifter", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot be written (Read-only file system)" in err and err.count("\n") == 1, err


def test_an_evaluation_on_a_full_disk_prints_its_figures_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    from conftest import write_scene

    from ipadgen import contract

    write_scene(tmp_path / "data", "S01", num_frames=20, train_videos=1)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "data"), "--scene", "S01", "--model", "clip-nn",
                 "--config", "tiny", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(contract.os, "replace", _disk_full)  # the disk fills while the result is written
    out = tmp_path / "eval" / "x.json"
    assert main(["evaluate", "--data", str(tmp_path / "data"), "--scene", "S01", "--checkpoint", str(run),
                 "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "S01: frame AUC" in captured.out  # the result is not lost with the file
    assert "could not be written (No space left on device)" in captured.err and captured.err.count("\n") == 1
    assert list(out.parent.iterdir()) == []  # neither the file nor its temporary


def test_any_verb_that_runs_out_of_room_is_one_line_and_other_os_errors_stay_tracebacks(monkeypatch, capsys):
    from ipad_detect import cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/scores.csv")

    def broken(args):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(cli, "_run_report", full)
    assert main(["report", "x.json", "--out", "rep"]) == 2
    err = capsys.readouterr().err
    assert "runs/x/scores.csv could not be written (No space left on device)" in err and err.count("\n") == 1
    monkeypatch.setattr(cli, "_run_report", broken)
    with pytest.raises(OSError, match="Bad file descriptor"):  # a bug, not the disk: its traceback is kept
        main(["report", "x.json", "--out", "rep"])


def test_a_render_that_runs_out_of_room_is_one_line_saying_how_to_resume(tmp_path, monkeypatch, capsys):
    from ipadgen.cli import main as ipadgen_main
    from ipadgen.render import run as render_run

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / ".x.partial" / "007.jpg"))

    monkeypatch.setattr(render_run, "render_scene", full)
    assert ipadgen_main(["render", "--device", "lifter", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "007.jpg could not be written (No space left on device)" in err and "rerun the same command" in err
    assert err.count("\n") == 1, err
