"""Synthetic-to-real fine-tuning: LoRA through peft, adapter and merged round trips, few-shot, CLI."""

import copy
import json

import numpy as np
import pytest
import torch

from ipad_detect.checkpoint import load_checkpoint, save_checkpoint
from ipad_detect.cli import main
from ipad_detect.config import get_config
from ipad_detect.data import load_scene
from ipad_detect.finetune import add_lora, count_trainable, load_adapted, select_shots, trainable_module_names
from ipad_detect.models import build_model
from ipad_detect.scoring import evaluate_checkpoint, score_videos

# The tiny config made smaller still (8-frame clips of 32 px), so a fine-tune runs in seconds.
MICRO = get_config("tiny", clip_len=8, image_size=32, memory_slots=40, phase_bins=12)


def clips(batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, MICRO.clip_len, MICRO.image_size, MICRO.image_size, generator=generator) * 2 - 1


def test_lora_changes_the_output_and_only_the_intended_parameters_learn():
    torch.manual_seed(0)
    base = build_model("full", MICRO).eval()
    with torch.no_grad():  # as after training: the decoder's last layer starts at zero (the still background)
        base.decoder.to_frames.weight.normal_(std=0.1)
    x = clips()
    model = add_lora(copy.deepcopy(base), rank=4)
    lora = {n for n, _ in model.named_parameters() if "lora_" in n}
    layers = {n.split(".lora_")[0] for n in lora}
    assert len(layers) == 2 * sum(MICRO.depths) and {n.rsplit(".", 1)[1] for n in layers} == {"q", "v"}
    assert all(".encoder.features." in n and ".attn." in n for n in layers)

    with torch.no_grad():
        before = base(x)
        torch.testing.assert_close(model(x).recon, before.recon)  # B starts at zero: no change yet
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
        after = model(x)
    assert (after.phase_logits - before.phase_logits).abs().max() > 1e-3
    assert (after.recon - before.recon).abs().max() > 1e-6  # small: the memory read-out sits between

    model.train()
    out = model(x)
    model.loss(out, x, torch.tensor([1, 7]))["total"].backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert with_grad <= trainable and {n for n in lora if "lora_B" in n} <= with_grad
    copies = {n.split(".modules_to_save.")[0].removeprefix("base_model.model.")
              for n in trainable if ".modules_to_save." in n}
    assert copies == set(trainable_module_names(base))
    assert trainable == lora | {n for n in trainable if ".modules_to_save." in n}
    for name, parameter in model.named_parameters():  # the rest of the encoder is frozen
        if any(part in name for part in (".attn.k.", ".attn.proj.", ".mlp.", ".reduction.", "original_module",
                                         "relative_position_bias_table")):
            assert parameter.grad is None and not parameter.requires_grad, name
    count, total = count_trainable(model)
    assert count == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert total == sum(p.numel() for p in base.parameters()) + sum(p.numel() for n, p in model.named_parameters()
                                                                     if n in lora)


def test_lora_is_refused_for_models_without_the_swin_encoder():
    with pytest.raises(ValueError, match="LoRA needs a model with the Swin encoder"):
        add_lora(build_model("conae", MICRO))


def test_few_shot_selection_is_reproducible_whole_videos_at_least_one():
    names = [f"{i:02d}" for i in range(1, 11)]
    first = select_shots(names, 0.2, seed=3)
    assert first == select_shots(list(reversed(names)), 0.2, seed=3) and len(first) == 2 and set(first) <= set(names)
    assert len({tuple(select_shots(names, 0.2, seed=s)) for s in range(8)}) > 1  # the seed decides
    assert select_shots(names, 0.01, seed=0) and len(select_shots(names, 0.01, seed=0)) == 1
    assert select_shots(names, 1.0, seed=5) == names
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        select_shots(names, 0.0, seed=0)


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    """A synthetic scene and a "real" one without period labels (4 training videos)."""
    from conftest import write_scene

    root = tmp_path_factory.mktemp("real")
    write_scene(root, "R01", num_frames=30, train_videos=4, with_period=False)
    return root


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("full", MICRO)
    run = tmp_path_factory.mktemp("pretrained")
    return save_checkpoint(run, model, "full", MICRO, 1, info={"scenes": ["S01", "S02"], "cycle_length": 12.0})


