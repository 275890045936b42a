"""Cycle length and phase of unlabelled footage, from the normal training videos alone.

Real IPAD videos have no period files, yet the phase head needs a target per clip and the
sliding-window inspection needs the cycle length. Both are estimated here:

1. Frame features that ignore lighting: each frame is turned grey, area-downsampled to 16 x 16
   and normalised to zero mean and unit variance (a brighter or dimmer light, flicker or a
   contrast change leave it unchanged); its difference to the next normalised frame is appended,
   so a part moving up and the same part moving down do not look alike.
2. Self-similarity: D(lag) = mean over t of |f(t) - f(t + lag)|^2, pooled over the videos. It
   dips at every whole number of cycles. The first dip that is nearly as deep as the deepest is
   the cycle length to the nearest frame; the dips at 1, 2, 3 ... cycles, each located to a
   fraction of a frame by a parabola through its three lowest points, give the length by a
   least-squares slope through the origin (jitter of single cycles averages out).
3. Phase per frame: every frame is matched to its nearest frame of a reference cycle (the first
   cycle of the longest video), which gives a coarse phase; the phase is the linear t / L minus
   the circular mean of the offsets between linear and matched phase over one cycle around t.
   The linear part keeps it smooth and increasing, the local offset follows slow drift from
   cycle-length jitter. Phase 0 is where the reference cycle starts (the origin is arbitrary;
   the detector only needs it to be the same in every video).

Written in our period/ format (structured npy, `ipadgen.contract.PERIOD_DTYPE`: fields cycle int32
and phase float64 in [0, 1)) under `<out>/<scene>/training/period/<NN>.npy`, with `estimate.json`
beside it; the data root is never written to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ipad_detect.data import DataError, FrameCache, Video, cycle_length_from_labels, load_scene
from ipadgen.contract import PERIOD, PERIOD_DTYPE

FEATURE_SIZE = 16
MIN_LAG = 4
DIP_DEPTH = 0.3  # a dip counts as a cycle when it lies in the lowest 30% of D's range


@dataclass
class PeriodEstimate:
    """Estimated cycle length (frames) and per-video (cycle, phase) arrays, keyed by video name."""

    cycle_length: float
    cycle: dict[str, np.ndarray] = field(default_factory=dict)
    phase: dict[str, np.ndarray] = field(default_factory=dict)
    lag_distance: np.ndarray | None = None  # D(lag) for lag = 0, 1, ... (D(0) = 0), for inspection


# ----------------------------------------------------------------------------- features


def frame_features(frames: np.ndarray, size: int = FEATURE_SIZE) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float32 [N, 2 * size^2]: normalised grey frame and its difference to the next."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise DataError(f"expected at least 2 RGB frames [N, H, W, 3], got shape {frames.shape}")
    grey = torch.from_numpy(np.ascontiguousarray(frames)).float().mean(dim=-1)[:, None]  # [N, 1, H, W]
    small = F.interpolate(grey, size=(min(size, grey.shape[-2]), min(size, grey.shape[-1])), mode="area")
    x = small.flatten(1).numpy().astype(np.float64)
    x = (x - x.mean(axis=1, keepdims=True)) / np.maximum(x.std(axis=1, keepdims=True), 1e-6)
    motion = np.vstack([np.diff(x, axis=0), x[-1:] - x[-2:-1]])  # the last frame repeats the last step
    motion /= max(float(np.sqrt(np.mean(motion**2))), 1e-6)
    return np.concatenate([x, motion], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------- cycle length


def lag_distance(features: list[np.ndarray], max_lag: int) -> np.ndarray:
    """D(lag) for lag = 0 … max_lag: mean squared feature distance of frames lag apart, pooled
    over the videos long enough for that lag (NaN where none is)."""
    total = np.zeros(max_lag + 1)
    count = np.zeros(max_lag + 1)
    for x in features:
        x = x.astype(np.float64)
        squares = np.einsum("ij,ij->i", x, x)
        gram = x @ x.T
        for lag in range(1, min(max_lag, len(x) - 1) + 1):
            pairs = squares[:-lag] + squares[lag:] - 2 * np.diagonal(gram, offset=lag)
            total[lag] += pairs.sum()
            count[lag] += len(pairs)
    with np.errstate(invalid="ignore"):
        distance = total / count
    distance[0] = 0.0
    return distance / features[0].shape[1]


def _refine_minimum(distance: np.ndarray, centre: int, radius: int) -> float | None:
    """Sub-frame position of the lowest point of D within centre ± radius (parabola through
    the minimum and its neighbours); None when the window leaves the measured lags."""
    lo, hi = centre - radius, centre + radius
    if lo < 1 or hi >= len(distance) - 1 or np.isnan(distance[lo:hi + 2]).any():
        return None
    best = lo + int(np.argmin(distance[lo:hi + 1]))
    left, middle, right = distance[best - 1], distance[best], distance[best + 1]
    curvature = left - 2 * middle + right
    shift = 0.5 * (left - right) / curvature if curvature > 0 else 0.0
    return best + float(np.clip(shift, -0.5, 0.5))


def estimate_cycle_length_from_features(features: list[np.ndarray], min_lag: int = MIN_LAG) -> tuple[float, np.ndarray]:
    """Cycle length in frames (sub-frame) and the pooled D(lag) curve it was read from."""
    longest = max(len(x) for x in features)
    search = longest // 2  # the first dip must repeat at least once inside the longest video
    if search <= min_lag:
        raise DataError(f"the longest training video has {longest} frames, too short to estimate a cycle "
                        f"length (needs more than {2 * min_lag}); give the cycle length explicitly")
    distance = lag_distance(features, max_lag=(3 * longest) // 4)
    window = distance[min_lag:search + 1]
    floor, ceiling = np.nanmin(window), np.nanmax(window)
    coarse = min_lag + int(np.nanargmin(window))
    for i in range(len(window)):
        left = window[i - 1] if i > 0 else np.inf
        right = window[i + 1] if i + 1 < len(window) else np.inf
        if window[i] <= left and window[i] <= right and window[i] <= floor + DIP_DEPTH * (ceiling - floor):
            coarse = min_lag + i
            break
    multiples, positions = [], []
    radius = max(1, coarse // 4)
    for k in range(1, len(distance) // coarse + 1):
        position = _refine_minimum(distance, k * coarse, radius)
        if position is None:
            break
        multiples.append(k)
        positions.append(position)
    if not multiples:
        return float(coarse), distance
    k, p = np.asarray(multiples, float), np.asarray(positions)
    return float((k * p).sum() / (k * k).sum()), distance


# ----------------------------------------------------------------------------- phase


def _circular_mean(angles_in_cycles: np.ndarray, weights: np.ndarray | None = None) -> float:
    z = np.exp(2j * np.pi * angles_in_cycles)
    mean = np.average(z, weights=weights)
    return float(np.angle(mean) / (2 * np.pi))


def reference_cycle(features: list[np.ndarray], cycle_length: float) -> np.ndarray:
    """Features of the reference cycle: the first cycle of the longest video (phase 0 at its start)."""
    longest = max(features, key=len)
    span = max(2, min(int(round(cycle_length)), len(longest)))
    return longest[:span].astype(np.float64)


def align_phase(x: np.ndarray, reference: np.ndarray, cycle_length: float) -> tuple[np.ndarray, np.ndarray]:
    """(cycle int32, phase float64 in [0, 1)) of one video's frame features against a reference cycle.

    Each frame's nearest reference frame gives a coarse phase; the phase is the linear t / L minus
    the circular mean of the offsets between linear and matched phase over one cycle around t. It
    therefore advances steadily, as a normal cycle does, and follows only slow drift: a frame that
    shows the wrong step for a few frames (a stall, a skipped step) gets the phase where the step
    was due, not the phase of what it shows."""
    x = x.astype(np.float64)
    half_window = max(1, int(round(cycle_length / 2)))
    distance = (np.einsum("ij,ij->i", x, x)[:, None] + np.einsum("ij,ij->i", reference, reference)[None, :]
                - 2 * x @ reference.T)
    matched = np.argmin(distance, axis=1) / cycle_length  # coarse phase of each frame
    linear = np.arange(len(x)) / cycle_length
    offsets = linear - matched
    local = np.array([_circular_mean(offsets[max(0, t - half_window):t + half_window + 1]) for t in range(len(x))])
    local = np.unwrap(local * 2 * np.pi) / (2 * np.pi)  # no jumps of a whole cycle
    unwrapped = linear - local
    phase = np.mod(unwrapped, 1.0)
    phase[phase >= 1.0] = 0.0  # np.mod of a tiny negative number can round to 1.0
    cycle = np.floor(unwrapped) - np.floor(unwrapped[0])
    return cycle.astype(np.int32), phase.astype(np.float64)


def near_phase(due: torch.Tensor, banked: torch.Tensor, tolerance: float) -> torch.Tensor:
    """[n, K] bool: which banked phases lie within `tolerance` (in cycles, circularly) of each due
    phase; a due phase with none that close gets its nearest banked phases."""
    gap = torch.remainder(due[:, None] - banked[None, :], 1.0)
    gap = torch.minimum(gap, 1.0 - gap)
    return (gap <= tolerance) | (gap <= gap.min(dim=1, keepdim=True).values + 1e-12)


def estimate_phase(features: list[np.ndarray], cycle_length: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(cycle int32, phase float64 in [0, 1)) per video, phase 0 at the start of the reference cycle."""
    reference = reference_cycle(features, cycle_length)
    return [align_phase(x, reference, cycle_length) for x in features]


