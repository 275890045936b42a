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

Pixels beside the tokens (`ModelConfig.pixel_weight`): each bank clip also keeps its frames as
the encoder's frame input sees them (every second frame, each standardised per colour channel,
PIXEL_GRID x PIXEL_GRID pixels), and a clip's pixel distance is found the same way (its own nearest
bank clip, the worst position of the token grid). The score's distance is the weighed geometric
mean d_tokens^(1 - w) * d_pixels^w: a product, so neither distance's scale matters. Chosen on the
validation scenes V01-V04 (w = 0.5): tokens alone 98.1 / 91.3 / 58.7 / 97.5, pixels alone 99.4 /
91.7 / 77.6 / 90.9, both 99.1 / 94.0 / 74.3 / 96.8 (mean 86.4, 89.9, 91.0). The learned tokens carry
the looks that pixels at 32 x 32 miss (the palletizer's boxes), the pixels what the tokens of a
16-epoch-short training miss (the filler's liquid and caps). Tried on the same trained models and
not kept: pixels at 64 x 64 (V01-V04 99.0 / 92.9 / 70.7 / 95.9, mean 89.6), and the pixels' worst
position on a 16 x 16 or 32 x 32 grid instead of the tokens' 8 x 8 (mean 92.3 and 91.9, but the
position anomalies fall from 83.5 to 80.7 and 84.9%; a weight of 0.3: mean 90.2, position 86.1%).

Several neighbours (`ModelConfig.bank_neighbours`, tiny: 4): each position's residual is the least
of those to the k nearest bank clips (nearest as wholes, as above). A normal cycle runs a little
early or late here and there, so a part of the frame may match the next-nearest normal clip better
than the nearest; a tilted part matches none of them, and k clips near one whole state cannot be
pieced into another state. Chosen on V01-V04 with the same trained models (rescored, the bank of
every training clip): per scene 99.1 / 93.6 / 74.2 / 97.6 at k = 1, 99.1 / 95.1 / 77.9 / 98.6 at
k = 4 (k = 2 and 8 on V02-V04: 94.7 / 76.0 / 98.3 and 94.8 / 79.6 / 98.7); per category (appearance,
position, motion, logic) 88.6 / 86.8 / 99.8 / 95.4 at k = 1, 92.3 / 92.1 / 99.8 / 95.6 at k = 4,
94.3 / 91.7 / 99.7 / 95.6 at k = 8. It costs the filler's crooked caps (61.7 -> 56.3%). Tried then
and not kept: each position's residual divided by its mean over the training clips (each against
the other training videos; V02 93.6 -> 88.4-91.6%) or as a z-score (V02 92.6-93.8%), and the mean
of the 8 worst positions instead of the worst (V02 85.2%).

It is the clip-level counterpart of the periodic memory: the memory holds a few hundred learned
prototypes that the decoder reads, the bank every normal clip (up to BANK_CLIPS, evenly spaced),
read only for the score. It is fit once after the last epoch (`train.fit_normal_bank`), and again
on the real scene's videos after a fine-tune.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ipad_detect.models.background import standardise_frames
from ipad_detect.period_estimation import align_phase, frame_features, near_phase

BANK_CLIPS = 1024  # at most this many normal clips, evenly spaced over the training clips
PHASE_TOLERANCE = 0.04  # of a cycle: bank clips this close to the due phase (about the cycle-time jitter)
PIXEL_GRID = 32  # the bank's pixel clips are this many pixels a side
PIXEL_FRAME_STEP = 2  # ... and keep every second frame


def pixel_clips(clips: Tensor) -> Tensor:
    """Clips [B, 3, T, H, W] in [-1, 1] -> [B, T / 2, PIXEL_GRID, PIXEL_GRID, 3]: every second frame,
    standardised per colour channel, averaged down to the pixel grid (channels last, as tokens)."""
    frames = standardise_frames(clips.float())[:, :, ::PIXEL_FRAME_STEP]
    b, c, t, h, w = frames.shape
    small = F.adaptive_avg_pool2d(frames.transpose(1, 2).reshape(b * t, c, h, w), PIXEL_GRID)
    return small.reshape(b, t, c, PIXEL_GRID, PIXEL_GRID).permute(0, 1, 3, 4, 2)


