"""Running a trained model over test videos: raw clip scores for the evaluation harness.

Every clip of 16 frames at stride 1 is passed through the model; its score is the PSNR of the
reconstructed centre frame (evaluate.psnr), or, for a model with a normal bank, the weighed dB sum
of that and of the clip's distance to the bank (models/normal_bank.py). Models with a phase head also give the predicted
phase distribution of every clip, from which the phase error is computed with the expected
advance of phase_bins / cycle_length bins per frame: by the cycle check (ours) or the paper's
sliding-window E_p, as the config's `phase_check` says (models/phase.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ipad_detect.checkpoint import Checkpoint
from ipad_detect.compiled import compile_for_scoring
from ipad_detect.config import ModelConfig
from ipad_detect.data import FrameCache, Video, clip_starts, cycle_length_from_labels, load_scene, to_clip_tensor
from ipad_detect.evaluate import NORMALISATIONS, EvaluationResult, VideoScores, evaluate_scene, psnr
from ipad_detect.models import unwrapped
from ipad_detect.models.normal_bank import pixel_clips
from ipad_detect.models.phase import cycle_phase_error, window_phase_error
from ipad_detect.registry import get_kind

BANK_QUERIES = 128  # clips searched in the normal bank at once: its float copy is made once per so many


@torch.no_grad()
def reconstruct_video(model: torch.nn.Module, frames: np.ndarray, config: ModelConfig, batch_size: int = 8,
                      device: str | torch.device = "cpu",
                      starts: list[int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Normality of every stride-1 clip (or of the clips starting at `starts`) and the predicted phase
    distributions [clips, bins] (None without a phase head). The normality is the PSNR of the
    reconstructed centre frame, weighed in dB with the normal bank's distance as `config` says
    (`bank_weight`, `bank_at_phase`, `pixel_weight`, `bank_neighbours`); at a bank weight of 1
    nothing is reconstructed (the PSNR would weigh nothing)."""
    clip_len, bank_weight, pixel_weight = config.clip_len, config.bank_weight, config.pixel_weight
    centre = clip_len // 2
    starts = list(clip_starts(len(frames), clip_len, 1)) if starts is None else list(starts)
    model.eval()
    bank = getattr(unwrapped(model), "normal_bank", None)
    if bank_weight > 0 and bank is None:
        raise ValueError(f"a bank weight of {bank_weight} for a model without a normal bank; "
                         f"train it with a bank_weight above 0")
    reconstruct = bank_weight < 1  # only a model with a bank is ever asked not to
    # the due phase from the frames, never the labels
    due = bank.due_phase(frames) if bank_weight > 0 and config.bank_at_phase else None
    psnrs, bins, distances = [], [], []
    queued_tokens, queued_pixels = [], []  # clips waiting for the bank: it is searched BANK_QUERIES at a time
    for first in range(0, len(starts), batch_size):
        batch = torch.stack([to_clip_tensor(frames[s:s + clip_len]) for s in starts[first:first + batch_size]])
        batch = batch.to(device)
        if reconstruct:
            out = model(batch)
            psnrs.append(psnr(out.recon[:, :, centre].float().cpu().numpy(), batch[:, :, centre].cpu().numpy()))
        else:
            out = model(batch, reconstruct=False)
            psnrs.append(np.zeros(len(batch)))
        if out.phase_logits is not None:
            bins.append(out.phase_logits.float().softmax(dim=1).cpu().numpy())
        if bank_weight == 0:
            continue
        queued_tokens.append(out.tokens)
        queued_pixels.append(pixel_clips(batch) if pixel_weight > 0 else None)
        if sum(map(len, queued_tokens)) >= BANK_QUERIES or first + batch_size >= len(starts):
            done, now = sum(map(len, distances)), sum(map(len, queued_tokens))
            due_now = None if due is None else due[centre + np.array(starts[done:done + now])]
            pixels = torch.cat(queued_pixels) if pixel_weight > 0 else None
            distance = bank.distance(torch.cat(queued_tokens), pixels, due_now, pixel_weight, config.bank_neighbours)
            distances.append(distance.double().cpu().numpy())
            queued_tokens, queued_pixels = [], []
    scores = normality(np.concatenate(psnrs), np.concatenate(distances) if distances else None, bank_weight)
    return scores, (np.concatenate(bins) if bins else None)


def normality(psnrs: np.ndarray, distances: np.ndarray | None, bank_weight: float) -> np.ndarray:
    """The clips' normality: their centre frames' PSNR, weighed in dB with their bank distances."""
    if bank_weight == 0:
        return psnrs
    bank_db = 10.0 * np.log10(1.0 / np.maximum(np.asarray(distances, dtype=np.float64), 1e-10))
    return (1 - bank_weight) * psnrs + bank_weight * bank_db


