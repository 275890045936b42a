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
        # a grid that divides the tokens' is a plain average pool: the same cells, and ONNX has it
        divides = all(g % p == 0 for g, p in zip(token_grid, self.pool_grid))
        self.pool = (nn.AvgPool3d(tuple(g // p for g, p in zip(token_grid, self.pool_grid))) if divides
                     else nn.AdaptiveAvgPool3d(self.pool_grid))
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


# ----------------------------------------------------------------------------- the cycle check (ours)
#
# The paper's window check (above) compares each clip's predicted phase with a reference that
# starts from that same prediction. On a static step of the cycle (a hold, an idle wait) one
# clip cannot tell where in the step it is, the prediction wanders, and the check fires on normal
# frames. The cycle check instead asks two questions with a whole cycle of context:
#
# 1. Which phase is each clip due at? The clips' predictions over one cycle around it, fitted by
#    a steady advance of `bins_per_frame` (a trimmed circular mean, so a stretch of wrong steps
#    does not drag the fit with it): `expected_phase`.
# 2. Does the clip's predicted distribution look like that of normal clips at that phase?
#    `phase_profile` holds, for every bin, the mean prediction of the normal training clips of
#    that bin: spread over the whole step where the step is static, sharp where parts move. The
#    error is 1 - the Bhattacharyya affinity of the two distributions (the best of the due bin and
#    its neighbours), averaged over the `window` clips around the clip (the paper's sliding window).


def _circular_bins(values: np.ndarray, phase_bins: int) -> np.ndarray:
    return np.exp(2j * np.pi * np.asarray(values, dtype=np.float64) / phase_bins)


def expected_phase(probs: np.ndarray, bins_per_frame: float, context: int, trim: float = 0.15) -> np.ndarray:
    """Phase bin (fractional) each clip is due at, from the predictions probs [n, bins] of
    consecutive clips: linear advance plus the circular mean offset of the predictions within
    ±context // 2 clips, recomputed without the offsets farther than `trim` of a cycle from it."""
    probs = np.asarray(probs, dtype=np.float64)
    count, bins = probs.shape
    predicted = np.angle(probs @ _circular_bins(np.arange(bins), bins)) * bins / (2 * np.pi)
    confidence = probs.max(axis=1)
    linear = np.arange(count) * bins_per_frame
    offsets = _circular_bins(predicted - linear, bins)  # unit vectors
    half = max(1, context // 2)
    expected = np.zeros(count)
    for t in range(count):
        part, weight = offsets[max(0, t - half):t + half + 1], confidence[max(0, t - half):t + half + 1]
        mean = np.angle(np.sum(weight * part))
        keep = np.abs(np.angle(part * np.exp(-1j * mean))) <= 2 * np.pi * trim
        if keep.any():
            mean = np.angle(np.sum(weight[keep] * part[keep]))
        expected[t] = linear[t] + mean * bins / (2 * np.pi)
    return np.mod(expected, bins)


def cycle_phase_error(probs: np.ndarray, profile: np.ndarray, bins_per_frame: float, window: int = 5,
                      context: int | None = None) -> np.ndarray:
    """Per clip (high = anomalous): 1 - affinity between its predicted phase distribution and the
    normal profile at the phase it is due at, averaged over the `window` clips around it.

    probs [n, bins] of consecutive stride-1 clips; profile [bins, bins]; context: clips of one
    cycle (default bins / bins_per_frame)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or profile.shape != (probs.shape[1], probs.shape[1]):
        raise ValueError(f"probs must be [clips, bins] and profile [bins, bins], got {probs.shape} and {profile.shape}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if not np.isfinite(bins_per_frame) or bins_per_frame <= 0:
        raise ValueError(f"bins_per_frame must be a finite number > 0, got {bins_per_frame}")
    bins = probs.shape[1]
    if context is None:
        context = int(round(bins / bins_per_frame))
    due = np.round(expected_phase(probs, bins_per_frame, context)).astype(np.int64)
    profile = np.asarray(profile, dtype=np.float64)
    # The best of the due bin and its two neighbours: a sharp prediction one bin off (the fit's
    # rounding, cycle-time jitter) is not an error.
    affinity = np.max([np.sqrt(probs * profile[np.mod(due + k, bins)]).sum(axis=1) for k in (-1, 0, 1)], axis=0)
    error = 1.0 - affinity
    half = window // 2
    padded = np.pad(error, half, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")
