"""IPAD's evaluation protocol, as the authors' released code computes it; no models here.

- A clip of 16 frames at stride 1 is scored by the PSNR of its centre frame (index 8), on frames
  scaled to [-1, 1]:  PSNR = 10 · log10(1 / mse). The peak is taken as 1, as in IPAD's code, not
  as the data range 2; after min-max normalisation the difference (a constant 10·log10 4) is gone.
- A video of N frames gives N - 15 clips; clip i reconstructs frame i + 8, so the labels of the
  first 8 and the last 7 frames are dropped.
- Scores are min-max normalised over all test videos of a scene together ("scene"), or per video
  ("video"). The PSNR is a normality score (high = normal).
- With a phase head, the sliding-window phase error E_p (high = anomalous) is normalised the same
  way and combined:  normality = (1 - w) · norm(PSNR) + w · (1 - norm(E_p)),  w = phase weight.
- Frame-level AUC = roc_auc_score(1 - label, normality). The dataset figure is the mean of the
  scene AUCs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score

NORMALISATIONS = ("scene", "video")


def psnr(reconstruction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR per sample (first axis) of frames in [-1, 1]: 10 · log10(1 / mse)."""
    diff = np.asarray(reconstruction, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    mse = np.mean(diff.reshape(len(diff), -1) ** 2, axis=1)
    return 10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))


def trim_labels(labels: np.ndarray, clip_len: int = 16) -> np.ndarray:
    """Labels of the clip centres: drop the first clip_len // 2 and the last clip_len - 1 - that."""
    head = clip_len // 2
    tail = clip_len - 1 - head
    return np.asarray(labels)[head:len(labels) - tail]


def min_max(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant array maps to zeros."""
    values = np.asarray(values, dtype=np.float64)
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def frame_auc(labels: np.ndarray, normality: np.ndarray) -> float | None:
    """roc_auc_score(1 - label, normality); None when only one class is present."""
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return None
    return float(roc_auc_score(1 - labels, normality))


@dataclass
class VideoScores:
    """Raw per-clip scores of one test video and its labels (full length, one per frame)."""

    name: str
    labels: np.ndarray  # [N] frame labels as on disk (aligned), 1 = anomalous
    psnr: np.ndarray  # [N - 15] normality from reconstruction
    phase_error: np.ndarray | None = None  # [N - 15] sliding-window E_p, or None

    def trimmed_labels(self, clip_len: int = 16) -> np.ndarray:
        labels = trim_labels(self.labels, clip_len)
        if len(labels) != len(self.psnr):
            raise ValueError(f"video {self.name}: {len(self.psnr)} clip scores for {len(self.labels)} frames; "
                             f"expected {len(self.labels)} - {clip_len - 1} = {len(labels)}")
        return labels


@dataclass
class EvaluationResult:
    auc: float | None
    per_video_auc: dict[str, float | None]
    normality: dict[str, np.ndarray]  # final score per clip centre, after normalisation
    labels: dict[str, np.ndarray]  # trimmed labels, aligned with normality
    norm: str
    phase_weight: float
    first_frame: int = 8  # frame index of the first score in each video
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "auc": self.auc,
            "norm": self.norm,
            "phase_weight": self.phase_weight,
            "per_video_auc": self.per_video_auc,
            "first_frame": self.first_frame,
            "videos": {
                name: {"normality": self.normality[name].round(6).tolist(),
                       "anomaly_score": (1 - self.normality[name]).round(6).tolist(),
                       "labels": self.labels[name].astype(int).tolist()}
                for name in self.normality
            },
            **self.extra,
        }


def _normalise(arrays: list[np.ndarray], norm: str) -> list[np.ndarray]:
    if norm == "video":
        return [min_max(a) for a in arrays]
    if norm == "scene":
        joined = min_max(np.concatenate(arrays))
        bounds = np.cumsum([0] + [len(a) for a in arrays])
        return [joined[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    raise ValueError(f"unknown normalisation {norm!r}; allowed: {', '.join(NORMALISATIONS)}")


def combine_scores(psnrs: list[np.ndarray], phase_errors: list[np.ndarray] | None, norm: str = "scene",
                   phase_weight: float = 0.0) -> list[np.ndarray]:
    """Normalised normality per video: (1 - w) · norm(PSNR) + w · (1 - norm(E_p)), or norm(PSNR)."""
    if not 0.0 <= phase_weight <= 1.0:
        raise ValueError(f"phase weight {phase_weight} is not allowed; use a value in [0, 1]")
    normality = _normalise(psnrs, norm)
    if phase_errors is None or phase_weight == 0:
        return normality
    phase_normality = [1 - e for e in _normalise(phase_errors, norm)]
    return [(1 - phase_weight) * r + phase_weight * p for r, p in zip(normality, phase_normality)]


def evaluate_scene(videos: list[VideoScores], norm: str = "scene", phase_weight: float = 0.0,
                   clip_len: int = 16) -> EvaluationResult:
    """Frame AUC of one scene from the raw clip scores of its test videos."""
    if not videos:
        raise ValueError("no test videos to evaluate")
    labels = [v.trimmed_labels(clip_len) for v in videos]
    phase_errors = [v.phase_error for v in videos]
    use_phase = phase_weight > 0 and all(e is not None for e in phase_errors)
    normality = combine_scores([v.psnr for v in videos], phase_errors if use_phase else None, norm, phase_weight)
    return EvaluationResult(
        auc=frame_auc(np.concatenate(labels), np.concatenate(normality)),
        per_video_auc={v.name: frame_auc(y, s) for v, y, s in zip(videos, labels, normality)},
        normality={v.name: s for v, s in zip(videos, normality)},
        labels={v.name: y for v, y in zip(videos, labels)},
        norm=norm,
        phase_weight=phase_weight if use_phase else 0.0,
        first_frame=clip_len // 2,
    )


def dataset_auc(scene_aucs: dict[str, float | None]) -> float | None:
    """Mean of the scene AUCs (scenes without both classes are left out)."""
    values = [a for a in scene_aucs.values() if a is not None]
    return float(np.mean(values)) if values else None
