"""Training: Adam on clips of normal training videos, one checkpoint per epoch, resumable.

Reproducible for a given seed: the model is initialised after `torch.manual_seed(seed)`, epoch e
shuffles with a generator seeded `seed + e`, and the torch RNG is saved with every checkpoint, so
a run interrupted after epoch k and resumed ends with the same weights as one that never stopped.

Multi-GPU / multi-node through torchrun: when WORLD_SIZE > 1 the process group is initialised
(nccl on cuda, gloo on cpu), the model is wrapped in DistributedDataParallel, each rank reads its
share of the clips through a DistributedSampler, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from ipad_detect.checkpoint import (
    epoch_dirs,
    load_training_state,
    read_description,
    resize_buffers_like,
    save_checkpoint,
    unreadable,
)
from ipad_detect.compiled import compile_model
from ipad_detect.config import ModelConfig
from ipad_detect.data import ClipDataset, FrameCache, Uint8Clips, Video, clips_to_float, load_scene, to_clip_tensor
from ipad_detect.models import unwrapped
from ipad_detect.models.background import matched_light
from ipad_detect.models.normal_bank import BANK_CLIPS, pixel_clips
from ipad_detect.models.swin3d import use_attention
from ipad_detect.period_estimation import align_phase, frame_features, label_videos, reference_cycle
from ipad_detect.registry import build_model, get_kind, kind_config


@dataclass
class TrainOptions:
    kind: str = "full"
    epochs: int = 1
    batch_size: int = 8
    lr: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    stride: int = 1  # clip stride of the training sampler
    max_clips: int | None = None  # at most this many clips per epoch, a fresh random draw each epoch
    cycle_length: float | None = None  # frames per cycle when videos have no period labels
    init_weights: Path | None = None  # torchvision swin3d_t state_dict for the encoder
    bf16: bool = False  # autocast to bfloat16 (GPU)
    compile: bool = False  # torch.compile the model (compiled.py); the first step's time is printed
    progress: bool = True
    videos: tuple[str, ...] | None = None  # names of the training videos to use (few-shot), default all
    period_dir: Path | None = None  # where estimated period files go (default <out>/period)
    frame_cache: Path | None = None  # decoded frames, memory-mapped (FrameCache; default <out>/frames on a GPU)


@dataclass
class TrainResult:
    model: torch.nn.Module
    checkpoint: Path | None
    epoch_losses: list[float] = field(default_factory=list)  # mean total loss of each epoch run now
    cycle_lengths: dict[str, float] = field(default_factory=dict)
    epoch_recon: list[float] = field(default_factory=list)  # its reconstruction MSE alone
    static_frame_mse: float | None = None  # the same MSE of each scene's mean training frame (see below)
    lit_static_frame_mse: float | None = None  # ... of that mean frame in each frame's light (match_light)
    compile_seconds: float | None = None  # the first training step of a --compile run, compiling included
    # Every epoch of the run, those of earlier sessions included (kept in each checkpoint's info):
    # {"epoch", "loss", "recon", "seconds"}, so a resumed run still reports its whole training.
    history: list[dict] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Wall time of the whole training, summed over the sessions that ran it."""
        return sum(epoch["seconds"] for epoch in self.history)

    @property
    def last_recon(self) -> float | None:
        """The reconstruction MSE of the last epoch trained, in this session or an earlier one."""
        return self.history[-1]["recon"] if self.history else None


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on cuda, gloo on cpu)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    if world_size <= 1:
        return Distributed(device=torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = torch.device(f"cuda:{local_rank}") if device == "cuda" else torch.device("cpu")
    if device == "cuda":
        torch.cuda.set_device(torch_device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), device=torch_device,
                       owns_group=owns)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def mean_frame(videos: list[Video], cache: FrameCache) -> np.ndarray:
    """Per-pixel mean of the videos' frames, float64 [H, W, 3] in [-1, 1]."""
    frames = sum(v.num_frames for v in videos)
    return sum(cache.get(v).sum(axis=0, dtype=np.float64) for v in videos) / frames / 127.5 - 1.0


