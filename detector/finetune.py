"""Synthetic to real (paper section 4.4, table 3): adapt a pretrained model to a real scene.

Two methods on the real scene's normal training videos (all of them, or a reproducible fraction
of whole videos: few-shot):

- `full`: every parameter of the pretrained model keeps training.
- `lora`: LoRA through peft on `q` and `v` of every attention block of the Video Swin encoder;
  the patch embedding and the encoder's LayerNorms train as they are (the paper keeps "only the
  Embedding and LayerNorm components" of the encoder). The rest of the encoder is frozen.
  Decoder, memory and phase head stay trainable: the paper freezes the encoder only (figure 4), and
  its 10.3M trainable of 35.9M parameters cannot be reached without them. With rank 8 our paper
  config trains 8.2M of 36.0M (22.7%: decoder 6.3M + memory 1.5M + phase head 0.1M + LoRA,
  embedding and norms), the tiny config 0.49M of 2.23M (22.0%). They are also what must change
  when the look of the frames changes: the decoder draws the pixels and its BatchNorm statistics
  follow the new footage.

Everything trained in LoRA mode is saved in peft's own format (`save_pretrained`: LoRA matrices
plus `modules_to_save` copies of the other trainable modules), loaded with
`PeftModel.from_pretrained` onto the pretrained checkpoint; `merge=True` also writes the merged
model as a normal checkpoint that `ipad-detect evaluate` / `score` read.

Output folder:

    <out>/checkpoint/epoch-NNNN/   full: the fine-tuned model (our checkpoint format, resumable)
    <out>/resume/epoch-NNNN/       lora: training state of the model with adapters (resumable only)
    <out>/adapter/                 lora: adapter_config.json, adapter_model.safetensors, ipad_finetune.json
    <out>/merged/epoch-NNNN/       lora with merge: the merged model (our checkpoint format)
    <out>/period/<scene>/          estimated period files, when the scene has no period labels
    <out>/evaluation.json          the evaluation (as `ipad-detect evaluate` writes it) plus "finetune"
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ipad_detect.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ipad_detect.data import DataError, FrameCache, list_scenes, load_scene
from ipad_detect.evaluate import EvaluationResult
from ipad_detect.models.swin3d import SwinEncoder3d
from ipad_detect.registry import get_kind
from ipad_detect.scoring import evaluate_checkpoint
from ipad_detect.train import TrainOptions, fit_background, train

METHODS = ("lora", "full")
LORA_TARGETS = ["q", "v"]
ADAPTER_INFO = "ipad_finetune.json"
# Buffers fit to the scene after the fine-tune, which peft does not save: the cycle check's phase
# profile and the normal bank.
FITTED_BUFFERS = "fitted_buffers.safetensors"


@dataclass
class FinetuneOptions:
    method: str = "lora"
    shots: float = 1.0  # fraction of the real training videos (whole videos, at least one)
    videos: tuple[str, ...] | None = None  # these training videos instead of a drawn fraction
    rank: int = 8
    alpha: float | None = None  # LoRA scaling numerator; default 2 * rank
    epochs: int = 10
    batch_size: int = 8
    lr: float | None = None  # default 1e-4 (full) or 1e-3 (lora: B starts at zero and the rank is low)
    seed: int = 0
    device: str = "cpu"
    stride: int = 1
    max_clips: int | None = None
    cycle_length: float | None = None
    merge: bool = False
    compile: bool = False  # torch.compile for the fine-tune and the evaluation (compiled.py)
    progress: bool = True

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.method == "lora" else 1e-4)


@dataclass
class FinetuneResult:
    model: nn.Module  # the adapted model (a PeftModel for lora)
    evaluation: EvaluationResult
    trainable_parameters: int
    total_parameters: int
    wall_time_s: float  # training only, as the paper's "finetune time"
    videos: list[str]
    cycle_length: float
    epoch_losses: list[float] = field(default_factory=list)
    epoch_recon: list[float] = field(default_factory=list)  # reconstruction MSE alone
    static_frame_mse: float | None = None  # the same of the videos' mean frame (train.static_frame_mse)
    adapter_dir: Path | None = None
    checkpoint: Path | None = None  # our format: the full fine-tune, or the merged LoRA model
    json_path: Path | None = None

    @property
    def trainable_share(self) -> float:
        return self.trainable_parameters / self.total_parameters


# ----------------------------------------------------------------------------- few-shot selection


def select_shots(names: list[str], fraction: float, seed: int) -> list[str]:
    """A reproducible choice of round(fraction · n) whole videos (at least one), in name order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--shots {fraction} is not allowed; give a fraction of the training videos in (0, 1]")
    names = sorted(names)
    if fraction == 1:
        return names
    count = max(1, int(round(fraction * len(names))))
    chosen = np.random.default_rng(seed).choice(len(names), size=count, replace=False)
    return [names[i] for i in sorted(chosen.tolist())]


