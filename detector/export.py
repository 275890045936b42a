"""`ipad-detect export --format onnx`: a trained detector as one ONNX graph, and scoring with it.

The graph takes clips [n, 3, T, H, W] in [-1, 1] and gives what scoring reads of the model: the
reconstructed centre frame, the normal bank's distance (for a model with a bank) and the phase
probabilities (for a model with a phase head). The encoder, the periodic memory, the phase head,
the decoder and the bank's nearest-clip search are all inside; the clip's normality is then made
from these outputs by the same code as with torch (`scoring.normality`), so an ONNX runtime on a
machine without torch scores as the checkpoint does. The non-learned references have no graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ipad_detect.checkpoint import Checkpoint
from ipad_detect.evaluate import psnr
from ipad_detect.models import unwrapped
from ipad_detect.models.normal_bank import pixel_clips
from ipad_detect.registry import get_kind
from ipad_detect.scoring import normality

OPSET = 18


class ClipScorer(nn.Module):
    """The model's scoring path for a batch of clips as a module of tensors only (what the graph holds)."""

    def __init__(self, checkpoint: Checkpoint):
        super().__init__()
        self.model = unwrapped(checkpoint.model).eval()
        self.config = checkpoint.config
        self.bank = getattr(self.model, "normal_bank", None) if self.config.bank_weight > 0 else None
        if self.bank is not None and self.config.bank_at_phase:
            raise ValueError("a bank searched at the due phase aligns whole videos and cannot be exported; "
                             "export a model with bank_at_phase off")

    def outputs(self) -> list[str]:
        names = ["centre"]
        if self.bank is not None:
            names.append("bank_distance")
        if getattr(self.model, "phase_head", None) is not None:
            names.append("phase_probs")
        return names

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(clip)
        result = [out.recon[:, :, self.config.clip_len // 2]]
        if self.bank is not None:
            pixels = pixel_clips(clip) if self.config.pixel_weight > 0 else None
            result.append(self.bank.distance(out.tokens, pixels, None, self.config.pixel_weight,
                                             self.config.bank_neighbours))
        if out.phase_logits is not None:
            result.append(out.phase_logits.float().softmax(dim=1))
        return tuple(result)


def export_onnx(checkpoint: Checkpoint, path: Path) -> dict:
    """Write the graph and, beside it, `<name>.json` (what it was made from); return that record with
    the largest difference of its outputs from torch's on two clips."""
    if not get_kind(checkpoint.kind).learned:
        raise ValueError(f"{checkpoint.kind} is a non-learned reference (a search over stored frames), "
                         f"not a network; export a learned model")
    scorer = ClipScorer(checkpoint).eval()
    config = checkpoint.config
    # two clips: an example batch of one would fix the graph's batch size at 1
    clip = torch.rand(2, 3, config.clip_len, config.image_size, config.image_size) * 2 - 1
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with torch.no_grad():
        expected = scorer(clip)
        torch.onnx.export(scorer, (clip,), str(temporary), input_names=["clip"], output_names=scorer.outputs(),
                          opset_version=OPSET, dynamo=True, external_data=False,
                          dynamic_shapes={"clip": {0: torch.export.Dim("clips")}})  # any number of clips
    temporary.replace(path)
    session = OnnxScorer(path)
    got = session.run(clip.numpy())
    difference = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
    record = {"checkpoint": str(checkpoint.path), "kind": checkpoint.kind, "config": config.model_dump(),
              "outputs": scorer.outputs(), "max_abs_difference": difference}
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record


class OnnxScorer:
    """An exported graph in onnxruntime, scoring clips as `watch.score_clips` does with torch."""

    def __init__(self, path: Path):
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist; write it with `ipad-detect export`")
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        record = path.with_suffix(".json")
        self.config = json.loads(record.read_text())["config"] if record.is_file() else None

    def run(self, clips: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
        return self.session.run(outputs, {"clip": np.ascontiguousarray(clips, dtype=np.float32)})

    def score(self, clips: np.ndarray, clip_len: int, bank_weight: float) -> tuple[list[float], list[float | None]]:
        """(anomaly scores, predicted phases or None) of clips [n, 3, T, H, W]. At a bank weight of 1
        the reconstruction weighs nothing and is not asked for (onnxruntime then skips the decoder)."""
        wanted = [name for name in self.outputs if name != "centre" or bank_weight < 1]
        values = dict(zip(wanted, self.run(clips, wanted)))
        centre = values.get("centre")
        psnrs = np.zeros(len(clips)) if centre is None else psnr(centre, clips[:, :, clip_len // 2])
        scores = -normality(psnrs, values.get("bank_distance"), bank_weight)
        probs = values.get("phase_probs")
        phases = [None] * len(clips) if probs is None else list((probs.argmax(axis=1) + 0.5) / probs.shape[1])
        return [float(v) for v in scores], phases
