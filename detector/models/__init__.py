"""Detector models. Every model maps clips [B, 3, T, H, W] in [-1, 1] to a ModelOutput and has
`loss(out, clips, phase_target)`; see `output.py`."""

from __future__ import annotations

from torch import nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.conae import ConvAutoencoder
from ipad_detect.models.ipad import IPADModel
from ipad_detect.models.memae import MemAE
from ipad_detect.models.output import ModelOutput
from ipad_detect.models.profile import count_flops, count_parameters

from ipad_detect.kinds import LEARNED_KINDS as MODEL_KINDS

# "vswin" is the full model with memory and phase off (the paper's V-Swin-T baseline).


def build_model(kind: str, cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model of `kind` sized by `cfg`."""
    if kind == "full":
        return IPADModel(cfg)
    if kind == "vswin":
        return IPADModel(cfg.model_copy(update={"use_memory": False, "use_phase": False}))
    if kind == "memae":
        return MemAE(cfg)
    if kind == "conae":
        return ConvAutoencoder(cfg)
    raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(MODEL_KINDS)}")


__all__ = ["MODEL_KINDS", "ModelOutput", "build_model", "count_flops", "count_parameters"]
