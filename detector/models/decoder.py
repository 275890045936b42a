"""Decoder from Swin features back to frames: transposed 3-D convolutions (I3D-style units of
conv, BatchNorm, ReLU), returning the logits that `StaticBackground` turns into frames. It undoes
the encoder's strides stage by stage, so the reconstruction has exactly the input clip's shape."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ipad_detect.config import ModelConfig
from ipad_detect.models.background import zero_last_layer


def _up_unit(in_ch: int, out_ch: int, kernel, stride, padding) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose3d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(out_ch),
        nn.ReLU(inplace=True),
    )


class SwinDecoder3d(nn.Module):
    """[B, C_last, T', H', W'] -> logits [B, 3, T, H, W] (the change from the still background).

    One 2x spatial upsampling per patch merging (channels halve, like the encoder's stages in
    reverse), then a transposed conv with the patch size as kernel and stride undoes the patch
    embedding, and a 3x3x3 conv, started at zero, mixes neighbouring frames.
    """

    def __init__(self, embed_dim: int, stages: int, patch_size: tuple[int, int, int]) -> None:
        super().__init__()
        units = []
        for stage in reversed(range(1, stages)):
            units.append(_up_unit(embed_dim * 2**stage, embed_dim * 2 ** (stage - 1), (1, 4, 4), (1, 2, 2), (0, 1, 1)))
        hidden = max(embed_dim // 2, 8)
        units.append(_up_unit(embed_dim, hidden, patch_size, patch_size, 0))
        self.upsample = nn.Sequential(*units)
        self.to_frames = nn.Conv3d(hidden, 3, kernel_size=3, padding=1)
        zero_last_layer(self.to_frames)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "SwinDecoder3d":
        return cls(cfg.embed_dim, cfg.decoded_stage + 1, cfg.patch_size)

    def forward(self, features: Tensor) -> Tensor:
        if features.is_cuda:
            # cuDNN's fast 3-D (de)convolutions are channels last (NDHWC), and a convolution's output
            # keeps its input's layout through BatchNorm and ReLU. The encoder's tokens permuted to
            # [B, C, T', H', W'] already lie so (no copy then); this keeps it so for any caller. bf16
            # is the run's autocast (--bf16), which covers these convolutions.
            features = features.contiguous(memory_format=torch.channels_last_3d)
        return self.to_frames(self.upsample(features))
