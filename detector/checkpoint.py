"""Checkpoints: one folder per saved epoch, written atomically.

    <run>/epoch-0003/model.safetensors     the weights (safetensors, no pickle)
    <run>/epoch-0003/config.json           model kind, ModelConfig, epoch, run info (scenes, cycle length)
    <run>/epoch-0003/training_state.pt     optimizer and RNG state (tensors only, read weights_only)

A folder is written under a temporary name and renamed into place, so a checkpoint folder either
exists complete or not at all; `find_checkpoint(run)` picks the newest. Older epochs beyond
`keep` are removed after the new one lands, and so are the temporary folders of killed runs. A
resume skips a damaged newest folder (`unreadable`: a disk that filled up, a file cut short).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from ipad_detect.config import ModelConfig
from ipad_detect.registry import build_model
from ipadgen.contract import process_running

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAINING_STATE = "training_state.pt"
FORMAT = 1


@dataclass
class Checkpoint:
    path: Path
    kind: str
    config: ModelConfig
    epoch: int  # epochs completed
    model: nn.Module
    info: dict = field(default_factory=dict)


class CheckpointWriteError(ValueError):
    """A checkpoint that could not be written (disk full, read-only): one line, the earlier ones kept."""


def epoch_dirs(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("epoch-[0-9]*") if (p / CONFIG).is_file())


def unreadable(checkpoint_dir: Path) -> str | None:
    """Why a checkpoint folder cannot be loaded whole (its description, every weight, the training
    state), or None when it can."""
    try:
        read_description(checkpoint_dir)
        with safe_open(str(checkpoint_dir / WEIGHTS), framework="pt") as f:
            for name in f.keys():
                f.get_tensor(name)
        if (checkpoint_dir / TRAINING_STATE).is_file():
            torch.load(checkpoint_dir / TRAINING_STATE, map_location="cpu", weights_only=True)
    except Exception as error:  # any damage: truncated, garbled, missing
        return f"{type(error).__name__}: {error}"
    return None


def find_checkpoint(path: Path | str) -> Path | None:
    """The checkpoint folder at `path`, or the newest one inside the run folder `path`."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return path
    if path.is_dir():
        found = epoch_dirs(path)
        return found[-1] if found else None
    return None


def save_checkpoint(run_dir: Path | str, model: nn.Module, kind: str, config: ModelConfig, epoch: int,
                    optimizer: torch.optim.Optimizer | None = None, info: dict | None = None,
                    keep: int = 2) -> Path:
    """Write `<run_dir>/epoch-NNNN/` atomically and return it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"epoch-{epoch:04d}"
    temporary = run_dir / f".tmp-{final.name}-{os.getpid()}"
    _remove_stale_temporaries(run_dir)
    shutil.rmtree(temporary, ignore_errors=True)
    description = {"format": FORMAT, "kind": kind, "epoch": epoch, "config": config.model_dump(),
                   "info": info or {}}
    try:
        temporary.mkdir()
        save_model(model, str(temporary / WEIGHTS))
        if optimizer is not None:
            torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
                       temporary / TRAINING_STATE)
        (temporary / CONFIG).write_text(json.dumps(description, indent=2))
    except (OSError, RuntimeError, SafetensorError) as error:  # a full disk, quota, a file system gone read-only
        shutil.rmtree(temporary, ignore_errors=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CheckpointWriteError(
            f"checkpoint {final} could not be written ({reason}); the checkpoints already in {run_dir} are "
            "kept: make room (or give another --out) and rerun to resume") from None
    if final.exists():  # re-saving an epoch (e.g. after a crash right after the rename)
        shutil.rmtree(final)
    os.replace(temporary, final)
    for old in epoch_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary checkpoint folders left by processes that no longer run (killed mid-save)."""
    for stale in run_dir.glob(".tmp-epoch-*-*"):
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not process_running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def read_description(path: Path) -> dict:
    """The checkpoint's config.json; a file that is not one says so, naming it."""
    try:
        description = json.loads((path / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path / CONFIG} cannot be read as a checkpoint description ({error})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        found = description.get("format") if isinstance(description, dict) else type(description).__name__
        raise ValueError(f"{path / CONFIG}: checkpoint format {found!r}, expected {FORMAT}")
    return description


def resize_buffers_like(model: nn.Module, weights_file: Path) -> None:
    """Give a model's empty buffers (banks that are filled from data: the nearest-neighbour banks,
    the normal bank) the shapes stored in a weights file, so that a strict load fits."""
    buffers = dict(model.named_buffers())
    try:
        weights = safe_open(str(weights_file), framework="pt")
    except (OSError, SafetensorError) as error:
        raise ValueError(f"{weights_file} cannot be read as safetensors weights ({error})") from None
    with weights as f:
        for name in f.keys():
            if name in buffers and buffers[name].numel() == 0:
                owner, _, attribute = name.rpartition(".")
                module = model.get_submodule(owner) if owner else model
                shape = f.get_slice(name).get_shape()
                setattr(module, attribute, torch.zeros(shape, dtype=buffers[name].dtype, device=buffers[name].device))


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> Checkpoint:
    """Model, kind, config and epoch from a checkpoint folder or a run folder (newest epoch)."""
    found = find_checkpoint(path)
    if found is None:
        raise FileNotFoundError(f"no checkpoint at {path}: expected a folder with {CONFIG} and {WEIGHTS}, "
                                f"or a run folder holding epoch-NNNN/ checkpoints")
    description = read_description(found)
    try:
        config = ModelConfig(**description["config"])
        model = build_model(description["kind"], config)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{found / CONFIG} does not describe a model ({' '.join(str(error).split())[:300]})") from None
    resize_buffers_like(model, found / WEIGHTS)
    try:
        load_model(model, str(found / WEIGHTS), strict=True, device=str(device))
    except (OSError, RuntimeError, SafetensorError) as error:  # cut short, garbage, or another model's weights
        raise ValueError(f"{found / WEIGHTS} does not hold the weights of the {description['kind']!r} model its "
                         f"{CONFIG} describes ({' '.join(str(error).split())[:300]})") from None
    model.to(device).eval()
    return Checkpoint(path=found, kind=description["kind"], config=config, epoch=description["epoch"],
                      model=model, info=description.get("info", {}))


def load_training_state(checkpoint_dir: Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore optimizer and torch RNG state saved beside the weights (weights_only load)."""
    state_file = checkpoint_dir / TRAINING_STATE
    if not state_file.is_file():
        return
    state = torch.load(state_file, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