def named_videos(names: list[str], wanted: tuple[str, ...]) -> list[str]:
    """The training videos asked for by name, in name order; an unknown name is an error that lists the others."""
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError(f"training video(s) {', '.join(unknown)} not in the scene; its training videos: "
                         f"{', '.join(sorted(names))}")
    return sorted(set(wanted))


# ----------------------------------------------------------------------------- LoRA


def trainable_module_names(model: nn.Module) -> list[str]:
    """Modules that train as they are next to the LoRA matrices: the encoder's patch embedding
    and LayerNorms, and the decoder, background, memory and phase head (exact names, so nothing else matches)."""
    names = ["encoder.patch_embed.proj"]
    names += [n for n, m in model.named_modules() if n.startswith("encoder.") and isinstance(m, nn.LayerNorm)]
    names += [n for n in ("decoder", "background", "memory", "phase_head") if getattr(model, n, None) is not None]
    return names


def add_lora(model: nn.Module, rank: int = 8, alpha: float | None = None) -> nn.Module:
    """The model wrapped by peft with LoRA on q and v of every encoder attention block; only the
    LoRA matrices and `trainable_module_names` require gradients."""
    from peft import LoraConfig, get_peft_model

    if not isinstance(getattr(model, "encoder", None), SwinEncoder3d):
        raise ValueError(f"LoRA needs a model with the Swin encoder (full, vswin), not {type(model).__name__}; "
                         f"use --method full")
    if rank < 1:
        raise ValueError(f"--rank {rank} is not allowed; use a positive integer")
    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank,
                        target_modules=LORA_TARGETS, modules_to_save=trainable_module_names(model))
    return get_peft_model(model, config)


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, all) parameters of a model; for a peft model, all = base model + LoRA, without
    counting twice the frozen originals of the modules that peft copies to train."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in model.named_parameters() if ".original_module." not in n)
    return trainable, total


def merge_adapter(peft_model: nn.Module) -> nn.Module:
    """A plain model with the LoRA update folded into q and v and the trained copies in place
    (the peft model itself is left as it is)."""
    merged = copy.deepcopy(peft_model).merge_and_unload()
    for parameter in merged.parameters():
        parameter.requires_grad_(True)
    return merged.eval()


def save_adapter(peft_model: nn.Module, directory: Path | str, info: dict) -> Path:
    """peft's save_pretrained, plus what evaluation needs that peft does not keep (kind, scene,
    cycle length, the pretrained checkpoint)."""
    directory = Path(directory)
    peft_model.save_pretrained(str(directory))
    (directory / ADAPTER_INFO).write_text(json.dumps(info, indent=2))
    fitted = {name: buffer.contiguous() for name, buffer in peft_model.get_base_model().named_buffers()
              if name == "phase_profile" or name.startswith("normal_bank.")}
    if fitted:
        save_file(fitted, str(directory / FITTED_BUFFERS))
    return directory