def test_finetune_lora_round_trips_through_peft_and_merges(real_root, pretrained, tmp_path, capsys):
    torch.set_num_threads(2)
    out = tmp_path / "lora"
    assert main(["finetune", "--real", "R01", "--data", str(real_root), "--from", str(pretrained), "--method", "lora",
                 "--shots", "0.5", "--rank", "4", "--epochs", "1", "--max-clips", "4", "--batch-size", "2",
                 "--merge", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "R01: frame AUC" in printed and "on 2 training video(s)" in printed
    assert "trainable parameters:" in printed and "wall time:" in printed
    assert "each scene's mean frame would give" in printed

    result = json.loads((out / "evaluation.json").read_text())
    block = result["finetune"]
    assert len(block["epoch_recon"]) == 1 and block["static_frame_mse"] > 0
    assert block["method"] == "lora" and len(block["videos"]) == 2 and block["all_videos"] == 4
    assert 0 < block["trainable_share"] < 1 and block["pretrain_scenes"] == ["S01", "S02"]
    assert block["videos"] == select_shots(["01", "02", "03", "04"], 0.5, seed=0)
    assert 0 <= result["auc"] <= 1 and result["cycle_length"] == pytest.approx(12, rel=0.02)
    assert sorted(p.name for p in (out / "period" / "R01" / "training" / "period").iterdir()) == \
        [f"{v}.npy" for v in block["videos"]]  # estimated phase targets of the videos used
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (out / "adapter").iterdir()}

    # A fresh pretrained model with the saved adapter scores exactly like the model finetune evaluated.
    reloaded = load_adapted(out / "adapter")
    assert reloaded.info["cycle_lengths"]["R01"] == result["cycle_length"]
    again = evaluate_checkpoint(reloaded, real_root, "R01", progress=False).to_json()
    assert again["videos"] == result["videos"] and again["auc"] == result["auc"]

    # The merged checkpoint (our format) matches the adapted model up to float rounding.
    videos = load_scene(real_root, "R01", splits=("testing",)).testing
    merged = load_checkpoint(out / "merged")
    assert merged.kind == "full" and merged.info["cycle_lengths"]["R01"] == result["cycle_length"]
    length = result["cycle_length"]
    adapted_scores = score_videos(reloaded.model, "full", MICRO, videos, length, progress=False)
    merged_scores = score_videos(merged.model, "full", MICRO, videos, length, progress=False)
    for adapted, merged_video in zip(adapted_scores, merged_scores):  # the normal bank came along both ways
        np.testing.assert_allclose(merged_video.psnr, adapted.psnr, rtol=0, atol=1e-3)
        np.testing.assert_allclose(merged_video.phase_error, adapted.phase_error, rtol=0, atol=1e-5)
    # The fine-tune changed the model (its reconstruction; the pretrained model here has no bank yet).
    recon_only = MICRO.model_copy(update={"bank_weight": 0.0})
    adapted_recon = score_videos(reloaded.model, "full", recon_only, videos[:1], length, progress=False)
    base_recon = score_videos(load_checkpoint(pretrained).model, "full", recon_only, videos[:1], length, progress=False)
    assert np.abs(adapted_recon[0].psnr - base_recon[0].psnr).max() > 1e-3
    assert reloaded.model.get_base_model().normal_bank.features.shape[0] > 0  # fit to R01 after the fine-tune


def test_finetune_full_trains_everything_and_resumes(real_root, pretrained, tmp_path, capsys):
    argv = ["finetune", "--real", "R01", "--data", str(real_root), "--from", str(pretrained), "--method", "full",
            "--epochs", "1", "--max-clips", "2", "--batch-size", "2", "--out", str(tmp_path / "full"), "--quiet"]
    assert main(argv) == 0
    block = json.loads((tmp_path / "full" / "evaluation.json").read_text())["finetune"]
    assert block["trainable_share"] == 1.0 and block["all_videos"] == 4 and len(block["videos"]) == 4
    assert load_checkpoint(tmp_path / "full" / "checkpoint").epoch == 1
    capsys.readouterr()
    argv[argv.index("--epochs") + 1] = "2"
    assert main(argv) == 0  # --epochs 2 on the same folder: one more epoch
    assert load_checkpoint(tmp_path / "full" / "checkpoint").epoch == 2


def test_missing_real_scene_names_the_root_and_the_scenes_found(real_root, pretrained, monkeypatch, capsys):
    monkeypatch.setenv("IPAD_ROOT", str(real_root))
    assert main(["finetune", "--real", "R07", "--from", str(pretrained)]) == 2
    err = capsys.readouterr().err
    assert f"data root {real_root}" in err and "scenes found there: R01" in err and err.count("\n") == 1

    monkeypatch.delenv("IPAD_ROOT")
    assert main(["finetune", "--real", "R01", "--from", str(pretrained)]) == 2
    assert "pass --data ROOT or set IPAD_ROOT" in capsys.readouterr().err
    assert main(["finetune", "--real", "R01", "--data", str(real_root), "--from", str(pretrained),
                 "--shots", "1.5"]) == 2
    assert "--shots 1.5 is not allowed" in capsys.readouterr().err


def test_finetune_on_named_videos_uses_exactly_those(real_root, pretrained, tmp_path, capsys):
    out = tmp_path / "named"
    argv = ["finetune", "--real", "R01", "--data", str(real_root), "--from", str(pretrained), "--method", "full",
            "--epochs", "1", "--max-clips", "2", "--batch-size", "2", "--quiet"]
    assert main(argv + ["--videos", "03, 01", "--out", str(out)]) == 0
    assert "on 2 training video(s) (01, 03)" in capsys.readouterr().out
    block = json.loads((out / "evaluation.json").read_text())["finetune"]
    assert block["videos"] == ["01", "03"] and block["shots"] == 0.5
    assert sorted(p.name for p in (out / "period" / "R01" / "training" / "period").iterdir()) == ["01.npy", "03.npy"]

    assert main(argv + ["--videos", "01,09", "--out", str(tmp_path / "unknown")]) == 2
    err = capsys.readouterr().err
    assert "training video(s) 09 not in the scene" in err and "01, 02, 03, 04" in err
    assert main(argv + ["--videos", "01", "--shots", "0.5"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(argv + ["--videos", " , "]) == 2
    assert "names no video" in capsys.readouterr().err
