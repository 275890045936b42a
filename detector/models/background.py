"""The still scene and its light: the output layer every reconstruction model shares.

A fixed camera sees mostly the same picture in every frame; what changes is a moving part and the
light. Measured on the benchmark's scenes (bench/scenes), the error of the scene's mean training
frame is 32-55% moving parts and shading and 45-68% a gain and offset of the whole frame per colour
channel (light intensity and colour drift, flicker). A decoder that starts from grey spends its
first thousands of steps on that still picture, pixel by pixel, and then on the light, before any
motion: the tiny models used to end above the mean frame's error. So:

- `background` is a per-pixel picture, started at the training videos' mean frame (`fit`), under
  the decoder's output, whose last layer starts at zero: tanh(decoder(x) + background). A model
  reconstructs the still scene from step 0. It is the same for every clip: nothing of a test clip
  goes through it.
- With `match_light`, each reconstructed frame then gets the gain and offset per colour channel
  that fit it best, by least squares, to the frame it reconstructs: six numbers per frame, too few
  to copy an anomaly, enough to follow the light. The error is then the error of the content, not
  of the light, in training and in scoring alike.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StaticBackground(nn.Module):
    """logits [B, 3, T, H, W] (and the clips they reconstruct) -> frames in [-1, 1]."""

    def __init__(self, image_size: int, match_light: bool = True) -> None:
        super().__init__()
        self.picture = nn.Parameter(torch.zeros(3, 1, image_size, image_size))
        self.match_light = match_light

    @torch.no_grad()
    def fit(self, mean_frame: Tensor) -> None:
        """Start from a mean frame [3, H, W] in [-1, 1]."""
        self.picture.copy_(torch.atanh(mean_frame.clamp(-0.995, 0.995)).to(self.picture)[:, None])

    def forward(self, logits: Tensor, clips: Tensor) -> Tensor:
        frames = torch.tanh(logits + self.picture)
        return matched_light(frames, clips) if self.match_light else frames


def matched_light(frames: Tensor, target: Tensor, eps: float = 1e-4) -> Tensor:
    """`frames` with the per-frame, per-channel gain and offset that fit them best to `target`
    (both [B, 3, T, H, W]), clamped to [-1, 1]. The gain is pulled towards 1 by `eps` (a frame's
    variance is 100 times that or more): a flat frame keeps gain 1, so gradients still reach what
    drew it (a decoder whose last layer starts at zero over a flat background would get none)."""
    f_mean = frames.mean(dim=(3, 4), keepdim=True)
    t_mean = target.mean(dim=(3, 4), keepdim=True)
    centred = frames - f_mean
    variance = centred.pow(2).mean(dim=(3, 4), keepdim=True)
    gain = ((centred * (target - t_mean)).mean(dim=(3, 4), keepdim=True) + eps) / (variance + eps)
    return (gain.clamp(0.0, 4.0) * centred + t_mean).clamp(-1.0, 1.0)


def zero_last_layer(layer: nn.Module) -> None:
    """Start a decoder's last layer at zero, so the first reconstruction is the background itself."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def standardise_frames(clips: Tensor) -> Tensor:
    """Clips [B, 3, T, H, W] -> each frame standardised per colour channel (mean 0, std 1 over its
    pixels): the picture without its light's gain and offset."""
    centred = clips - clips.mean(dim=(3, 4), keepdim=True)
    return centred / (centred.pow(2).mean(dim=(3, 4), keepdim=True) + 1e-4).sqrt()
