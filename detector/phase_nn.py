"""Phase-aligned nearest-neighbour baseline.

No learning: a bank of downsampled normal training frames with their phase. A test frame is
compared only with the bank frames of its own phase bin (its phase from the period labels, or,
without labels, the phase of its nearest bank frame); its score is the PSNR against the nearest
of those, so it goes through the same evaluation harness as the reconstruction models.
It catches what looks wrong for this point of the cycle, not a wrong timing when the phase is
given by the labels (a stalled device has a stalled phase).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from ipad_detect.config import ModelConfig
from ipad_detect.data import FrameCache, Video, phase_bin, to_clip_tensor

BANK_SIZE = 32  # side of the downsampled frames in the bank


class PhaseNN(nn.Module):
    def __init__(self, config: ModelConfig, size: int = BANK_SIZE):
        super().__init__()
        self.config = config
        self.size = min(size, config.image_size)
        self.register_buffer("bank", torch.zeros(0, 3 * self.size * self.size))
        self.register_buffer("bank_phase", torch.zeros(0, dtype=torch.float64))

    def resize_bank_like(self, weights_file) -> None:
        """Give the (empty) buffers the shapes stored in a checkpoint before loading it."""
        with safe_open(str(weights_file), framework="pt") as f:
            count, dim = f.get_slice("bank").get_shape()
        self.bank = torch.zeros(count, dim)
        self.bank_phase = torch.zeros(count, dtype=torch.float64)

    def downsample(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float [N, 3·s·s] in [-1, 1] (area-averaged to s × s)."""
        x = to_clip_tensor(frames).permute(1, 0, 2, 3)  # [N, 3, H, W]
        x = F.interpolate(x, size=(self.size, self.size), mode="area")
        return x.reshape(len(x), -1).to(self.bank.device)

    def fit(self, videos: list[Video], cache: FrameCache) -> None:
        """Fill the bank from normal videos; every video needs a phase (labelled or estimated)."""
        rows, phases = [], []
        for video in videos:
            if video.phase is None:
                raise ValueError(f"video {video} has no phase; label it or estimate it first")
            rows.append(self.downsample(cache.get(video)))
            phases.append(torch.from_numpy(video.phase))
        self.bank = torch.cat(rows)
        self.bank_phase = torch.cat(phases).to(self.bank.device)

    def _bin_lookup(self) -> np.ndarray:
        """For every phase bin, the bin whose bank frames stand in for it (nearest non-empty, circular)."""
        bins = self.config.phase_bins
        present = np.unique(phase_bin(self.bank_phase.cpu().numpy(), bins))
        offsets = np.abs(np.arange(bins)[:, None] - present[None, :])
        circular = np.minimum(offsets, bins - offsets)
        return present[np.argmin(circular, axis=1)]

    @torch.no_grad()
    def score_video(self, frames: np.ndarray, phase: np.ndarray | None, clip_len: int = 16,
                    chunk: int = 256) -> np.ndarray:
        """PSNR of every clip's centre frame against its nearest same-phase bank frame."""
        if len(self.bank) == 0:
            raise ValueError("the phase-NN bank is empty; fit it on training videos first")
        centre = clip_len // 2
        centres = np.arange(centre, len(frames) - (clip_len - 1 - centre))
        bank_bins = torch.from_numpy(phase_bin(self.bank_phase.cpu().numpy(), self.config.phase_bins))
        bank_bins = bank_bins.to(self.bank.device)
        lookup = torch.from_numpy(self._bin_lookup()).to(self.bank.device)
        scores = []
        for start in range(0, len(centres), chunk):
            index = centres[start:start + chunk]
            x = self.downsample(frames[index])
            mse = torch.cdist(x, self.bank).pow(2) / x.shape[1]  # [n, K]
            if phase is not None:
                bins = torch.from_numpy(phase_bin(phase[index], self.config.phase_bins)).to(self.bank.device)
            else:
                bins = bank_bins[mse.argmin(dim=1)]
            same_phase = bank_bins[None, :] == lookup[bins][:, None]
            nearest = mse.masked_fill(~same_phase, float("inf")).min(dim=1).values
            scores.append(10.0 * torch.log10(1.0 / nearest.clamp_min(1e-10)))
        return torch.cat(scores).double().cpu().numpy()
