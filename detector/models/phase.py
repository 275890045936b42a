"""Phase head (paper eq. 2) and the sliding-window phase error E_p (paper eqs. 7-8)."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn


class PhaseHead(nn.Module):
    """Classifies a clip's position in the work cycle into `phase_bins` bins.

    Features [B, T', H', W', C] -> logits [B, phase_bins]. Not mean-pooled to one vector like a
    Kinetics head: the phase is where the parts are and which way they move, so a coarse
    (time, height, width) grid of channel-reduced features is kept.
    """

    def __init__(self, dim: int, phase_bins: int, token_grid: tuple[int, int, int], reduced_dim: int = 16) -> None:
        super().__init__()
        self.pool_grid = tuple(min(g, cap) for g, cap in zip(token_grid, (2, 4, 4)))
        self.reduce = nn.Linear(dim, reduced_dim)
        self.pool = nn.AdaptiveAvgPool3d(self.pool_grid)
        cells = self.pool_grid[0] * self.pool_grid[1] * self.pool_grid[2]
        self.classify = nn.Sequential(nn.GELU(), nn.Linear(reduced_dim * cells, phase_bins))

    def forward(self, features: Tensor) -> Tensor:
        x = self.reduce(features).permute(0, 4, 1, 2, 3)  # [B, r, T', H', W']
        return self.classify(self.pool(x).flatten(1))


def circular_distance(a: np.ndarray, b: np.ndarray, period: float) -> np.ndarray:
    """|a - b| on a circle of length `period` (so bin period-1 and bin 0 are 1 apart)."""
    diff = np.mod(np.abs(np.asarray(a, dtype=np.float64) - b), period)
    return np.minimum(diff, period - diff)


def window_phase_error(
    pred_bins: np.ndarray, bins_per_frame: float, phase_bins: int, window: int = 5
) -> np.ndarray:
    """E_p per clip (eq. 8): mean circular distance between the predicted phase bins of the
    `window` clips around clip t and the reference b that starts from clip t's prediction and
    advances `bins_per_frame` per frame (eq. 7's b with the cycle length known).

    pred_bins: predicted bin of each consecutive clip (stride 1) of one video. At the video's
    edges the window is clipped to the clips that exist.
    """
    pred = np.asarray(pred_bins)
    if pred.ndim != 1:
        raise ValueError(f"pred_bins must be 1-D (one bin per clip), got shape {pred.shape}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if phase_bins < 1:
        raise ValueError(f"phase_bins must be >= 1, got {phase_bins}")
    if not np.isfinite(bins_per_frame) or bins_per_frame < 0:
        raise ValueError(f"bins_per_frame must be a finite number >= 0, got {bins_per_frame}")
    count = len(pred)
    errors = np.zeros(count, dtype=np.float64)
    half = window // 2
    for t in range(count):
        lo, hi = max(0, t - half), min(count, t + half + 1)
        offsets = np.arange(lo, hi) - t
        reference = pred[t] + offsets * bins_per_frame
        errors[t] = circular_distance(pred[lo:hi], reference, phase_bins).mean()
    return errors