# ----------------------------------------------------------------------------- videos and files


def estimate_period(videos: list[Video], cache: FrameCache, cycle_length: float | None = None) -> PeriodEstimate:
    """Cycle length (unless given) and phase of every video, from their frames only."""
    if not videos:
        raise DataError("no training videos to estimate the cycle length from")
    features = [frame_features(cache.get(v)) for v in videos]
    distance = None
    if cycle_length is None:
        cycle_length, distance = estimate_cycle_length_from_features(features)
    elif cycle_length <= 0:
        raise ValueError(f"cycle length {cycle_length} is not allowed; give a positive number of frames")
    estimate = PeriodEstimate(cycle_length=float(cycle_length), lag_distance=distance)
    for video, (cycle, phase) in zip(videos, estimate_phase(features, cycle_length)):
        estimate.cycle[video.name] = cycle
        estimate.phase[video.name] = phase
    return estimate


def write_period_files(estimate: PeriodEstimate, scene_out: Path | str, split: str = "training",
                       extra: dict | None = None) -> Path:
    """`<scene_out>/<split>/period/<NN>.npy` in our period format and `<scene_out>/estimate.json`."""
    scene_out = Path(scene_out)
    period_dir = scene_out / split / PERIOD
    period_dir.mkdir(parents=True, exist_ok=True)
    for name, phase in estimate.phase.items():
        record = np.zeros(len(phase), dtype=PERIOD_DTYPE)
        record["cycle"], record["phase"] = estimate.cycle[name], phase
        temporary = period_dir / f".{name}.npy.tmp"
        with open(temporary, "wb") as f:
            np.save(f, record)
        os.replace(temporary, period_dir / f"{name}.npy")
    summary = {"cycle_length": estimate.cycle_length, "split": split, "videos": sorted(estimate.phase),
               "method": "self-similarity of light-normalised frames and frame differences; phase by "
                         "alignment to a reference cycle", **(extra or {})}
    (scene_out / "estimate.json").write_text(json.dumps(summary, indent=2))
    return period_dir


