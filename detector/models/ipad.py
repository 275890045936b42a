"""The IPAD detector (paper section 4): Video Swin encoder -> periodic memory -> decoder, with a
phase head. With `use_memory` / `use_phase` off it is the V-Swin-T autoencoder baseline."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.background import StaticBackground, standardise_frames
from ipad_detect.models.decoder import SwinDecoder3d
from ipad_detect.models.memory import Memory
from ipad_detect.models.normal_bank import NormalBank
from ipad_detect.models.output import ModelOutput, check_clips, model_losses
from ipad_detect.models.phase import PhaseHead
from ipad_detect.models.swin3d import SwinEncoder3d
from ipad_detect.registry import register_model, without_bank

# The normalisation torchvision's Kinetics-400 Swin weights were trained with (inputs in [0, 1]).
KINETICS_MEAN = (0.485, 0.456, 0.406)
KINETICS_STD = (0.229, 0.224, 0.225)


def encoder_input(clips: Tensor, mean: Tensor, std: Tensor, mode: str) -> Tensor:
    """Clips in [-1, 1] -> what the encoder sees (`ModelConfig.encoder_input`)."""
    if mode == "frame":
        return standardise_frames(clips)
    return ((clips + 1) / 2 - mean) / std


class IPADModel(nn.Module):
    """clips [B, 3, T, H, W] in [-1, 1] -> ModelOutput (see `output.py`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # Clips arrive in [-1, 1]; the encoder sees them as its pretrained weights expect.
        self.register_buffer("input_mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.encoder = SwinEncoder3d.from_config(cfg)
        self.phase_head = PhaseHead(cfg.encoder_dim, cfg.phase_bins, cfg.token_grid) if cfg.use_phase else None
        if cfg.use_phase:  # mean prediction of normal clips per phase bin, for the cycle check (fit after training)
            self.register_buffer("phase_profile", torch.full((cfg.phase_bins, cfg.phase_bins), 1.0 / cfg.phase_bins))
        dim = cfg.embed_dim * 2**cfg.decoded_stage  # channels of the tokens the memory and decoder take
        # An earlier stage's tokens get a LayerNorm of their own, as the last stage's have the encoder's.
        self.decode_norm = nn.LayerNorm(dim) if cfg.decoded_stage < len(cfg.depths) - 1 else None
        self.memory = Memory(cfg.memory_slots, dim, cfg.shrink_threshold) if cfg.use_memory else None
        self.decoder = SwinDecoder3d.from_config(cfg)
        self.background = StaticBackground(cfg.image_size, cfg.match_light)
        self.normal_bank = NormalBank() if cfg.bank_weight > 0 else None

    def encode(self, clips: Tensor) -> tuple[Tensor, Tensor]:
        """clips [B, 3, T, H, W] in [-1, 1] -> (the tokens to reconstruct from [B, T', H_s, W_s, C_s],
        the last stage's features [B, T', H', W', C] for the phase head, None without one)."""
        check_clips(clips, self.cfg)
        x = encoder_input(clips, self.input_mean, self.input_std, self.cfg.encoder_input)
        if self.decode_norm is None:
            final = self.encoder(x)
            return final, final
        tokens, final = self.encoder.forward_with_stage(x, self.cfg.decoded_stage, final=self.phase_head is not None)
        return self.decode_norm(tokens), final

    def memory_queries(self, clips: Tensor) -> Tensor:
        """The features that address the memory, [B * tokens, C] (for `Memory.fit`)."""
        features = self.encode(clips)[0]
        return features.reshape(-1, features.shape[-1])

    def forward(self, clips: Tensor, reconstruct: bool = True) -> ModelOutput:
        """With `reconstruct` False the memory and the decoder are skipped (recon None): a score made
        by the normal bank alone needs only the encoder's tokens, a quarter of the work of a clip."""
        features, final = self.encode(clips)
        banked = features if self.normal_bank is not None else None
        phase_logits = self.phase_head(final) if self.phase_head is not None else None
        if not reconstruct:
            return ModelOutput(None, phase_logits, None, banked)
        attention = None
        if self.memory is not None:
            b, t, h, w, c = features.shape
            phase_probs = phase_logits.float().softmax(dim=-1) if phase_logits is not None else None
            read, attention = self.memory(features.reshape(b, t * h * w, c), phase_probs)
            features = read.reshape(b, t, h, w, c)
        recon = self.background(self.decoder(features.permute(0, 4, 1, 2, 3)), clips)
        return ModelOutput(recon, phase_logits, attention, banked)

    def loss(self, out: ModelOutput, clips: Tensor, phase_target: Tensor | None = None) -> dict[str, Tensor]:
        return model_losses(out, clips, phase_target, self.cfg)


# "full" is the default detector: the paper's model scored by its normal bank (and, where the config
# weighs it, our cycle check of the phase); "paper" is the paper's model as published (last-stage
# reconstruction, the window check, eqs. 7-8); "vswin" is either with memory, phase and bank off
# (the paper's V-Swin-T baseline).


def as_published(cfg: ModelConfig) -> ModelConfig:
    return without_bank(cfg).model_copy(update={"phase_check": "window", "decode_stage": None,
                                                "encoder_input": "kinetics"})


def reconstruction_only(cfg: ModelConfig) -> ModelConfig:
    return without_bank(cfg).model_copy(update={"use_memory": False, "use_phase": False})


register_model("full", label="Ours", description="full (ours, the default)")(IPADModel)
register_model("paper", label="IPAD (paper)", description="paper (the IPAD model as published)",
               configure=as_published)(IPADModel)
register_model("vswin", label="V-Swin-T", description="vswin (no memory, phase or bank)",
               configure=reconstruction_only)(IPADModel)
