"""The normal bank: the encoder's features of the normal training clips, kept after training.

A reconstruction autoencoder generalises: it redraws a load of the wrong colour, a lift that does
not lift or a step out of order about as well as a normal one, so its error barely moves on many
anomalies (measured on the validation scenes, bench/accuracy.py --validation). What it learns
still pays: its encoder's tokens describe a clip (its looks and its motion over 16 frames) in a
space that reconstruction shaped. The bank keeps those tokens for normal training clips, and a test
clip is scored by how far it is from them, as PatchCore does with image features and MNAD with the
distance of a query to its nearest memory item (Park et al. 2020):

- the nearest bank clip is the one with the least squared distance over all its tokens (the
  whole scene at once: a lift without its load is near no normal clip, though each part of it,
  taken alone, looks like some normal moment);
- the clip's distance is the largest, over the token positions (the 8 x 8 grid of the decoded
  stage), of the mean squared difference per feature to that nearest clip: an anomaly covers a
  few positions, and a mean over all 64 would dilute it.

Measured on a validation scene (V01, lifter, 2,400 training clips): 98.1% frame AUC against 71.4%
for the same model's reconstruction error. Nearest clips chosen per position instead (PatchCore's
way) lose the logic anomalies (84.9%): normal patches can be pieced together into a wrong whole.

Period information can narrow the search (`ModelConfig.bank_at_phase`, off by default): each bank
clip keeps the phase of its centre frame, and a test clip is compared only with bank clips within
PHASE_TOLERANCE of the phase it is due at. Both
phases come from aligning the video's frames to the scene's reference cycle
(`period_estimation.align_phase`, as `phase-nn` does), which advances steadily: a step done at the
wrong time is compared with what normal cycles show at that time (a memory read-out at the
*expected* phase). Test labels are never read. A bank over several scenes has no common phase and
compares with every clip. On the validation scenes this paid where every cycle looks alike (the
rotary table's logic anomalies, 75 -> 84%) and cost 18 points where they do not (the palletizer
stacks a new box each cycle, so its reference cycle matches the others badly): off by default.

It is the clip-level counterpart of the periodic memory: the memory holds a few hundred learned
prototypes that the decoder reads, the bank every normal clip (up to BANK_CLIPS, evenly spaced),
read only for the score. It is fit once after the last epoch (`train.fit_normal_bank`), and again
on the real scene's videos after a fine-tune.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ipad_detect.period_estimation import align_phase, frame_features, near_phase

BANK_CLIPS = 1024  # at most this many normal clips, evenly spaced over the training clips
PHASE_TOLERANCE = 0.04  # of a cycle: bank clips this close to the due phase (about the cycle-time jitter)


class NormalBank(nn.Module):
    """Tokens [clips, T', H', W', C] of normal clips -> distance of new clips' tokens to them; with
    a phase per bank clip, only the bank clips near the phase a new clip is due at are compared."""

    def __init__(self) -> None:
        super().__init__()
        # [clips, T', H', W', C] in float16: a checkpoint holds a few tens of MB at most.
        self.register_buffer("features", torch.zeros(0, 0, 0, 0, 0, dtype=torch.float16))
        self.register_buffer("phase", torch.zeros(0, dtype=torch.float64))  # of each clip's centre frame
        self.register_buffer("reference", torch.zeros(0, 0, dtype=torch.float64))  # frame features of one cycle
        self.register_buffer("cycle_length", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def fit(self, tokens: Tensor, phase: Tensor | None = None, reference: np.ndarray | None = None,
            cycle_length: float | None = None) -> None:
        """Keep the tokens [clips, T', H', W', C] of normal clips and, for one scene, the phase of
        each (by alignment to `reference`, the scene's reference cycle of `cycle_length` frames)."""
        self.features = tokens.detach().to(torch.float16)
        if phase is None:  # several scenes: no common phase, every bank clip is compared
            self.phase = torch.zeros(0, dtype=torch.float64, device=tokens.device)
            return
        self.phase = phase.to(tokens.device, torch.float64)
        self.reference = torch.as_tensor(reference, dtype=torch.float64, device=tokens.device)
        self.cycle_length = torch.tensor(float(cycle_length), dtype=torch.float64, device=tokens.device)

    @property
    def empty(self) -> bool:
        return self.features.numel() == 0

    def due_phase(self, frames: np.ndarray) -> np.ndarray | None:
        """Phase every frame of a video is due at (by alignment to the reference cycle: test labels
        are never read), or None for a bank without phases."""
        if len(self.phase) == 0:
            return None
        return align_phase(frame_features(frames), self.reference.cpu().numpy(), float(self.cycle_length))[1]

    @torch.no_grad()
    def distance(self, tokens: Tensor, due: np.ndarray | None = None, chunk: int = 512) -> Tensor:
        """[n, T', H', W', C] (and the phase each clip is due at, [n]) -> [n]: the largest over
        positions of the mean squared difference per feature to the nearest bank clip (of those
        within PHASE_TOLERANCE of the due phase; the nearest phases if none is)."""
        if self.empty:
            raise ValueError("the normal bank is empty; it is fit after training (train.fit_normal_bank)")
        if tokens.shape[1:] != self.features.shape[1:]:
            raise ValueError(f"tokens of shape {list(tokens.shape[1:])} against a bank of {list(self.features.shape[1:])}")
        queries = tokens.float()
        flat = queries.flatten(1)
        allowed = None
        if due is not None and len(self.phase):
            allowed = near_phase(torch.as_tensor(due, device=self.phase.device), self.phase, PHASE_TOLERANCE)
        best = torch.full((len(flat),), float("inf"), device=flat.device)
        index = torch.zeros(len(flat), dtype=torch.long, device=flat.device)
        for start in range(0, len(self.features), chunk):  # bounded memory for big banks
            distance = torch.cdist(flat, self.features[start:start + chunk].flatten(1).float())
            if allowed is not None:
                distance = distance.masked_fill(~allowed[:, start:start + chunk].to(distance.device), float("inf"))
            value, where = distance.min(dim=1)
            better = value < best
            best, index = torch.where(better, value, best), torch.where(better, where + start, index)
        residual = (queries - self.features[index].float()).pow(2).mean(dim=(1, 4))  # [n, H', W']
        return residual.flatten(1).max(dim=1).values
