"""An alarm threshold from normal footage alone (`ipad-detect calibrate`).

Real footage seldom has labelled faults, so the threshold cannot be the one that best separates
labelled anomalies (anomalib's adaptive F1 threshold returns the minimum score when the
validation set has none, and flags everything: their issue #2433). It is chosen on normal
footage, for a false-alarm rate: an alarm is a run of at least `min_frames` frames whose anomaly
score is above the threshold, and the threshold is the lowest at which the normal footage raises
no more alarms than the rate allows over its length (none, for footage shorter than one allowed
false alarm: then the rate is bounded by the footage's length, and the report says so).

The normal footage is held-out normal videos, or the training videos themselves, each scored
against a normal bank refit without it (leave one video out: the encoder still saw it in
training, the bank's nearest clip did not). A model without a bank scores its own training
videos, and is told that this is optimistic.

The anomaly score is the model's raw per-frame score (minus its normality: the bank distance in
dB for the default detector), the one `watch` computes online; the phase error, which the IPAD
protocol normalises over whole test videos, is not part of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import precision_score, recall_score
from tqdm import tqdm

from ipad_detect.checkpoint import Checkpoint
from ipad_detect.data import ClipDataset, FrameCache, Video
from ipad_detect.models import unwrapped
from ipad_detect.registry import get_kind
from ipad_detect.scoring import score_video

THRESHOLD_FILE = "threshold.json"
CANDIDATES = 4000  # thresholds tried, at most


@dataclass
class Threshold:
    threshold: float  # a frame is alarming when its anomaly score is above this
    min_frames: int  # ... for at least this many frames in a row
    fps: float
    false_alarms_per_hour: float  # asked for
    normal_frames: int
    normal_alarms: int  # alarms the normal footage raises at this threshold
    normal_source: str
    kind: str
    precision: float | None = None  # on labelled test videos, where they exist
    recall: float | None = None
    anomalies_found: str | None = None  # labelled anomalous spans an alarm overlaps, "k of n"

    @property
    def normal_hours(self) -> float:
        return self.normal_frames / self.fps / 3600.0

    def expected_rate(self) -> str:
        """The false-alarm rate the normal footage supports, in words."""
        minutes = 60 * self.normal_hours
        if self.normal_alarms:
            return (f"{self.normal_alarms / self.normal_hours:.2g} per hour "
                    f"({self.normal_alarms} in {minutes:.1f} min of normal footage)")
        return (f"none in {minutes:.1f} min of normal footage (below one per {minutes:.1f} min; a rate of "
                f"{self.false_alarms_per_hour:g} per hour is confirmed only by {60 / self.false_alarms_per_hour:.0f} "
                f"min or more)" if self.false_alarms_per_hour > 0 else f"none in {minutes:.1f} min of normal footage")

    def save(self, checkpoint_dir: Path) -> Path:
        path = Path(checkpoint_dir) / THRESHOLD_FILE
        temporary = path.with_name(f".{THRESHOLD_FILE}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, checkpoint_dir: Path) -> "Threshold":
        path = Path(checkpoint_dir) / THRESHOLD_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run `ipad-detect calibrate --checkpoint "
                                    f"{checkpoint_dir}` first, or give --threshold")
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path} is not a threshold file ({error}); calibrate again") from None


def alarm_spans(scores: np.ndarray, threshold: float, min_frames: int) -> list[tuple[int, int]]:
    """(first, last) index of every run of at least `min_frames` scores above `threshold`."""
    above = np.r_[False, np.asarray(scores) > threshold, False]
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_frames]


def choose_threshold(normal: list[np.ndarray], allowed: int, min_frames: int) -> tuple[float, int]:
    """The lowest threshold (among the normal scores) at which the normal videos raise at most
    `allowed` alarms, and how many they raise there."""
    candidates = np.unique(np.concatenate(normal))[::-1]  # highest first
    if len(candidates) > CANDIDATES:  # hours of footage: evenly spaced in rank
        candidates = candidates[np.linspace(0, len(candidates) - 1, CANDIDATES).round().astype(int)]
    best, alarms = float(candidates[0]), 0
    for value in candidates:  # alarms only grow as the threshold falls, up to merging runs
        count = sum(len(alarm_spans(s, value, min_frames)) for s in normal)
        if count > allowed:
            break
        best, alarms = float(value), count
    return best, alarms


def anomaly_scores(checkpoint: Checkpoint, frames: np.ndarray, batch_size: int = 8,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Per clip centre frame: the raw anomaly score (minus the normality `score_video` gives)."""
    normality, _ = score_video(checkpoint.model, checkpoint.kind, checkpoint.config, frames, None, batch_size, device)
    return -np.asarray(normality, dtype=np.float64)


