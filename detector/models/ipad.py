"""The IPAD detector (paper section 4): Video Swin encoder -> periodic memory -> decoder, with a
phase head. With `use_memory` / `use_phase` off it is the V-Swin-T autoencoder baseline."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.decoder import SwinDecoder3d
from ipad_detect.models.memory import Memory
from ipad_detect.models.output import ModelOutput, check_clips, model_losses
from ipad_detect.models.phase import PhaseHead
from ipad_detect.models.swin3d import SwinEncoder3d

# The normalisation torchvision's Kinetics-400 Swin weights were trained with (inputs in [0, 1]).
KINETICS_MEAN = (0.485, 0.456, 0.406)
KINETICS_STD = (0.229, 0.224, 0.225)


class IPADModel(nn.Module):
    """clips [B, 3, T, H, W] in [-1, 1] -> ModelOutput (see `output.py`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # Clips arrive in [-1, 1]; the encoder sees them as its pretrained weights expect.
        self.register_buffer("input_mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.encoder = SwinEncoder3d.from_config(cfg)
        dim = cfg.encoder_dim
        self.phase_head = PhaseHead(dim, cfg.phase_bins, cfg.token_grid) if cfg.use_phase else None
        self.memory = Memory(cfg.memory_slots, dim, cfg.shrink_threshold) if cfg.use_memory else None
        self.decoder = SwinDecoder3d.from_config(cfg)

    def forward(self, clips: Tensor) -> ModelOutput:
        check_clips(clips, self.cfg)
        features = self.encoder(((clips + 1) / 2 - self.input_mean) / self.input_std)  # [B, T', H', W', C]
        phase_logits = self.phase_head(features) if self.phase_head is not None else None
        attention = None
        if self.memory is not None:
            b, t, h, w, c = features.shape
            phase_probs = phase_logits.float().softmax(dim=-1) if phase_logits is not None else None
            tokens, attention = self.memory(features.reshape(b, t * h * w, c), phase_probs)
            features = tokens.reshape(b, t, h, w, c)
        recon = self.decoder(features.permute(0, 4, 1, 2, 3))
        return ModelOutput(recon, phase_logits, attention)

    def loss(self, out: ModelOutput, clips: Tensor, phase_target: Tensor | None = None) -> dict[str, Tensor]:
        return model_losses(out, clips, phase_target, self.cfg)
