"""Non-learned references: the nearest normal training frame, clip, or frame at the same phase.

No learning: each keeps a bank of downsampled normal training samples, and a test clip's score
is the PSNR of its sample against the nearest bank sample, so it goes through the same IPAD
evaluation harness as the reconstruction models (high = normal). A learned detector that does
not beat them has not earned its place (the README's accuracy benchmark puts them beside every model).

- `frame-nn`: the clip's centre frame against every training frame.
- `clip-nn`: the 9 frames t-8, t-6, ..., t+8 around the centre against the same of every
  training frame: it sees motion (a stall, a wrong speed) as well as looks.
- `phase-nn`: the centre frame against the training frames of the phase it should be at. That
  phase comes from aligning the test video to the training reference cycle
  (`period_estimation.align_phase`): it advances steadily, so a frame that shows the wrong step
  of the cycle is compared with the step that was due. Test labels are never read.

Every frame of a video is scored with edge frames repeated where a clip runs past the video.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ipad_detect.config import ModelConfig
from ipad_detect.data import FrameCache, Video, to_clip_tensor
from ipad_detect.period_estimation import align_phase, frame_features, near_phase, reference_cycle
from ipad_detect.registry import register_model

BANK_SIZE = 32  # side of the downsampled frames in the bank
CLIP_OFFSETS = tuple(range(-8, 9, 2))  # clip-nn: 9 frames, every second one, centred on the frame
PHASE_TOLERANCE_FRAMES = 2.0  # phase-nn: bank frames this close (in frames of the cycle) to the due phase


class NearestNeighbour(nn.Module):
    """Bank of normal samples (frames at `offsets` around a centre, s × s pixels); score = PSNR
    against the nearest bank sample."""

    offsets: tuple[int, ...] = (0,)

    def __init__(self, config: ModelConfig, size: int = BANK_SIZE):
        super().__init__()
        self.config = config
        self.size = min(size, config.image_size)
        self.register_buffer("bank", torch.zeros(0, len(self.offsets) * 3 * self.size * self.size))

    def samples(self, frames: np.ndarray, centres: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float [len(centres), D] in [-1, 1]: the frames at `offsets` around
        each centre (edge frames repeated), each area-averaged to s × s."""
        small = F.interpolate(to_clip_tensor(frames).permute(1, 0, 2, 3), size=(self.size, self.size), mode="area")
        index = np.clip(np.asarray(centres)[:, None] + np.asarray(self.offsets)[None, :], 0, len(frames) - 1)
        return small[torch.from_numpy(index)].reshape(len(index), -1).to(self.bank.device)

    def fit(self, videos: list[Video], cache: FrameCache, cycle_length: float | None = None) -> None:
        """Fill the bank with a sample around every frame of the normal training videos (of one
        scene, `cycle_length` frames per cycle, or of several: None)."""
        self.bank = torch.cat([self.samples(cache.get(v), np.arange(v.num_frames)) for v in videos])

    def refit(self, videos: list[Video], cache: FrameCache) -> None:
        """Fill the bank again from other normal videos of the same scene (calibration's held-out folds)."""
        self.fit(videos, cache)

    def _nearest_mse(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """The MSE to the nearest bank sample. cdist finds it by a matrix product, whose rounding leaves
        a floor of about 1e-6 under every distance (a frame equal to a bank frame scored 57 dB, ranked by
        its norm); the MSE to the sample found is then computed exactly, as the normal bank does."""
        approx = torch.cdist(x, self.bank).pow(2)  # [n, K]
        if allowed is not None:
            approx = approx.masked_fill(~allowed, float("inf"))
        best, index = approx.min(dim=1)
        mse = (x - self.bank[index]).pow(2).mean(dim=1)
        return mse.masked_fill(best.isinf(), float("inf"))

    def allowed(self, frames: np.ndarray, centres: np.ndarray) -> torch.Tensor | None:
        """Which bank samples each centre may be compared with ([n, K] bool), or None for all."""
        return None

    @torch.no_grad()
    def score_video(self, frames: np.ndarray, clip_len: int = 16, chunk: int = 256) -> np.ndarray:
        """PSNR (high = normal) of every clip centre of one video, clip_len // 2 … N - clip_len // 2."""
        if len(self.bank) == 0:
            raise ValueError(f"the {type(self).__name__} bank is empty; fit it on training videos first")
        centre = clip_len // 2
        centres = np.arange(centre, len(frames) - (clip_len - 1 - centre))
        allowed = self.allowed(frames, centres)
        scores = []
        for start in range(0, len(centres), chunk):
            part = slice(start, start + chunk)
            nearest = self._nearest_mse(self.samples(frames, centres[part]),
                                        None if allowed is None else allowed[part])
            scores.append(10.0 * torch.log10(1.0 / nearest.clamp_min(1e-10)))
        return torch.cat(scores).double().cpu().numpy()


@register_model("frame-nn", label="frame-NN", learned=False,
                description="frame-nn (no learning: the nearest normal training frame)")
class FrameNN(NearestNeighbour):
    offsets = (0,)


@register_model("clip-nn", label="clip-NN", learned=False,
                description="clip-nn (no learning: the nearest normal training clip of 9 frames)")
class ClipNN(NearestNeighbour):
    offsets = CLIP_OFFSETS


@register_model("phase-nn", label="phase-NN", learned=False,
                description="phase-nn (no learning: the nearest training frame at the phase the frame is due at)")
class PhaseNN(NearestNeighbour):
    """The nearest training frame among those at the phase the test frame is due at."""

    offsets = (0,)

    def __init__(self, config: ModelConfig, size: int = BANK_SIZE):
        super().__init__(config, size)
        self.register_buffer("bank_phase", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("reference", torch.zeros(0, 0, dtype=torch.float64))  # features of one cycle
        self.register_buffer("cycle_length", torch.zeros((), dtype=torch.float64))

    def _phase(self, frames: np.ndarray) -> np.ndarray:
        _, phase = align_phase(frame_features(frames), self.reference.cpu().numpy(), float(self.cycle_length))
        return phase

    def fit(self, videos: list[Video], cache: FrameCache, cycle_length: float | None = None) -> None:
        """Bank the training frames, each with its phase by alignment to the reference cycle (the
        same estimator the test videos get, so both share one phase origin)."""
        if cycle_length is None or cycle_length <= 0:
            raise ValueError("phase-nn banks one scene's cycle: train it on one scene (its cycle length comes "
                             "from the period labels or is estimated), not several")
        super().fit(videos, cache)
        self.cycle_length = torch.tensor(float(cycle_length), dtype=torch.float64)
        features = [frame_features(cache.get(v)) for v in videos]
        self.reference = torch.from_numpy(reference_cycle(features, cycle_length))
        self.bank_phase = torch.cat([torch.from_numpy(self._phase(cache.get(v))) for v in videos])

    def refit(self, videos: list[Video], cache: FrameCache) -> None:
        self.fit(videos, cache, float(self.cycle_length))

    def allowed(self, frames: np.ndarray, centres: np.ndarray) -> torch.Tensor:
        due = torch.from_numpy(self._phase(frames)[centres])
        tolerance = PHASE_TOLERANCE_FRAMES / float(self.cycle_length)
        return near_phase(due, self.bank_phase.cpu(), tolerance).to(self.bank.device)

