"""Detector models. Every model maps clips [B, 3, T, H, W] in [-1, 1] to a ModelOutput and has
`loss(out, clips, phase_target)`; see `output.py`. Each registers its kinds with
`registry.register_model`: importing this package registers them all."""

from __future__ import annotations

from torch import nn

import ipad_detect.models.ipad  # noqa: F401  (registers full, paper, vswin)
import ipad_detect.models.memae  # noqa: F401  (registers conae, memae)
from ipad_detect.models.output import ModelOutput
from ipad_detect.models.profile import count_flops, count_parameters
from ipad_detect.registry import build_model, kind_config


def unwrapped(model: nn.Module) -> nn.Module:
    """The detector model itself, also when peft has wrapped it for LoRA."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


__all__ = ["ModelOutput", "build_model", "kind_config", "unwrapped", "count_flops", "count_parameters"]