def fit_background(model: torch.nn.Module, videos: list[Video], cache: FrameCache) -> None:
    """Start a model's still background (`models/background.py`) at the videos' mean frame."""
    if hasattr(model, "background"):
        model.background.fit(torch.from_numpy(mean_frame(videos, cache)).permute(2, 0, 1).float())


@torch.no_grad()
def fit_memory(model: torch.nn.Module, clips: Dataset, batches: int = 4, batch_size: int = 8, seed: int = 0) -> None:
    """Start a model's memory slots at encoder features of training clips (`Memory.fit`).

    The features are taken as training will see them: a BatchNorm layer normalises by the batch, not by
    its running statistics, which are still untrained (mean 0, variance 1). With those, MemAE's slots
    started about 170 times smaller than its training features (norm 0.026 against 4.4): the softmax
    over the slots was flat, the hard shrinkage (threshold 2 / M) zeroed every weight and no gradient
    reached the memory or the encoder. Started right, 11 slots per token are read at first; MemAE
    still ends at the still picture within the CPU budget (A01, 300 clips: 0.43 of the mean frame's
    error), its read-out collapsed onto 12 of 200 slots, about one per token."""
    if getattr(model, "memory", None) is None:
        return
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(clips), generator=generator)[:batches * batch_size].tolist()
    was_training = model.training
    model.eval()  # no stochastic depth, but BatchNorm by the batch as in training (see above)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.train()
    queries = torch.cat([model.memory_queries(torch.stack([clips[i][0] for i in chosen[j:j + batch_size]]))
                         for j in range(0, len(chosen), batch_size)])
    model.train(was_training)
    model.memory.fit(queries, generator)


def static_frame_mse(videos: list[Video], cache: FrameCache, match_light: bool = False) -> float:
    """Reconstruction MSE (pixels in [-1, 1]) of the best static picture, each scene's per-pixel
    mean training frame. The full model's training loss is mostly its phase term, so this is the
    yardstick of the reconstruction part: a model not below it has learned no more than a still picture.
    With `match_light`, the mean frame first takes each frame's light as a model's reconstruction
    does (`models/background.py`): the yardstick of a model that matches the light."""
    total, count = 0.0, 0
    for scene in sorted({v.scene for v in videos}):
        scene_videos = [v for v in videos if v.scene == scene]
        mean = torch.from_numpy(mean_frame(scene_videos, cache)).float().permute(2, 0, 1)[None, :, None]
        for video in scene_videos:  # one video at a time: a real scene's frames are gigabytes as floats
            frames = to_clip_tensor(cache.get(video))[None]  # [1, 3, N, H, W]
            still = mean.expand_as(frames)
            if match_light:
                still = matched_light(still, frames)
            total += float((frames - still).double().pow(2).sum())
            count += frames.numel()
    return total / count


def parse_scenes(scenes: list[str] | str) -> list[str]:
    """Scene names from repeated options and/or comma lists ("S01,S02")."""
    items = [scenes] if isinstance(scenes, str) else scenes
    names = [name.strip() for item in items for name in item.split(",") if name.strip()]
    if not names:
        raise ValueError("no scene given; pass --scene S01 (repeat it or use a comma list for several)")
    return names


def training_videos(root: Path, scenes: list[str], cache: FrameCache, cycle_length: float | None = None,
                    names: tuple[str, ...] | None = None,
                    period_dir: Path | None = None) -> tuple[list[Video], dict[str, float]]:
    """Training videos of every scene (only those in `names` when given), each with a phase:
    labelled, or estimated per scene by `period_estimation` (the files written to
    `period_dir/<scene>` when given, for inspection); and the cycle length of every scene."""
    videos, lengths = [], {}
    for name in scenes:
        scene_videos = load_scene(root, name, splits=("training",)).training
        if names is not None:
            scene_videos = [v for v in scene_videos if v.name in names]
            if not scene_videos:
                raise ValueError(f"none of the training videos {', '.join(names)} exists in scene {name}")
        scene_out = Path(period_dir) / name if period_dir is not None else None
        lengths[name] = label_videos(scene_videos, cache, cycle_length, scene_out)
        videos += scene_videos
    return videos, lengths


