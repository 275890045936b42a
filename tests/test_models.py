"""Detector models: configs, shapes, the per-sample periodic memory, E_p, training, LoRA."""

import numpy as np
import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model

from ipad_detect.config import ModelConfig, get_config
from ipad_detect.models import build_model, count_flops, count_parameters
from ipad_detect.models.background import StaticBackground, matched_light
from ipad_detect.models.decoder import SwinDecoder3d
from ipad_detect.models.memory import Memory, boost_phase_slots, hard_shrink, phase_slot
from ipad_detect.models.phase import PhaseHead, cycle_phase_error, expected_phase, window_phase_error
from ipad_detect.models.swin3d import SwinEncoder3d
from ipad_detect.registry import model_kinds

TINY = get_config("tiny")


def tiny_clips(batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, TINY.clip_len, TINY.image_size, TINY.image_size, generator=generator) * 2 - 1


# --- configs -------------------------------------------------------------------------------


def test_paper_config_has_the_design_sizes():
    cfg = get_config("paper")
    assert (cfg.clip_len, cfg.image_size, cfg.embed_dim) == (16, 256, 96)
    assert cfg.depths == (2, 2, 6, 2) and cfg.num_heads == (3, 6, 12, 24)
    assert cfg.patch_size == (2, 4, 4) and cfg.window_size == (8, 7, 7)
    assert (cfg.memory_slots, cfg.phase_bins, cfg.window) == (2000, 200, 5)
    assert (cfg.entropy_weight, cfg.phase_weight) == (0.0002, 0.02)


def test_config_round_trips_through_json_and_is_frozen():
    cfg = get_config("tiny", memory_slots=64)
    assert ModelConfig.model_validate_json(cfg.model_dump_json()) == cfg
    with pytest.raises(Exception):
        cfg.memory_slots = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("huge", {}, "unknown model config 'huge'; allowed: paper, tiny"),
        ("tiny", {"memory": 3}, "unknown config field\\(s\\) memory"),
        ("tiny", {"image_size": 60}, "image_size 60 must be a multiple of 32"),
        ("tiny", {"window": 4}, "window must be odd"),
        ("tiny", {"num_heads": (1, 2, 5, 8)}, "stage 2: 96 channels do not split into 5 heads"),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        get_config(name, **overrides)


# --- shapes through every module ------------------------------------------------------------


def test_shapes_through_every_module_of_the_tiny_full_model():
    """The phase head reads the last stage (8 x 2 x 2 tokens); memory and decoder read stage 1, the
    8 x 8 grid (`decode_stage`)."""
    clips = tiny_clips()
    t, h, w = TINY.token_grid
    c = TINY.encoder_dim
    assert (t, h, w, c) == (8, 2, 2, 192) and TINY.decoded_stage == 1
    encoder = SwinEncoder3d.from_config(TINY)
    stage, features = encoder.forward_with_stage(clips, TINY.decoded_stage)
    torch.testing.assert_close(features, encoder(clips))
    assert features.shape == (2, t, h, w, c) and stage.shape == (2, t, 8, 8, 48)
    logits = PhaseHead(c, TINY.phase_bins, TINY.token_grid)(features)
    assert logits.shape == (2, TINY.phase_bins)
    memory = Memory(TINY.memory_slots, 48, TINY.shrink_threshold)
    tokens, attention = memory(stage.reshape(2, -1, 48), logits.softmax(-1))
    assert tokens.shape == (2, t * 64, 48) and attention.shape == (2, t * 64, TINY.memory_slots)
    recon = SwinDecoder3d.from_config(TINY)(tokens.reshape(2, t, 8, 8, 48).permute(0, 4, 1, 2, 3))
    assert recon.shape == clips.shape


