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

# "full" is the default detector: the paper's model scored by its normal bank (and, where the config
# weighs it, our cycle check of the phase); "paper" is the paper's model as published (last-stage
# reconstruction, the window check, eqs. 7-8); "vswin" is either with memory, phase and bank off
# (the paper's V-Swin-T baseline).


def kind_config(kind: str, cfg: ModelConfig) -> ModelConfig:
    """The config a model of `kind` really runs with (saved in its checkpoint, read when scoring)."""
    if kind == "vswin":
        return cfg.model_copy(update={"use_memory": False, "use_phase": False, "bank_weight": 0.0})
    if kind == "paper":
        return cfg.model_copy(update={"phase_check": "window", "decode_stage": None, "encoder_input": "kinetics",
                                      "bank_weight": 0.0})
    if kind in ("memae", "conae"):  # baselines as published: scored by reconstruction, no bank
        return cfg.model_copy(update={"bank_weight": 0.0})
    return cfg


def unwrapped(model: nn.Module) -> nn.Module:
    """The detector model itself, also when peft has wrapped it for LoRA."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def build_model(kind: str, cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model of `kind` sized by `cfg` (see `kind_config`)."""
    if kind in ("full", "vswin", "paper"):
        return IPADModel(kind_config(kind, cfg))
    if kind == "memae":
        return MemAE(cfg)
    if kind == "conae":
        return ConvAutoencoder(cfg)
    raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(MODEL_KINDS)}")


__all__ = ["MODEL_KINDS", "ModelOutput", "build_model", "kind_config", "unwrapped", "count_flops", "count_parameters"]