# config fields training never reads
SCORING_FIELDS = ("phase_check", "phase_score_weight", "window", "bank_at_phase", "pixel_weight")


RESUME_FIELDS = ("scenes", "videos", "seed", "lr", "batch_size", "stride", "max_clips")  # a resume must keep these


def _check_resumable(checkpoint: Path, kind: str, config: ModelConfig, info: dict) -> int:
    """Epochs done in `checkpoint`, if this run may go on from it: the same model, config, data and
    training options (`RESUME_FIELDS`; `--epochs` may grow). Anything else is refused, naming it,
    because the optimizer state and the epochs done belong to the settings the run began with."""
    description = read_description(checkpoint)
    saved = ModelConfig(**description["config"]).model_copy(update={f: getattr(config, f) for f in SCORING_FIELDS})
    if description["kind"] != kind or saved != config:
        raise ValueError(f"{checkpoint} holds a {description['kind']!r} model with config "
                         f"{description['config']['name']!r} that differs from this run's {kind!r}/{config.name!r}; "
                         f"use another --out or the same settings to resume")
    before = description.get("info", {})
    changed = [f"{name} {before[name]!r} -> {info.get(name)!r}" for name in RESUME_FIELDS
               if name in before and before[name] != info.get(name)]
    if changed:
        raise ValueError(f"{checkpoint} was trained with other settings than this run's ({'; '.join(changed)}); "
                         f"use another --out, or the same settings to resume")
    return int(description["epoch"])


def _diverged(where: str, lr: float, last_good: Path | None) -> ValueError:
    kept = f"the last good checkpoint is {last_good}" if last_good is not None else "no checkpoint was written"
    return ValueError(f"training diverged {where} at learning rate {lr}; {kept}. Lower --lr and train again")


def _resume_point(out: Path) -> Path | None:
    """The newest checkpoint of a run folder that loads whole; a damaged newer one (a truncated
    file, a disk that filled up) is skipped with a warning, so the run goes on from the last good epoch."""
    for candidate in reversed(epoch_dirs(out)):
        problem = unreadable(candidate)
        if problem is None:
            return candidate
        print(f"warning: skipping the damaged checkpoint {candidate} ({problem}); resuming from an earlier epoch")
    return None


def train(root: Path | str, scenes: list[str], config: ModelConfig, out: Path | str | None,
          options: TrainOptions, model: torch.nn.Module | None = None) -> TrainResult:
    """Train (or resume) a model of `options.kind` on the training videos of `scenes`.

    `model`: an already built model to train further (fine-tuning a pretrained one, possibly with
    adapters); only its parameters that require gradients are optimised."""
    get_kind(options.kind)  # an unknown kind is refused before any work
    if options.epochs < 1 or options.batch_size < 1 or options.lr <= 0:
        raise ValueError("epochs and batch size must be >= 1 and the learning rate > 0")
    if options.max_clips is not None and options.max_clips < 1:
        raise ValueError(f"max clips {options.max_clips} is not allowed; give at least 1 clip per epoch, or none "
                         f"for every clip")
    root, out = Path(root), (Path(out) if out is not None else None)
    world = setup_distributed(options.device)
    try:
        return _train(root, scenes, config, out, options, world, model)
    finally:
        if world.owns_group:
            dist.destroy_process_group()


