"""The normal bank: nearest normal clip as a whole, worst position, only clips at the due phase,
tokens and pixels weighed as a geometric mean."""

import numpy as np
import pytest
import torch

from ipad_detect.config import get_config
from ipad_detect.models import build_model
from ipad_detect.models.normal_bank import PHASE_TOLERANCE, PIXEL_GRID, NormalBank, pixel_clips


def tokens(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, 4, 4, 3, generator=torch.Generator().manual_seed(seed))


def test_a_banked_clip_is_at_distance_zero_and_a_changed_position_counts_in_full():
    bank = NormalBank()
    normal = tokens(6)
    bank.fit(normal)
    assert torch.allclose(bank.distance(normal), torch.zeros(6), atol=1e-2)  # float16 storage
    changed = normal[2:3].clone()
    changed[0, :, 1, 3] += 2.0  # one of the 16 positions, every time step and feature
    distance = bank.distance(changed)
    # The nearest clip is still clip 2; its residual at that position is 4 per feature, and the
    # worst position is reported rather than the mean over positions (which would be 4 / 16).
    assert distance.item() == pytest.approx(4.0, rel=1e-2)


def test_the_nearest_clip_is_chosen_as_a_whole_not_position_by_position():
    left, right = torch.zeros(1, 2, 4, 4, 3), torch.zeros(1, 2, 4, 4, 3)
    left[..., :2, :] = 1.0  # two normal states: the left half lit, or the right half
    right[..., 2:, :] = 1.0
    bank = NormalBank()
    bank.fit(torch.cat([left, right]))
    both = left + right  # each half matches some normal clip, the whole matches none
    assert bank.distance(both).item() == pytest.approx(1.0, rel=1e-2)


def test_with_neighbours_each_position_takes_the_least_of_the_nearest_clips_only():
    quiet, moved = torch.zeros(1, 2, 4, 4, 3), torch.zeros(1, 2, 4, 4, 3)
    moved[:, :, 0, 0] = 1.0  # two normal moments of one step: one part at (0, 0) ...
    quiet[:, :, 1, 1], quiet[:, :, 0, 0] = 1.0, 0.1  # ... or another at (1, 1), the first barely there
    far = torch.full((1, 2, 4, 4, 3), 5.0)  # another step altogether
    bank = NormalBank()
    bank.fit(torch.cat([quiet, moved, far]))
    between = torch.zeros(1, 2, 4, 4, 3)
    between[:, :, 0, 0] = between[:, :, 1, 1] = 1.0  # like `moved` at (0, 0), like `quiet` at (1, 1)
    assert bank.distance(between).item() == pytest.approx(0.81, rel=1e-2)  # its nearest clip, `quiet`, alone
    assert bank.distance(between, neighbours=2).item() == pytest.approx(0.0, abs=1e-3)
    tilted = between.clone()
    tilted[:, :, 2, 2] = 2.0  # a change no near clip shows still counts in full
    assert bank.distance(tilted, neighbours=2).item() == pytest.approx(4.0, rel=1e-2)
    assert bank.distance(between, neighbours=10).item() == pytest.approx(0.0, abs=1e-3)  # more than the bank


def test_only_bank_clips_near_the_due_phase_are_compared():
    bank = NormalBank()
    normal = tokens(4)
    phase = torch.tensor([0.0, 0.25, 0.5, 0.75], dtype=torch.float64)
    bank.fit(normal, phase=phase, reference=np.zeros((10, 4)), cycle_length=10.0)
    query = normal[1:2]  # what normal cycles show at phase 0.25
    assert bank.distance(query, due=np.array([0.25])).item() == pytest.approx(0.0, abs=1e-2)
    shown_late = bank.distance(query, due=np.array([0.5 + PHASE_TOLERANCE / 2])).item()
    assert shown_late > 0.5  # shown at the time of another step: compared with that step
    assert bank.distance(query).item() == pytest.approx(0.0, abs=1e-2)  # no due phase: every clip