def load_adapted(adapter_dir: Path | str, pretrained: Path | str | None = None,
                 device: str | torch.device = "cpu") -> Checkpoint:
    """The pretrained checkpoint with a saved adapter put on it (PeftModel.from_pretrained), as a
    Checkpoint that `scoring.evaluate_checkpoint` takes. `pretrained` defaults to the one recorded."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no adapter at {adapter_dir}: expected adapter_config.json from a LoRA finetune")
    info = json.loads((adapter_dir / ADAPTER_INFO).read_text()) if (adapter_dir / ADAPTER_INFO).is_file() else {}
    base = load_checkpoint(pretrained or info["pretrained"], device)
    model = PeftModel.from_pretrained(base.model, str(adapter_dir)).to(device).eval()
    if (adapter_dir / FITTED_BUFFERS).is_file():
        fitted = model.get_base_model()
        buffers = dict(fitted.named_buffers())
        for name, value in load_file(str(adapter_dir / FITTED_BUFFERS), device=str(device)).items():
            if name not in buffers:
                raise ValueError(f"{adapter_dir / FITTED_BUFFERS} holds {name!r}, which the pretrained model lacks")
            owner, _, attribute = name.rpartition(".")
            # replaced whole: a bank refit on the real scene has its own number of clips
            setattr(fitted.get_submodule(owner) if owner else fitted, attribute, value.to(buffers[name].dtype))
    return Checkpoint(path=adapter_dir, kind=base.kind, config=base.config, epoch=info.get("epochs", 0),
                      model=model, info={**base.info, **info.get("checkpoint_info", {})})


# ----------------------------------------------------------------------------- the whole job


def check_real_scene(root: Path | str, scene: str) -> None:
    """A clear error naming the data root and the scenes in it when `scene` has no training/testing frames."""
    root = Path(root)
    for split in ("training", "testing"):
        if not (root / scene / split / "frames").is_dir():
            found = ", ".join(list_scenes(root)) or "none"
            raise DataError(f"scene {scene!r} not found in data root {root} "
                            f"(looked for {root / scene / split / 'frames'}); "
                            f"scenes found there: {found}")


def finetune(root: Path | str, scene: str, pretrained: Path | str, out: Path | str,
             options: FinetuneOptions) -> FinetuneResult:
    """Adapt the checkpoint `pretrained` to `scene`, evaluate it on the scene's test videos, write JSON."""
    if options.method not in METHODS:
        raise ValueError(f"unknown finetune method {options.method!r}; allowed: {', '.join(METHODS)}")
    if options.videos and options.shots != 1:
        raise ValueError("--shots and --videos both choose the training videos; give one of them")
    root, out = Path(root), Path(out)
    check_real_scene(root, scene)
    all_videos = [v.name for v in load_scene(root, scene, splits=("training",)).training]
    if options.videos:
        videos = named_videos(all_videos, options.videos)
    else:
        videos = select_shots(all_videos, options.shots, options.seed)
    base = load_checkpoint(pretrained, options.device)
    if not get_kind(base.kind).learned:
        raise ValueError(f"{base.path} holds a {base.kind} bank, which has nothing to fine-tune; "
                         f"pretrain a full or vswin model")

    torch.manual_seed(options.seed)  # LoRA's A matrices are initialised at random
    model = base.model
    chosen = [v for v in load_scene(root, scene, splits=("training",)).training if v.name in videos]
    fit_background(model, chosen, FrameCache(base.config.image_size))  # this scene's still picture
    if options.method == "lora":
        model = add_lora(model, options.rank, options.alpha)
    else:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    trainable, total = count_trainable(model)

    train_options = TrainOptions(kind=base.kind, epochs=options.epochs, batch_size=options.batch_size,
                                 lr=options.learning_rate, seed=options.seed, device=options.device,
                                 stride=options.stride, max_clips=options.max_clips,
                                 cycle_length=options.cycle_length, compile=options.compile,
                                 progress=options.progress, videos=tuple(videos), period_dir=out / "period")
    run_dir = out / ("resume" if options.method == "lora" else "checkpoint")
    start = time.perf_counter()
    trained = train(root, [scene], base.config, run_dir, train_options, model=model)
    wall_time = time.perf_counter() - start
    model = trained.model.eval()
    cycle_length = trained.cycle_lengths[scene]

    pretrained_path = str(base.path.resolve())  # absolute: the adapter is loaded onto it from anywhere
    info = {"data": str(root), "scenes": [scene], "cycle_lengths": {scene: cycle_length},
            "cycle_length": cycle_length, "pretrained": pretrained_path,
            "pretrain_scenes": base.info.get("scenes", []), "videos": videos}
    adapter_dir, checkpoint_path = None, trained.checkpoint
    if options.method == "lora":
        adapter_dir = save_adapter(model, out / "adapter",
                                   {"pretrained": pretrained_path, "kind": base.kind, "epochs": options.epochs,
                                    "checkpoint_info": info})
        checkpoint_path = None
        if options.merge:
            checkpoint_path = save_checkpoint(out / "merged", merge_adapter(model), base.kind, base.config,
                                              options.epochs, info=info)
    adapted = Checkpoint(path=adapter_dir or checkpoint_path, kind=base.kind, config=base.config,
                         epoch=options.epochs, model=model, info=info)
    evaluation = evaluate_checkpoint(adapted, root, scene, cycle_length=options.cycle_length,
                                     batch_size=options.batch_size, device=options.device,
                                     progress=options.progress, compile=options.compile)
    result = FinetuneResult(model=model, evaluation=evaluation, trainable_parameters=trainable,
                            total_parameters=total, wall_time_s=wall_time, videos=videos,
                            cycle_length=cycle_length, epoch_losses=trained.epoch_losses,
                            epoch_recon=trained.epoch_recon, static_frame_mse=trained.static_frame_mse,
                            adapter_dir=adapter_dir, checkpoint=checkpoint_path)
    evaluation.extra["finetune"] = {
        "method": options.method, "shots": len(videos) / len(all_videos), "videos": videos,
        "all_videos": len(all_videos),
        "rank": options.rank if options.method == "lora" else None, "epochs": options.epochs,
        "lr": options.learning_rate, "trainable_parameters": trainable, "total_parameters": total,
        "trainable_share": result.trainable_share, "wall_time_s": wall_time, "epoch_losses": trained.epoch_losses,
        "epoch_recon": trained.epoch_recon, "static_frame_mse": trained.static_frame_mse,
        "pretrained": pretrained_path, "pretrain_scenes": base.info.get("scenes", []),
        "adapter": str(adapter_dir) if adapter_dir else None,
        "checkpoint": str(checkpoint_path) if checkpoint_path else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    result.json_path = out / "evaluation.json"
    temporary = out / ".evaluation.json.tmp"
    temporary.write_text(json.dumps(evaluation.to_json(), indent=1))
    temporary.replace(result.json_path)
    return result
