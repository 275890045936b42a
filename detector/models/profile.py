"""Model size and cost figures for the benchmarks."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, clips: torch.Tensor) -> int:
    """FLOPs of one forward pass on `clips` (torch's counter: a multiply-add counts as 2).
    Call it on an eval() model: in train mode BatchNorm would update its running statistics."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(clips)
    return counter.get_total_flops()