@pytest.mark.parametrize("kind", model_kinds(learned=True))
def test_every_model_kind_follows_the_output_contract(kind):
    torch.manual_seed(0)
    model = build_model(kind, TINY)
    clips = tiny_clips()
    out = model(clips)
    assert out.recon.shape == clips.shape
    assert out.recon.abs().max() <= 1.0  # tanh
    has_phase = kind in ("full", "paper")
    has_memory = kind in ("full", "paper", "memae")
    assert (out.phase_logits is not None) == has_phase
    assert (out.memory_attention is not None) == has_memory
    if has_phase:
        assert out.phase_logits.shape == (2, TINY.phase_bins)
    if has_memory:
        assert out.memory_attention.shape[0] == 2 and out.memory_attention.shape[2] == TINY.memory_slots
        torch.testing.assert_close(out.memory_attention.sum(-1), torch.ones(out.memory_attention.shape[:2]))
    losses = model.loss(out, clips, torch.tensor([0, TINY.phase_bins - 1]))
    assert set(losses) == {"total", "recon", "entropy", "phase"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert (losses["phase"] > 0) == has_phase and (losses["entropy"] > 0) == has_memory
    expected = losses["recon"] + TINY.entropy_weight * losses["entropy"] + TINY.phase_weight * losses["phase"]
    torch.testing.assert_close(losses["total"], expected)


def test_use_flags_switch_memory_and_phase_independently():
    model = build_model("full", get_config("tiny", use_memory=False))
    out = model(tiny_clips(1))
    assert out.memory_attention is None and out.phase_logits is not None
    model = build_model("full", get_config("tiny", use_phase=False))
    out = model(tiny_clips(1))
    assert out.memory_attention is not None and out.phase_logits is None
    assert model.loss(out, tiny_clips(1), None)["phase"] == 0


def test_wrong_clip_shape_and_bad_phase_targets_are_refused():
    model = build_model("full", TINY)
    with pytest.raises(ValueError, match=r"clips must have shape \[B, 3, 16, 64, 64\] for config 'tiny', got"):
        model(torch.zeros(1, 3, 8, 64, 64))
    clips = tiny_clips(2)
    out = model(clips)
    with pytest.raises(ValueError, match=r"phase_target bins must lie in \[0, 50\)"):
        model.loss(out, clips, torch.tensor([0, 50]))
    with pytest.raises(ValueError, match="phase_target must be a LongTensor of shape"):
        model.loss(out, clips, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="unknown model kind 'swin'; allowed: full, paper, vswin, conae, memae"):
        build_model("swin", TINY)


def test_paper_sizes_parameter_counts():
    """The paper encoder is torchvision's swin3d_t without its Kinetics head (28.16 M - 0.31 M),
    and the full model lands at the paper's 35.9 M (table 3)."""
    from torchvision.models.video import swin3d_t

    paper = get_config("paper")
    reference = swin3d_t(weights=None)
    head = count_parameters(reference.head)
    assert count_parameters(SwinEncoder3d.from_config(paper)) == count_parameters(reference) - head == 27_850_470
    assert 35.0e6 < count_parameters(build_model("full", paper)) < 36.5e6


def test_profile_helpers_count_parameters_and_flops():
    model = build_model("conae", TINY).eval()
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    decoding = count_parameters(model.decoder) + count_parameters(model.background)
    assert count_parameters(model, trainable_only=True) == decoding
    one, two = count_flops(model, tiny_clips(1)), count_flops(model, tiny_clips(2))
    assert one > 1e8 and two == 2 * one


# --- periodic memory -------------------------------------------------------------------------


def test_phase_slot_maps_bins_proportionally_inside_the_memory():
    bins = torch.arange(200)
    slots = phase_slot(bins, phase_bins=200, memory_slots=2000)
    assert slots[0] == 0 and slots[1] == 10 and slots[199] == 1990
    small = phase_slot(torch.arange(50), phase_bins=50, memory_slots=7)
    assert small.min() == 0 and small.max() == 6 and bool((small.diff() >= 0).all())


def test_memory_boost_is_per_sample():
    torch.manual_seed(0)
    batch, rows, slots, bins = 2, 5, 20, 10
    weights = torch.randn(batch, rows, slots)
    logits = torch.full((batch, bins), -3.0)
    logits[0, 2] = 2.0  # sample 0: phase bin 2 -> slot 4
    logits[1, 7] = 1.0  # sample 1: phase bin 7 -> slot 14
    probs = logits.softmax(-1)
    boosted = boost_phase_slots(weights, probs)
    for sample, (phase_bin, slot) in enumerate([(2, 4), (7, 14)]):
        expected = weights[sample, :, slot] * (1 + probs[sample, phase_bin])
        torch.testing.assert_close(boosted[sample, :, slot], expected)
        others = [s for s in range(slots) if s != slot]
        assert torch.equal(boosted[sample][:, others], weights[sample][:, others])
    assert not torch.equal(boosted[0, :, 14], weights[0, :, 14] * (1 + probs[0, 2]))


def test_memory_reads_through_the_boosted_shrunk_softmax():
    torch.manual_seed(1)
    memory = Memory(slots=30, dim=8, shrink_threshold=0.02)
    features = torch.randn(2, 4, 8)
    probs = torch.softmax(torch.randn(2, 6) * 3, -1)
    out, attention = memory(features, probs)
    weights = boost_phase_slots(features @ memory.slots.t(), probs)
    expected = hard_shrink(torch.softmax(weights, -1), 0.02)
    torch.testing.assert_close(attention, expected)
    torch.testing.assert_close(out, expected @ memory.slots)
    _, plain = memory(features)
    assert not torch.allclose(plain, attention)  # the phase changes what is read


def test_hard_shrink_zeroes_small_weights_and_renormalises():
    attention = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    shrunk = hard_shrink(attention, 0.1)
    assert shrunk[0, 3] == 0
    torch.testing.assert_close(shrunk.sum(-1), torch.ones(1))
    torch.testing.assert_close(shrunk[0, :3], attention[0, :3] / attention[0, :3].sum(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["memae", "full"])
def test_memory_slots_start_at_the_features_training_reads(kind):
    """MemAE's conv encoder ends in BatchNorm: slots drawn with its untrained running statistics were
    ~170x smaller than the features training addresses them with, and the shrinkage zeroed every weight."""
    from ipad_detect.train import fit_memory

    torch.manual_seed(0)
    model = build_model(kind, TINY)
    clips = [(torch.rand(3, TINY.clip_len, TINY.image_size, TINY.image_size) * 2 - 1,) for _ in range(16)]
    fit_memory(model, clips, batches=2)
    assert model.training
    batch = torch.stack([clip for clip, in clips[:8]])
    with torch.no_grad():
        queries = model.memory_queries(batch)
        _, attention = model.memory(queries[None])
    ratio = model.memory.slots.norm(dim=-1).mean() / queries.norm(dim=-1).mean()
    assert 0.5 < ratio < 2.0
    assert (attention.sum(-1) > 0.99).all()  # every token reads some slot


# --- sliding-window phase error ----------------------------------------------------------------


def test_window_phase_error_is_zero_on_a_perfectly_advancing_sequence():
    cycle = 40  # frames per cycle, 50 bins -> 1.25 bins per frame
    pred = np.floor(np.arange(100) * 50 / cycle) % 50
    errors = window_phase_error(pred, bins_per_frame=50 / cycle, phase_bins=50, window=5)
    assert errors.shape == (100,)
    assert errors.max() < 1.0  # only the floor's rounding, under a bin
    exact = window_phase_error(np.arange(30) % 50, 1.0, 50)
    assert np.array_equal(exact, np.zeros(30))


def test_window_phase_error_is_circular_at_the_wrap():
    pred = np.array([46, 47, 48, 49, 0, 1, 2, 3])
    assert np.array_equal(window_phase_error(pred, 1.0, 50), np.zeros(8))


def test_window_phase_error_is_large_on_a_shuffled_sequence():
    rng = np.random.default_rng(0)
    pred = rng.permutation(np.arange(50))
    errors = window_phase_error(pred, 1.0, 50)
    assert errors.mean() > 5.0  # random bins on a 50-circle are 12.5 apart on average
    stalled = np.r_[np.arange(10), np.full(10, 9), np.arange(10, 20)]
    stall_errors = window_phase_error(stalled, 1.0, 50)
    assert stall_errors[:6].max() == 0 and stall_errors[12:17].min() > 0


def test_window_phase_error_edges_use_the_clipped_window_and_bad_input_is_refused():
    pred = np.array([0, 1, 2, 10])
    errors = window_phase_error(pred, 1.0, 50, window=3)
    assert errors[0] == 0  # window {0, 1}
    assert errors[3] == pytest.approx((7 + 0) / 2)  # window {2, 3}: 2 vs 9
    with pytest.raises(ValueError, match="window must be a positive odd number"):
        window_phase_error(pred, 1.0, 50, window=4)
    with pytest.raises(ValueError, match="pred_bins must be 1-D"):
        window_phase_error(pred[None], 1.0, 50)


# --- training and LoRA -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", model_kinds(learned=True))
def test_a_few_adam_steps_lower_the_loss_and_train_every_parameter(kind):
    """Gradients reach every part: the decoders' last layers start at zero (the reconstruction is
    the background), and after a few steps every parameter has moved and the loss is lower."""
    torch.manual_seed(0)
    model = build_model(kind, TINY)
    clips = tiny_clips(2, seed=3)
    target = torch.tensor([5, 30])
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = model.loss(model(clips), clips, target)["total"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = model.loss(model(clips), clips, target)["total"].item()
    assert final < losses[0], (losses, final)
    # Parameters outside the graph (vswin runs the encoder only up to the stage it decodes) have no grad.
    unmoved = [name for name, p in model.named_parameters() if p.grad is not None and torch.equal(p, start[name])]
    assert not unmoved


def test_lora_on_q_and_v_changes_the_encoder_output():
    """peft finds q and v as modules and they are called: a non-zero LoRA update changes the
    output (with torchvision's fused qkv it would not)."""
    torch.manual_seed(0)
    encoder = SwinEncoder3d.from_config(TINY).eval()
    clips = tiny_clips(1)
    with torch.no_grad():
        before = encoder(clips)
    encoder = inject_adapter_in_model(LoraConfig(r=4, target_modules=["q", "v"]), encoder)
    lora_b = [(n, p) for n, p in encoder.named_parameters() if "lora_B" in n]
    assert len(lora_b) == 2 * sum(TINY.depths)
    assert {n.split(".lora_B")[0].rsplit(".", 1)[1] for n, _ in lora_b} == {"q", "v"}
    with torch.no_grad():
        torch.testing.assert_close(encoder(clips), before)  # lora_B starts at zero
        for _, p in lora_b:
            p.normal_(std=0.1)
        after = encoder(clips)
    assert (after - before).abs().max() > 1e-3


# --- the cycle check and the output layer ---------------------------------------------------------


def one_hot_sequence(bins_seq: np.ndarray, bins: int = 50, sharpness: float = 0.9) -> np.ndarray:
    probs = np.full((len(bins_seq), bins), (1 - sharpness) / (bins - 1))
    probs[np.arange(len(bins_seq)), np.asarray(bins_seq) % bins] = sharpness
    return probs


def test_expected_phase_follows_the_cycle_through_a_stretch_of_wrong_steps():
    bins, per_frame = 50, 0.5  # a 100-frame cycle
    true = np.arange(300) * per_frame
    shown = true.copy()
    shown[120:150] = shown[120]  # a stall: 30 frames show one step
    expected = expected_phase(one_hot_sequence(np.round(shown).astype(int), bins), per_frame, context=100)
    error = np.abs(np.mod(expected - np.mod(true, bins) + bins / 2, bins) - bins / 2)
    assert error[120:150].max() < 3  # the due phase keeps advancing through the stall
    assert error.mean() < 1.5


def test_cycle_check_is_quiet_on_a_static_step_and_fires_on_a_stall():
    bins, per_frame = 50, 0.5
    frames = np.arange(300)
    true_bins = np.round(frames * per_frame).astype(int) % bins
    # Bins 10-19 are a hold: a clip there cannot tell where in the hold it is (prediction spread),
    # and the normal profile of those bins is spread the same way.
    profile = np.eye(bins) * 0.9 + 0.1 / bins
    profile[10:20] = 0.0
    profile[10:20, 10:20] = 0.1
    profile /= profile.sum(axis=1, keepdims=True)

    def predictions(bins_seq):
        return np.stack([profile[b] for b in bins_seq])

    normal = cycle_phase_error(predictions(true_bins), profile, per_frame)
    stalled_bins = true_bins.copy()
    stalled_bins[160:200] = stalled_bins[160]
    stalled = cycle_phase_error(predictions(stalled_bins), profile, per_frame)
    hold = (true_bins >= 10) & (true_bins < 20)
    assert normal.max() < 0.2 and normal[hold].max() < 0.2
    assert stalled[175:200].min() > 0.6  # well past the stall's first frames
    with pytest.raises(ValueError, match="profile"):
        cycle_phase_error(predictions(true_bins), profile[:10], per_frame)


def test_matched_light_takes_the_input_frames_gain_and_offset_only():
    torch.manual_seed(0)
    scene = (torch.rand(1, 3, 1, 8, 8) * 0.5 - 0.25).expand(1, 3, 4, 8, 8)  # a still scene
    lit = 1.3 * scene + 0.2  # the same picture in brighter, warmer light
    assert float((matched_light(scene, lit) - lit).abs().max()) < 0.01
    marked = lit.clone()
    marked[..., 2:4, 2:4] = -0.9  # an anomaly: it stays an error after the light is matched
    assert float((matched_light(scene, marked) - marked).pow(2).mean()) > 0.01
    background = StaticBackground(8)
    background.fit(scene[0, :, 0].clamp(-0.99, 0.99))
    torch.testing.assert_close(background(torch.zeros_like(scene), lit), lit, atol=0.01, rtol=0)
