"""Memory modules: MemAE's memory (Gong et al. 2019) and IPAD's periodic memory (paper eqs. 1-6).

Each query feature addresses M learned slots: w = F·Mᵀ; with a phase prediction, the slot that
the predicted phase maps to gets its column boosted, w'[:, t'_p] = w[:, t'_p]·(1 + P_s[t_p]),
for every sample with its own phase; then softmax over the slots, hard shrinkage of small
weights (renormalised), and F_out = ŵ·M.

Two deliberate readings of the paper: eq. 5 writes the softmax sum over the T rows, but MemAE,
which the paper builds on, normalises over the memory slots, and so do we (the weights must sum
to one over what is read). And the released code boosts a ±7-slot band with sample 0's phase for
the whole batch, whereas we boost exactly one column per sample, as eq. 4 says.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def phase_slot(phase_bin: Tensor, phase_bins: int, memory_slots: int) -> Tensor:
    """Memory slot t'_p of phase bin t_p: proportional, floor(t_p * M / t_max), inside [0, M)."""
    slots = torch.div(phase_bin * memory_slots, phase_bins, rounding_mode="floor")
    return slots.clamp(0, memory_slots - 1)


def boost_phase_slots(weights: Tensor, phase_probs: Tensor) -> Tensor:
    """Eq. 4 per sample: weights [B, N, M], phase_probs [B, t_max] (softmax of the phase head).

    Column t'_p of each sample (t_p = that sample's argmax) is multiplied by 1 + P_s[t_p];
    every other column is unchanged. Gradients flow into P_s, so reconstruction also trains
    the phase head.
    """
    batch, _, slots = weights.shape
    score, phase_bin = phase_probs.max(dim=1)  # P_s[t_p], t_p
    slot = phase_slot(phase_bin, phase_probs.shape[1], slots)  # [B]
    factor = torch.ones(batch, slots, dtype=weights.dtype, device=weights.device)
    factor = factor.scatter(1, slot[:, None], (1 + score[:, None]).to(weights.dtype))
    return weights * factor[:, None, :]


def hard_shrink(attention: Tensor, threshold: float, eps: float = 1e-12) -> Tensor:
    """MemAE's hard shrinkage: weights below `threshold` become 0 (continuous form
    relu(w - λ)·w / (|w - λ| + ε) so gradients pass), then rows are renormalised to sum to 1."""
    if threshold <= 0:
        return attention
    shrunk = torch.relu(attention - threshold) * attention / ((attention - threshold).abs() + eps)
    return shrunk / shrunk.sum(dim=-1, keepdim=True).clamp_min(eps)


class Memory(nn.Module):
    """M slots of C features, read by attention; periodic when `phase_probs` is given."""

    def __init__(self, slots: int, dim: int, shrink_threshold: float) -> None:
        super().__init__()
        # std 1/sqrt(C): for unit-variance features the logits w start with std ~1, so a few
        # percent of the slots stay above the shrink threshold (too small an init would zero all).
        self.slots = nn.Parameter(torch.randn(slots, dim) / dim**0.5)
        self.shrink_threshold = shrink_threshold

    @torch.no_grad()
    def fit(self, queries: Tensor, generator: torch.Generator | None = None) -> None:
        """Start the slots at features drawn from `queries` [N, C] (the encoder's output on training
        clips). Random slots are all about equally far from every feature: the read-out is then
        nearly the same vector for every token, the decoder sees no difference between clips and
        learns the still picture, and the tiny full model stayed there (measured on a validation
        scene: 0.32 of the mean frame's error after 2,400 clips, as a still picture in each frame's
        light, against 0.16 without the memory). Slots drawn from real features are read as the
        nearest normal features from the first step, as in VQ-VAE codebooks started from data."""
        pick = torch.randint(len(queries), (len(self.slots),), generator=generator, device=queries.device)
        self.slots.copy_(queries[pick].to(self.slots))

    def forward(self, features: Tensor, phase_probs: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """features [B, N, C] -> (read-out [B, N, C], attention ŵ [B, N, M])."""
        weights = features @ self.slots.t()  # eq. 1
        if phase_probs is not None:
            weights = boost_phase_slots(weights, phase_probs)  # eqs. 2-4
        attention = hard_shrink(torch.softmax(weights, dim=-1), self.shrink_threshold)  # eq. 5 + MemAE
        return attention @ self.slots, attention  # eq. 6


def memory_entropy(attention: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean entropy of the addressing weights (MemAE's sparsity loss)."""
    return -(attention * torch.log(attention + eps)).sum(dim=-1).mean()
