"""What every detector model returns, the input check and the loss they share (the contract)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ipad_detect.config import ModelConfig
from ipad_detect.models.memory import memory_entropy


class ModelOutput(NamedTuple):
    """recon [B, 3, T, H, W] in [-1, 1] (None when a bank-only score skipped the decoder);
    phase_logits [B, phase_bins] or None; memory_attention [B, N, M] or None; tokens
    [B, T', H', W', C], the encoder's tokens the memory and the decoder read (what the normal bank
    keeps), or None for models without a bank."""

    recon: Tensor | None
    phase_logits: Tensor | None
    memory_attention: Tensor | None
    tokens: Tensor | None = None


def check_clips(clips: Tensor, cfg: ModelConfig) -> None:
    """Refuse clips whose shape is not [B, 3, clip_len, image_size, image_size]."""
    expected = (3, cfg.clip_len, cfg.image_size, cfg.image_size)
    if clips.dim() != 5 or tuple(clips.shape[1:]) != expected:
        raise ValueError(
            f"clips must have shape [B, {', '.join(map(str, expected))}] for config {cfg.name!r}, "
            f"got {list(clips.shape)}"
        )


def model_losses(out: ModelOutput, clips: Tensor, phase_target: Tensor | None, cfg: ModelConfig) -> dict[str, Tensor]:
    """recon MSE + entropy_weight * memory entropy + phase_weight * phase cross-entropy.

    Terms a model does not have (no memory, no phase head, or no phase_target) are 0.
    """
    recon = F.mse_loss(out.recon.float(), clips.float())
    zero = recon.new_zeros(())
    entropy = memory_entropy(out.memory_attention.float()) if out.memory_attention is not None else zero
    phase = zero
    if out.phase_logits is not None and phase_target is not None:
        bins = out.phase_logits.shape[1]
        if phase_target.shape != out.phase_logits.shape[:1] or phase_target.dtype != torch.long:
            raise ValueError(
                f"phase_target must be a LongTensor of shape [{out.phase_logits.shape[0]}], "
                f"got {phase_target.dtype} {list(phase_target.shape)}"
            )
        if phase_target.numel() and (phase_target.min() < 0 or phase_target.max() >= bins):
            raise ValueError(
                f"phase_target bins must lie in [0, {bins}), "
                f"got {phase_target.min().item()}..{phase_target.max().item()}"
            )
        phase = F.cross_entropy(out.phase_logits.float(), phase_target)
    total = recon + cfg.entropy_weight * entropy + cfg.phase_weight * phase
    return {"total": total, "recon": recon, "entropy": entropy, "phase": phase}
