"""`--compile`: torch.compile of a detector model, for training and for scoring.

On a GPU the Swin window attention first switches to FlexAttention (models/swin3d.py), which
torch.compile turns into one kernel with the relative-position bias and the shift's mask inside;
on the CPU it keeps SDPA (torch 2.14's FlexAttention has no CPU backward). The compiled model
computes the eager model's function (tests/test_compiled.py). Its first call compiles: minutes
for the paper config, which is why that time is printed apart from the steps that follow.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.swin3d import use_attention
from ipad_detect.registry import get_kind


def compile_model(model: nn.Module, device: str | torch.device) -> nn.Module:
    """`model` compiled by torch.compile (the same parameters; FlexAttention on a GPU)."""
    if torch.device(device).type == "cuda":
        use_attention(model, "flex")
    return torch.compile(model)


@torch.no_grad()
def compile_for_scoring(model: nn.Module, kind: str, config: ModelConfig, batch_size: int,
                        device: str | torch.device) -> nn.Module:
    """`compile_model`, then one batch of blank clips through it in eval mode, so the compile time
    is printed on its own and not counted in the first video's scoring. A non-learned reference
    (nothing to compile) comes back as it is."""
    if not get_kind(kind).learned:
        return model
    compiled = compile_model(model, device).eval()
    blank = torch.zeros(batch_size, 3, config.clip_len, config.image_size, config.image_size, device=device)
    start = time.perf_counter()
    if config.bank_weight >= 1:  # scored by the bank alone: called as scoring.reconstruct_video calls it
        compiled(blank, reconstruct=False)
    else:
        compiled(blank)
    print(f"torch.compile: first scoring batch {time.perf_counter() - start:.1f} s (compiling)", flush=True)
    return compiled