def label_videos(videos: list[Video], cache: FrameCache, cycle_length: float | None = None,
                 scene_out: Path | None = None) -> float:
    """Give videos without period labels an estimated phase (written to `scene_out` when given);
    returns the cycle length used. Labelled videos keep theirs and fix the length."""
    unlabelled = [v for v in videos if v.phase is None]
    if cycle_length is None:
        cycle_length = cycle_length_from_labels(videos)
    if not unlabelled:
        return float(cycle_length)
    estimate = estimate_period(unlabelled, cache, cycle_length)
    for video in unlabelled:
        video.cycle, video.phase = estimate.cycle[video.name].astype(np.int64), estimate.phase[video.name]
    if scene_out is not None:
        write_period_files(estimate, scene_out)
    return estimate.cycle_length


# ----------------------------------------------------------------------------- checking against labels


def phase_error(estimated: dict[str, np.ndarray], true: dict[str, np.ndarray]) -> float:
    """Mean circular distance (in cycles, 0 … 0.5) between estimated and true phase, after removing
    the one constant offset between the two origins (phase 0 is arbitrary for an estimate)."""
    names = sorted(set(estimated) & set(true))
    difference = np.concatenate([estimated[n] - true[n] for n in names])
    residual = np.mod(difference - _circular_mean(difference), 1.0)
    return float(np.mean(np.minimum(residual, 1.0 - residual)))


@dataclass
class SceneEstimate:
    scene: str
    estimate: PeriodEstimate
    true_cycle_length: float | None = None
    cycle_length_error_percent: float | None = None
    phase_error: float | None = None  # mean circular error, fraction of a cycle
    period_dir: Path | None = None


def estimate_scene(root: Path | str, scene: str, out: Path | str | None = None, image_size: int = 64) -> SceneEstimate:
    """Estimate a scene's training-video period from frames only; compare with its period labels
    where it has them; write the estimate under `<out>/<scene>/` when `out` is given."""
    videos = load_scene(root, scene, splits=("training",)).training
    estimate = estimate_period(videos, FrameCache(image_size))
    result = SceneEstimate(scene=scene, estimate=estimate)
    labelled = [v for v in videos if v.phase is not None]
    if labelled:
        result.true_cycle_length = cycle_length_from_labels(labelled)
        result.cycle_length_error_percent = 100 * abs(estimate.cycle_length - result.true_cycle_length) \
            / result.true_cycle_length
        result.phase_error = phase_error({v.name: estimate.phase[v.name] for v in labelled},
                                         {v.name: v.phase for v in labelled})
    if out is not None:
        checks = {"true_cycle_length": result.true_cycle_length,
                  "cycle_length_error_percent": result.cycle_length_error_percent,
                  "phase_error_cycles": result.phase_error, "data": str(root), "scene": scene}
        result.period_dir = write_period_files(estimate, Path(out) / scene, extra=checks)
    return result