class NormalBank(nn.Module):
    """Tokens [clips, T', H', W', C] and pixel clips of normal clips -> distance of new clips to them;
    with a phase per bank clip, only the bank clips near the phase a new clip is due at are compared."""

    def __init__(self) -> None:
        super().__init__()
        # [clips, T', H', W', C] in float16: a checkpoint holds a few tens of MB at most.
        self.register_buffer("features", torch.zeros(0, 0, 0, 0, 0, dtype=torch.float16))
        self.register_buffer("pixels", torch.zeros(0, 0, 0, 0, 0, dtype=torch.float16))  # pixel_clips of each
        self.register_buffer("phase", torch.zeros(0, dtype=torch.float64))  # of each clip's centre frame
        self.register_buffer("reference", torch.zeros(0, 0, dtype=torch.float64))  # frame features of one cycle
        self.register_buffer("cycle_length", torch.zeros((), dtype=torch.float64))
        self._float: dict[str, tuple[tuple, Tensor, Tensor]] = {}  # float32 copies of the buffers, made once

    def _as_float(self, name: str) -> tuple[Tensor, Tensor]:
        """The float32 copy of a float16 buffer and each clip's squared norm, made on first use and
        again only when the buffer changed (refit, replaced, moved): a query then searches the bank
        without converting it each time (one clip at a time, as `watch` scores, the conversion and
        the norms were nine tenths of the cost)."""
        buffer = getattr(self, name)
        key = (buffer.data_ptr(), buffer._version, buffer.device, tuple(buffer.shape))
        cached = self._float.get(name)
        if torch.compiler.is_compiling() or cached is None or cached[0] != key:
            bank = buffer.float()
            cached = (key, bank, bank.flatten(1).pow(2).sum(dim=1))
            if not torch.compiler.is_compiling():  # an exported graph computes them in the graph
                self._float[name] = cached
        return cached[1], cached[2]

    @torch.no_grad()
    def fit(self, tokens: Tensor, pixels: Tensor | None = None, phase: Tensor | None = None,
            reference: np.ndarray | None = None, cycle_length: float | None = None) -> None:
        """Keep the tokens [clips, T', H', W', C] and the `pixel_clips` of normal clips (none: a bank
        scored on tokens alone) and, for one scene, the phase of each (by alignment to `reference`,
        the scene's reference cycle of `cycle_length` frames)."""
        if pixels is not None and len(tokens) != len(pixels):
            raise ValueError(f"{len(tokens)} clips of tokens and {len(pixels)} of pixels; one of each per clip")
        self.features = tokens.detach().to(torch.float16)
        self.pixels = (torch.zeros(0, 0, 0, 0, 0, dtype=torch.float16, device=tokens.device) if pixels is None
                       else pixels.detach().to(tokens.device, torch.float16))
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
    def distance(self, tokens: Tensor, pixels: Tensor | None = None, due: np.ndarray | None = None,
                 pixel_weight: float = 0.0, neighbours: int = 1, chunk: int = 512) -> Tensor:
        """[n, T', H', W', C] tokens (with the `pixel_clips` of their clips for a pixel weight above 0;
        and the phase each clip is due at, [n]) -> [n]: the largest over positions of the mean squared
        difference per feature to the nearest bank clip (of those within PHASE_TOLERANCE of the due
        phase; the nearest phases if none is), or the least of it to the `neighbours` nearest clips,
        as d_tokens^(1 - w) * d_pixels^w."""
        if self.empty:
            raise ValueError("the normal bank is empty; it is fit after training (train.fit_normal_bank)")
        if tokens.shape[1:] != self.features.shape[1:]:
            raise ValueError(f"tokens of shape {list(tokens.shape[1:])} "
                             f"against a bank of {list(self.features.shape[1:])}")
        allowed = None
        if due is not None and len(self.phase):
            allowed = near_phase(torch.as_tensor(due, device=self.phase.device), self.phase, PHASE_TOLERANCE)
        residual = _nearest_residual(tokens.float(), *self._as_float("features"), allowed, chunk,
                                     neighbours)  # [n, H', W']
        distance = residual.flatten(1).max(dim=1).values
        if pixel_weight == 0:
            return distance
        if pixels is None or self.pixels.numel() == 0:
            raise ValueError(f"a pixel weight of {pixel_weight} needs the pixel clips beside their tokens and a "
                             f"bank fit with pixel clips; use a pixel_weight of 0 for a bank of tokens alone")
        on_pixels = _nearest_residual(pixels.float(), *self._as_float("pixels"), allowed, chunk, neighbours)
        on_grid = F.adaptive_avg_pool2d(on_pixels[:, None], residual.shape[1:])[:, 0]  # the tokens' positions
        pixel_distance = on_grid.flatten(1).max(dim=1).values
        logs = ((1 - pixel_weight) * distance.clamp_min(1e-10).log()
                + pixel_weight * pixel_distance.clamp_min(1e-10).log())
        return logs.exp()


def _nearest_residual(queries: Tensor, bank: Tensor, norms: Tensor, allowed: Tensor | None, chunk: int,
                      neighbours: int = 1) -> Tensor:
    """[n, T, H, W, C] queries against a bank [clips, T, H, W, C] (float32, with each clip's squared
    norm) -> [n, H, W]: the mean squared difference per position to each query's nearest bank clip
    (by the distance over everything); with several `neighbours`, the least at each position of
    that to each of the query's nearest clips."""
    flat = queries.flatten(1)
    neighbours = min(neighbours, len(bank))
    best = torch.full((len(flat), neighbours), float("inf"), device=flat.device)
    index = torch.zeros(len(flat), neighbours, dtype=torch.long, device=flat.device)
    for start in range(0, len(bank), chunk):  # bounded memory for big banks
        # |b|^2 - 2 q.b: the squared distance less |q|^2, the same for every bank clip of a query;
        # one matrix product (cdist took ten times as long for one query alone, as watch asks)
        distance = norms[start:start + chunk] - 2 * flat @ bank[start:start + chunk].flatten(1).T
        if allowed is not None:
            distance = distance.masked_fill(~allowed[:, start:start + chunk].to(distance.device), float("inf"))
        here = torch.arange(start, start + distance.shape[1], device=flat.device).expand_as(distance)
        best, where = torch.cat([best, distance], dim=1).topk(neighbours, dim=1, largest=False)
        index = torch.cat([index, here], dim=1).gather(1, where)
    index = torch.where(best.isinf(), index[:, :1], index)  # fewer allowed clips than neighbours: the nearest again
    return (queries[:, None] - bank[index]).pow(2).mean(dim=(2, 5)).min(dim=1).values
