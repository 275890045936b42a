"""Convolutional autoencoder baseline (conAE, Hasan et al. 2016), with 3-D convolutions over
the clip instead of 2-D convolutions over stacked frames. Its conv encoder and decoder are
reused by MemAE."""

from __future__ import annotations

from torch import Tensor, nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.background import StaticBackground, zero_last_layer
from ipad_detect.models.output import ModelOutput, check_clips, model_losses
from ipad_detect.registry import register_model, without_bank


def _strides(stages: int) -> list[tuple[int, int, int]]:
    """The first stage halves only height and width, every later one also halves time."""
    return [(1, 2, 2)] + [(2, 2, 2)] * (stages - 1)


class ConvEncoder3d(nn.Sequential):
    """[B, 3, T, H, W] -> [B, channels[-1], T / 2**(n-1), H / 2**n, W / 2**n]."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        layers = []
        in_ch = 3
        for out_ch, stride in zip(channels, _strides(len(channels))):
            layers += [
                nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm3d(out_ch),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_ch = out_ch
        super().__init__(*layers)


class ConvDecoder3d(nn.Sequential):
    """Mirror of ConvEncoder3d with transposed convs, the last started at zero; logits out (see
    `StaticBackground`)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        layers: list[nn.Module] = []
        outs = list(reversed(channels[:-1])) + [3]
        in_ch = channels[-1]
        for i, (out_ch, stride) in enumerate(zip(outs, reversed(_strides(len(channels))))):
            kernel = tuple(4 if s == 2 else 3 for s in stride)  # kernel 4, stride 2, pad 1 doubles exactly
            layers.append(nn.ConvTranspose3d(in_ch, out_ch, kernel, stride=stride, padding=1, bias=i == len(outs) - 1))
            if i < len(outs) - 1:
                layers += [nn.BatchNorm3d(out_ch), nn.LeakyReLU(0.2, inplace=True)]
            in_ch = out_ch
        zero_last_layer(layers[-1])
        super().__init__(*layers)


@register_model("conae", label="conAE", description="conae (conv autoencoder)", configure=without_bank)
class ConvAutoencoder(nn.Module):
    """conAE: conv encoder straight into the conv decoder; no memory, no phase."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder3d(cfg.conae_channels)
        self.decoder = ConvDecoder3d(cfg.conae_channels)
        self.background = StaticBackground(cfg.image_size, cfg.match_light)

    def forward(self, clips: Tensor) -> ModelOutput:
        check_clips(clips, self.cfg)
        return ModelOutput(self.background(self.decoder(self.encoder(clips)), clips), None, None)

    def loss(self, out: ModelOutput, clips: Tensor, phase_target: Tensor | None = None) -> dict[str, Tensor]:
        return model_losses(out, clips, None, self.cfg)