def test_pixel_clips_keep_every_second_frame_without_its_light():
    clips = torch.rand(2, 3, 16, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pixels = pixel_clips(clips)
    assert pixels.shape == (2, 8, PIXEL_GRID, PIXEL_GRID, 3)
    relit = clips * 0.5 + 0.2  # darker, with an offset: the same picture in another light
    torch.testing.assert_close(pixel_clips(relit), pixels, atol=1e-3, rtol=1e-3)


def test_tokens_and_pixels_weigh_as_a_geometric_mean_at_the_tokens_positions():
    clips = torch.rand(3, 3, 16, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    normal = tokens(3)
    bank = NormalBank()
    bank.fit(normal, pixels=pixel_clips(clips))
    query_tokens = normal[1:2].clone()
    query_tokens[0, :, 0, 0] += 2.0  # token distance 4 at one position
    query = clips[1:2].clone()
    query[:, :, :, 48:, 48:] = -query[:, :, :, 48:, 48:]  # the last of the 4 x 4 token positions changes
    tokens_alone = bank.distance(query_tokens, pixel_clips(query), pixel_weight=0.0).item()
    pixels_alone = bank.distance(query_tokens, pixel_clips(query), pixel_weight=1.0).item()
    both = bank.distance(query_tokens, pixel_clips(query), pixel_weight=0.5).item()
    assert tokens_alone == pytest.approx(4.0, rel=1e-2) and pixels_alone > 0.5
    assert both == pytest.approx((tokens_alone * pixels_alone) ** 0.5, rel=1e-4)
    assert bank.distance(normal[1:2], pixel_clips(clips[1:2]), pixel_weight=0.5).item() < 1e-2
    with pytest.raises(ValueError, match="pixel weight of 0.5 needs the pixel clips"):
        bank.distance(query_tokens, None, pixel_weight=0.5)


def test_an_empty_bank_and_mismatched_tokens_are_refused():
    bank = NormalBank()
    with pytest.raises(ValueError, match="empty"):
        bank.distance(tokens(1))
    bank.fit(tokens(2))
    with pytest.raises(ValueError, match="shape"):
        bank.distance(torch.zeros(1, 2, 4, 4, 5))


def test_the_default_model_gives_the_tokens_its_bank_keeps():
    cfg = get_config("tiny", clip_len=8, image_size=32, memory_slots=40, phase_bins=12)
    model = build_model("full", cfg).eval()
    clips = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(clips).tokens, model.encode(clips)[0])  # before the memory
    assert build_model("vswin", cfg).normal_bank is None and build_model("paper", cfg).normal_bank is None


def test_the_default_encoder_does_not_follow_the_light():
    cfg = get_config("tiny", clip_len=8, image_size=32, memory_slots=40, phase_bins=12)
    assert cfg.encoder_input == "frame"
    model = build_model("full", cfg).eval()
    clips = torch.rand(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1)) * 1.2 - 0.6
    gain = torch.tensor([0.6, 0.8, 0.7]).view(1, 3, 1, 1, 1)
    dimmer = clips * gain - 0.1  # darker, tinted light
    with torch.no_grad():
        same = model.encode(clips)[0]
        lit = model.encode(dimmer)[0]
        kinetics = build_model("full", cfg.model_copy(update={"encoder_input": "kinetics"})).eval()
        moved = (kinetics.encode(clips)[0] - kinetics.encode(dimmer)[0]).abs().mean()
    assert (same - lit).abs().mean() < 0.01 * moved


@pytest.mark.parametrize("kind", ["memae", "conae", "vswin", "paper"])
def test_the_baselines_are_scored_by_reconstruction_without_a_bank(kind):
    from ipad_detect.models import kind_config
    from ipad_detect.scoring import score_video

    cfg = kind_config(kind, get_config("tiny", clip_len=8, image_size=32, memory_slots=40, phase_bins=12))
    assert cfg.bank_weight == 0.0
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    values, _ = score_video(build_model(kind, cfg), kind, cfg, frames, cycle_length=6.0)
    assert values.shape == (12 - 8 + 1,) and np.isfinite(values).all()