def epoch_clips(clips: Dataset, max_clips: int | None, seed: int, epoch: int) -> Dataset:
    """The clips one epoch trains on: all of them, or `max_clips` drawn afresh for every epoch from
    (seed, epoch), so a capped run still sees every clip over its epochs and a resumed run draws the
    same ones. Every DDP rank draws the same subset and its sampler splits it."""
    if not max_clips or max_clips >= len(clips):
        return clips
    chosen = np.random.default_rng((seed, epoch)).choice(len(clips), max_clips, replace=False)
    return Subset(clips, sorted(chosen.tolist()))


@torch.no_grad()
def fit_phase_profile(model: torch.nn.Module, clips: ClipDataset, device: torch.device, batch_size: int,
                      stride: int = 2) -> None:
    """The phase head's mean predicted distribution for every true phase bin, over the normal
    training clips (every `stride`-th): the profile the cycle check compares test clips with
    (`models/phase.py`). A bin without clips takes the profile of the nearest bin that has some."""
    base = unwrapped(model)
    if getattr(base, "phase_head", None) is None:
        return
    bins = base.cfg.phase_bins
    sums = torch.zeros(bins, bins, dtype=torch.float64)
    counts = torch.zeros(bins, dtype=torch.float64)
    was_training = base.training
    base.eval()
    subset = Subset(clips, list(range(0, len(clips), stride)))
    for batch, targets in DataLoader(subset, batch_size=batch_size):
        keep = targets >= 0
        if not keep.any():
            continue
        probs = base.phase_head(base.encode(batch[keep].to(device))[1]).float().softmax(dim=1).double().cpu()
        sums.index_add_(0, targets[keep], probs)
        counts.index_add_(0, targets[keep], torch.ones(int(keep.sum()), dtype=torch.float64))
    base.train(was_training)
    present = torch.nonzero(counts).flatten()
    if len(present) == 0:
        return
    offsets = (torch.arange(bins)[:, None] - present[None, :]).abs()
    nearest = present[torch.minimum(offsets, bins - offsets).argmin(dim=1)]
    base.phase_profile.copy_((sums[nearest] / counts[nearest, None]).to(base.phase_profile))


@torch.no_grad()
def fit_normal_bank(model: torch.nn.Module, clips: ClipDataset, device: torch.device, batch_size: int,
                    cycle_length: float | None = None, limit: int = BANK_CLIPS) -> None:
    """The normal bank of a model that has one: its tokens of up to `limit` training clips, evenly
    spaced over all of them (`models/normal_bank.py`), and, given the cycle length of their one
    scene, the phase of each clip's centre frame by alignment to the scene's reference cycle (the
    estimator test videos get, so both share one phase origin)."""
    base = unwrapped(model)
    if getattr(base, "normal_bank", None) is None:
        return
    was_training = base.training
    base.eval()
    chosen = np.unique(np.linspace(0, len(clips) - 1, min(limit, len(clips))).round().astype(int))
    tokens, pixels = [], []
    for batch, _ in DataLoader(Subset(clips, chosen.tolist()), batch_size=batch_size):
        tokens.append(base.encode(batch.to(device))[0].float().cpu())
        pixels.append(pixel_clips(batch))
    phase = reference = None
    if cycle_length is not None:
        features = {v.name: frame_features(clips.cache.get(v)) for v in clips.videos}
        reference = reference_cycle(list(features.values()), cycle_length)
        phases = {name: align_phase(f, reference, cycle_length)[1] for name, f in features.items()}
        phase = torch.tensor([phases[clips.index[i][0].name][clips.index[i][1] + clips.centre] for i in chosen])
    base.normal_bank.fit(torch.cat(tokens).to(device), torch.cat(pixels), phase, reference, cycle_length)
    base.train(was_training)


LOADER_WORKERS = 8  # processes that read a GPU's training clips (a CPU run reads them itself, as ever)