def score_video(model: torch.nn.Module, kind: str, config: ModelConfig, frames: np.ndarray,
                cycle_length: float | None, batch_size: int = 8,
                device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """Raw (PSNR, E_p or None) per clip of one video, for any model kind including the references.

    It sees the frames only, never the video's labels or period labels: real footage has none."""
    if len(frames) < config.clip_len:
        raise ValueError(f"a video of {len(frames)} frames is shorter than one clip of {config.clip_len} frames")
    values, probs = get_kind(kind).normality(model, frames, config, batch_size, device)
    if probs is None or cycle_length is None:
        return values, None
    bins_per_frame = config.phase_bins / cycle_length
    if config.phase_check == "window":
        return values, window_phase_error(probs.argmax(axis=1), bins_per_frame, config.phase_bins, config.window)
    profile = unwrapped(model).phase_profile.cpu().numpy()
    return values, cycle_phase_error(probs, profile, bins_per_frame, config.window)


def score_videos(model: torch.nn.Module, kind: str, config: ModelConfig, videos: list[Video],
                 cycle_length: float | None, batch_size: int = 8, device: str | torch.device = "cpu",
                 progress: bool = True) -> list[VideoScores]:
    """Raw scores of labelled test videos (frames decoded one video at a time)."""
    results = []
    for video in tqdm(videos, desc="scoring", unit="video", disable=not progress):
        if video.labels is None:
            raise ValueError(f"test video {video} has no label file test_label/{int(video.name):03d}.npy; "
                             f"evaluation needs one per test video")
        frames = FrameCache(config.image_size).get(video)
        values, error = score_video(model, kind, config, frames, cycle_length, batch_size, device)
        results.append(VideoScores(video.name, video.labels, values, error))
    return results


def resolve_cycle_length(explicit: float | None, training: list[Video], checkpoint: Checkpoint,
                         scene: str | None = None) -> float | None:
    """Frames per cycle for E_p: the value given, else the scene's training period labels, else
    what the checkpoint learned for this scene (or its median over the training scenes)."""
    if explicit is not None:
        if explicit <= 0:
            raise ValueError(f"cycle length {explicit} is not allowed; give a positive number of frames")
        return float(explicit)
    from_labels = cycle_length_from_labels(training)
    if from_labels is not None:
        return from_labels
    lengths = checkpoint.info.get("cycle_lengths", {})
    return lengths.get(scene, checkpoint.info.get("cycle_length"))


def score_scene(checkpoint: Checkpoint, root: Path | str, scene: str, cycle_length: float | None = None,
                batch_size: int = 8, device: str | torch.device = "cpu",
                progress: bool = True, compile: bool = False) -> tuple[list[VideoScores], float | None]:
    """Raw scores of one scene's test videos, and the cycle length used for E_p (`compile`: by the
    model compiled, compiled.py)."""
    root = Path(root)
    testing = load_scene(root, scene, splits=("testing",)).testing
    has_training = (root / scene / "training" / "frames").is_dir()
    training = load_scene(root, scene, splits=("training",)).training if has_training else []
    length = resolve_cycle_length(cycle_length, training, checkpoint, scene)
    model = checkpoint.model.to(device)
    if compile:
        model = compile_for_scoring(model, checkpoint.kind, checkpoint.config, batch_size, device)
    scores = score_videos(model, checkpoint.kind, checkpoint.config, testing, length, batch_size, device, progress)
    return scores, length


def evaluate_checkpoint(checkpoint: Checkpoint, root: Path | str, scene: str, norm: str = "scene",
                        cycle_length: float | None = None, phase_weight: float | None = None,
                        batch_size: int = 8, device: str | torch.device = "cpu",
                        progress: bool = True, compile: bool = False) -> EvaluationResult:
    """IPAD evaluation of one scene's test videos with a trained checkpoint."""
    if norm not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {norm!r}; allowed: {', '.join(NORMALISATIONS)}")
    scores, length = score_scene(checkpoint, root, scene, cycle_length, batch_size, device, progress, compile)
    weight = checkpoint.config.phase_score_weight if phase_weight is None else phase_weight
    result = evaluate_scene(scores, norm=norm, phase_weight=weight, clip_len=checkpoint.config.clip_len)
    result.extra.update({"scene": scene, "data": str(root), "checkpoint": str(checkpoint.path),
                         "kind": checkpoint.kind, "config": checkpoint.config.name, "cycle_length": length})
    return result