def _refit_without(checkpoint: Checkpoint, videos: list[Video], cache: FrameCache, batch_size: int,
                   device: str | torch.device) -> bool:
    """Refit the model's bank of normal clips on `videos` only; False when it has none."""
    from ipad_detect.train import fit_normal_bank

    model, config = checkpoint.model, checkpoint.config
    if not get_kind(checkpoint.kind).learned:
        model.refit(videos, cache)
        return True
    if getattr(unwrapped(model), "normal_bank", None) is None:
        return False
    bank = unwrapped(model).normal_bank
    phased = len(bank.phase) > 0  # a bank searched at the due phase keeps its phases
    clips = ClipDataset(videos, config.image_size, config.clip_len)
    fit_normal_bank(model, clips, torch.device(device), batch_size, float(bank.cycle_length) if phased else None)
    return True


def normal_scores(checkpoint: Checkpoint, training: list[Video], held_out: list[Video], batch_size: int = 8,
                  device: str | torch.device = "cpu", progress: bool = True) -> tuple[list[np.ndarray], str]:
    """Anomaly scores of normal footage and where they come from (the checkpoint's model may be refit:
    load it again before using it for anything else)."""
    cache = FrameCache(checkpoint.config.image_size)
    if held_out:
        names = ", ".join(str(v) for v in held_out)
        return ([anomaly_scores(checkpoint, cache.get(v), batch_size, device)
                 for v in tqdm(held_out, desc="normal videos", unit="video", disable=not progress)],
                f"held-out normal videos {names}")
    if len(training) < 2:
        raise ValueError("calibrating on the training videos leaves one out at a time and needs at least 2; "
                         "give held-out normal videos with --normal")
    scores = []
    for held in tqdm(training, desc="leave one out", unit="video", disable=not progress):
        refit = _refit_without(checkpoint, [v for v in training if v is not held], cache, batch_size, device)
        if not refit:
            scores = [anomaly_scores(checkpoint, cache.get(v), batch_size, device) for v in training]
            return scores, ("training videos, in-sample (the model has no bank to leave a video out of: "
                            "optimistic, expect more false alarms than this)")
        scores.append(anomaly_scores(checkpoint, cache.get(held), batch_size, device))
    return scores, f"training videos {', '.join(v.name for v in training)}, one left out of the bank at a time"


def test_quality(threshold: Threshold, scores: list[np.ndarray], labels: list[np.ndarray]) -> None:
    """Frame precision and recall of the alarms on labelled test videos, and the anomalous spans found."""
    alarmed, truth, found, spans = [], [], 0, 0
    for s, lab in zip(scores, labels):
        flag = np.zeros(len(s), dtype=bool)
        for a, b in alarm_spans(s, threshold.threshold, threshold.min_frames):
            flag[a:b + 1] = True
        alarmed.append(flag)
        truth.append(lab.astype(bool))
        for a, b in alarm_spans(lab.astype(float), 0.5, 1):
            spans += 1
            found += bool(flag[a:b + 1].any())
    alarmed_all, truth_all = np.concatenate(alarmed), np.concatenate(truth)
    threshold.precision = float(precision_score(truth_all, alarmed_all, zero_division=0))
    threshold.recall = float(recall_score(truth_all, alarmed_all, zero_division=0))
    threshold.anomalies_found = f"{found} of {spans}"
