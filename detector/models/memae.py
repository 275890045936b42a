"""MemAE baseline (Gong et al. 2019): 3-D conv encoder, a memory read at every position of the
latent grid with hard shrinkage, 3-D conv decoder; loss = recon + entropy_weight * entropy."""

from __future__ import annotations

from torch import Tensor, nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.background import StaticBackground
from ipad_detect.models.conae import ConvDecoder3d, ConvEncoder3d
from ipad_detect.models.memory import Memory
from ipad_detect.models.output import ModelOutput, check_clips, model_losses
from ipad_detect.registry import register_model, without_bank


@register_model("memae", label="memAE", description="memae (memory-augmented conv autoencoder)",
                configure=without_bank)
class MemAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder3d(cfg.memae_channels)
        self.memory = Memory(cfg.memory_slots, cfg.memae_channels[-1], cfg.shrink_threshold)
        self.decoder = ConvDecoder3d(cfg.memae_channels)
        self.background = StaticBackground(cfg.image_size, cfg.match_light)

    def memory_queries(self, clips: Tensor) -> Tensor:
        """The features that address the memory, [B * positions, C] (for `Memory.fit`)."""
        z = self.encoder(clips)
        return z.flatten(2).transpose(1, 2).reshape(-1, z.shape[1])

    def forward(self, clips: Tensor) -> ModelOutput:
        check_clips(clips, self.cfg)
        z = self.encoder(clips)  # [B, C, t, h, w]
        b, c, t, h, w = z.shape
        tokens, attention = self.memory(z.flatten(2).transpose(1, 2))  # [B, t*h*w, C]
        z = tokens.transpose(1, 2).reshape(b, c, t, h, w)
        return ModelOutput(self.background(self.decoder(z), clips), None, attention)

    def loss(self, out: ModelOutput, clips: Tensor, phase_target: Tensor | None = None) -> dict[str, Tensor]:
        return model_losses(out, clips, None, self.cfg)