def training_loader(clips: Dataset, batch_size: int, device: torch.device, sampler: DistributedSampler | None = None,
                    generator: torch.Generator | None = None) -> DataLoader:
    """Batches of uint8 clips (`Uint8Clips`), shuffled by `generator` or drawn by `sampler`. For a
    GPU they are read by worker processes into pinned memory, so reading and the copy overlap the
    steps; the order is the generator's either way."""
    workers = min(LOADER_WORKERS, os.cpu_count() or 1) if device.type == "cuda" else 0
    return DataLoader(clips, batch_size=batch_size, sampler=sampler, shuffle=sampler is None, generator=generator,
                      pin_memory=device.type == "cuda", num_workers=workers, prefetch_factor=4 if workers else None)


def frame_cache_folder(root: Path, out: Path | None, options: TrainOptions, device: torch.device) -> Path | None:
    """Where the decoded frames are kept (`TrainOptions.frame_cache`): never inside the dataset."""
    folder = options.frame_cache or (out / "frames" if out is not None and device.type == "cuda" else None)
    if folder is not None and (folder.resolve() == root.resolve() or root.resolve() in folder.resolve().parents):
        raise ValueError(f"the frame cache {folder} lies inside the data root {root}; nothing is written into the "
                         f"dataset: give --frame-cache a folder outside it (or --out one outside it)")
    return folder


