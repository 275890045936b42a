"""`--compile`: the compiled model trains as the eager one does (the same losses step after step;
the weights drift apart a little, as Adam's normalised steps amplify rounding in tiny gradients),
and scores as it does.

torch.compile on this CPU builds C++ kernels with the system's g++: with a cold cache the tiny
full model (12 Swin blocks, forward and backward) compiles for 8 to 45 minutes on 2 shared cores, so
these tests compile a two-stage stand-in of it (two blocks each): the same code paths (window attention,
shifted windows, patch merge, memory, decoder, phase head), a third of the blocks."""

import numpy as np
import pytest
import torch
import typer

from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.cli import app
from ipad_detect.config import get_config
from ipad_detect.scoring import score_scene
from ipad_detect.train import TrainOptions, train

# Tiny's first two stages (a plain and a shifted block each); the last is decoded, as tiny's stage 1 is.
STAND_IN = get_config("tiny", depths=(2, 2), num_heads=(1, 2), decode_stage=None)


@pytest.mark.parametrize("argv", [
    ["train", "--data", "d", "--scene", "S01"], ["pretrain", "--data", "d", "--scene", "S01,S02"],
    ["finetune", "--real", "R01", "--from", "ckpt"], ["evaluate", "--data", "d", "--scene", "S01", "--checkpoint", "c"],
    ["score", "video", "--checkpoint", "c"],
])
def test_every_training_and_scoring_verb_takes_compile(argv):
    def parsed(args):  # the verb's options as typer parses them, without running the verb
        return typer.main.get_command(app).commands[args[0]].make_context(args[0], args[1:]).params

    assert parsed(argv + ["--compile"])["compile"]
    assert not parsed(argv)["compile"]


@pytest.mark.slow
def test_compiled_training_gives_the_eager_losses(tmp_path, capsys):
    from conftest import write_scene

    write_scene(tmp_path / "data", "S01", num_frames=20, train_videos=1)  # 5 clips
    torch.set_num_threads(2)
    runs = {}
    for compiled in (False, True):
        options = TrainOptions(kind="full", epochs=2, batch_size=2, lr=1e-3, max_clips=4, progress=False,
                               compile=compiled)
        runs[compiled] = train(tmp_path / "data", ["S01"], STAND_IN, tmp_path / f"run-{compiled}", options)
    eager, compiled = runs[False], runs[True]
    assert eager.compile_seconds is None and compiled.compile_seconds > 0
    assert "torch.compile: first training step" in capsys.readouterr().out
    np.testing.assert_allclose(compiled.epoch_losses, eager.epoch_losses, rtol=1e-4)
    np.testing.assert_allclose(compiled.epoch_recon, eager.epoch_recon, rtol=1e-4)


@pytest.mark.slow
def test_compiled_scoring_gives_the_eager_scores(tmp_path, capsys):
    from conftest import write_scene

    write_scene(tmp_path / "data", "S01", num_frames=20, train_videos=1)
    options = TrainOptions(kind="full", epochs=1, batch_size=2, lr=1e-3, max_clips=2, progress=False)
    train(tmp_path / "data", ["S01"], STAND_IN, tmp_path / "run", options)
    checkpoint = load_checkpoint(tmp_path / "run")
    eager, _ = score_scene(checkpoint, tmp_path / "data", "S01", batch_size=4, progress=False)
    compiled, _ = score_scene(checkpoint, tmp_path / "data", "S01", batch_size=4, progress=False, compile=True)
    assert "torch.compile: first scoring batch" in capsys.readouterr().out
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(b.psnr, a.psnr, rtol=1e-4)