def _train(root: Path, scenes: list[str], config: ModelConfig, out: Path | None, options: TrainOptions,
           world: Distributed, model: torch.nn.Module | None = None) -> TrainResult:
    seed_everything(options.seed)
    config = kind_config(options.kind, config)
    cache = FrameCache(config.image_size, frame_cache_folder(root, out, options, world.device))
    period_dir = options.period_dir or (out / "period" if out is not None and world.is_main else None)
    videos, lengths = training_videos(root, scenes, cache, options.cycle_length, options.videos, period_dir)
    info = {"data": str(root), "scenes": scenes, "cycle_lengths": lengths,
            "cycle_length": float(np.median(list(lengths.values()))), "seed": options.seed,
            "lr": options.lr, "batch_size": options.batch_size, "stride": options.stride,
            "max_clips": options.max_clips}
    if options.videos is not None:
        info["videos"] = sorted(v.name for v in videos)

    if not get_kind(options.kind).learned:  # nothing to optimise: fill the bank once
        model = build_model(options.kind, config)
        model.fit(videos, cache, next(iter(lengths.values())) if len(lengths) == 1 else None)
        path = save_checkpoint(out, model, options.kind, config, 1, info=info) if out and world.is_main else None
        return TrainResult(model, path, [], lengths)

    all_clips = ClipDataset(videos, config.image_size, config.clip_len, options.stride, config.phase_bins, cache)
    for video in videos:  # decoded (or mapped) here, before any loader worker starts
        cache.get(video)

    if model is None:
        model = build_model(options.kind, config)
        fit_background(model, videos, all_clips.cache)  # a resumed run loads its trained ones below
        fit_memory(model, all_clips, seed=options.seed)
    if options.init_weights:
        from ipad_detect.models.swin_weights import load_swin3d_weights

        if not hasattr(model, "encoder"):
            raise ValueError(f"--init-weights needs a Swin model (full, vswin), not {options.kind!r}")
        load_swin3d_weights(model.encoder, options.init_weights)
    model.to(world.device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=options.lr)

    start_epoch, history = 0, []
    last = _resume_point(out) if out else None
    if last is not None:
        start_epoch = _check_resumable(last, options.kind, config, info)
        history = list(read_description(last).get("info", {}).get("history", []))
        from safetensors.torch import load_model

        resize_buffers_like(model, last / "model.safetensors")
        load_model(model, str(last / "model.safetensors"), device=str(world.device))
        load_training_state(last, optimizer)
        if world.is_main and options.progress:
            print(f"resuming from {last} (epoch {start_epoch} of {options.epochs} done)")

    core = model
    if world.world_size > 1:
        ids = [world.device.index] if world.device.type == "cuda" else None
        # A model that reconstructs from an earlier encoder stage and has no phase head leaves the
        # later stages unused.
        unused = getattr(core, "phase_head", True) is None and getattr(core, "decode_norm", None) is not None
        model = DistributedDataParallel(core, device_ids=ids, find_unused_parameters=unused)
    if options.compile:
        model = compile_model(model, world.device)
    compile_seconds = None

    autocast = (torch.autocast(device_type=world.device.type, dtype=torch.bfloat16)
                if options.bf16 else nullcontext())
    losses, recon_losses, path = [], [], last
    for epoch in range(start_epoch, options.epochs):
        epoch_started = time.perf_counter()
        dataset = epoch_clips(Uint8Clips(all_clips), options.max_clips, options.seed, epoch)
        if world.world_size > 1:
            sampler = DistributedSampler(dataset, num_replicas=world.world_size, rank=world.rank, shuffle=True,
                                         seed=options.seed)
            sampler.set_epoch(epoch)
            loader = training_loader(dataset, options.batch_size, world.device, sampler=sampler)
        else:
            generator = torch.Generator().manual_seed(options.seed + epoch)
            loader = training_loader(dataset, options.batch_size, world.device, generator=generator)
        model.train()
        total, recon_total, count = 0.0, 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{options.epochs}", unit="batch",
                   disable=not (options.progress and world.is_main))
        for step, (clips, targets) in enumerate(bar):
            first_compiled = options.compile and compile_seconds is None
            started = time.perf_counter()
            clips = clips_to_float(clips.to(world.device, non_blocking=True))
            phase_target = targets.to(world.device) if bool((targets >= 0).all()) else None
            with autocast:
                output = model(clips)
            parts = core.loss(output, clips, phase_target)
            loss = parts["total"]
            if not torch.isfinite(loss):  # stop before a step spoils the weights; no checkpoint of them
                raise _diverged(f"at epoch {epoch + 1}, step {step + 1}: the loss is {loss.item()}", options.lr, path)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(clips)
            recon_total += parts["recon"].item() * len(clips)
            count += len(clips)
            if first_compiled:  # .item() above has waited for the step
                compile_seconds = time.perf_counter() - started
                if world.is_main:
                    print(f"torch.compile: first training step {compile_seconds:.1f} s (compiling)", flush=True)
            bar.set_postfix(loss=f"{total / count:.4f}")
        losses.append(total / max(count, 1))
        recon_losses.append(recon_total / max(count, 1))
        if world.world_size > 1:  # BatchNorm running stats drift per rank; keep rank 0's, as saved
            for buffer in core.buffers():
                dist.broadcast(buffer, src=0)
        if not all(bool(torch.isfinite(p).all()) for p in core.parameters()):  # the epoch's last step diverged
            raise _diverged(f"in epoch {epoch + 1}: its weights are no longer finite", options.lr, path)
        if epoch + 1 == options.epochs:  # what scoring reads besides the weights, saved below (same on every rank)
            use_attention(core, "eager")  # the fits run it uncompiled, where FlexAttention is not fused
            fit_phase_profile(core, all_clips, world.device, options.batch_size)
            fit_normal_bank(core, all_clips, world.device, options.batch_size,
                            next(iter(lengths.values())) if len(lengths) == 1 else None)
        history.append({"epoch": epoch + 1, "loss": losses[-1], "recon": recon_losses[-1],
                        "seconds": time.perf_counter() - epoch_started})
        if out is not None and world.is_main:
            path = save_checkpoint(out, core, options.kind, config, epoch + 1, optimizer, {**info, "history": history})
        if world.world_size > 1:
            dist.barrier()
    core.eval()
    # The yardstick on the rank that reports, also for a finished run resumed with no epoch left (its
    # last epoch's error is in the checkpoint; the frames are decoded already).
    static = lit = None
    if history and world.is_main:
        static = static_frame_mse(videos, all_clips.cache)
        if config.match_light:
            lit = static_frame_mse(videos, all_clips.cache, match_light=True)
    return TrainResult(core, path if world.is_main else None, losses, lengths, recon_losses, static, lit,
                       compile_seconds, history)
