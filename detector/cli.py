"""`ipad-detect`: train, pretrain, evaluate and score, one verb per job; finetune, estimate-period
and report for the synthetic-to-real path (paper section 4.4); import, calibrate, watch and export
for real footage.

typer parses, shows the defaults and checks the ranges. Bad input (a usage or data error, and any
ValueError: the data and checkpoint readers raise those for what they cannot read) ends with exit
code 2 and one line on stderr saying what was wrong and what is allowed; anything else keeps its
traceback.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import warnings
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from ipad_detect.registry import get_kind, model_kinds
from ipadgen.commandline import CommandLine, FrameworkError
from ipadgen.contract import OUT_OF_ROOM, write_atomically

CONFIG_NAMES = ("paper", "tiny")

class UsageError(ValueError):
    """A command line that cannot be run; printed as one line, exit code 2."""


def _choices(name: str, values) -> type[Enum]:
    """An Enum of the allowed values: typer 0.12 (the bottom of the range in pyproject) takes no Literal."""
    return Enum(name, [(v, v) for v in values], type=str)


Kind = _choices("Kind", model_kinds())  # imports the models: their decorators register them
ConfigName = _choices("ConfigName", CONFIG_NAMES)
DeviceName = _choices("DeviceName", ("cpu", "cuda"))
Norm = _choices("Norm", ("scene", "video"))
Method = _choices("Method", ("lora", "full"))
Split = _choices("Split", ("training", "testing"))
Format = _choices("Format", ("onnx",))

# ------------------------------------------------------------------ options shared between verbs

Data = Annotated[Path, typer.Option(help="dataset root in the IPAD layout")]
SceneName = Annotated[str, typer.Option("--scene", help="scene name under --data")]
Checkpoint = Annotated[Path, typer.Option(help="checkpoint folder, or a run folder (its newest epoch)")]
Device = Annotated[Optional[DeviceName], typer.Option(help="where to run",
                                                      show_default="cuda when available, else cpu")]
BatchSize = Annotated[int, typer.Option(help="clips per batch (the default is the paper's)", min=1)]
CycleLength = Annotated[Optional[float], typer.Option(
    help="frames per work cycle, for videos without period labels (estimated period files go to <out>/period)",
    show_default="from the period labels, else estimated")]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bars")]
Compile = Annotated[bool, typer.Option(
    "--compile", help="torch.compile the model (on a GPU with fused window attention); the first step compiles, "
                      "minutes for the paper config, and its time is printed")]
PhaseWeight = Annotated[Optional[float], typer.Option(help="weight of the phase error in the final score",
                                                      min=0.0, max=1.0, show_default="the config's")]
Seed = Annotated[int, typer.Option(help="random seed")]
Stride = Annotated[int, typer.Option(help="clip stride of the training sampler", min=1)]
MaxClips = Annotated[Optional[int], typer.Option(
    help="at most this many clips per epoch, drawn afresh each epoch (quick runs)", min=1,
    show_default="every clip")]
Model = Annotated[Kind, typer.Option(help="; ".join(get_kind(k).description for k in model_kinds()))]
Config = Annotated[ConfigName, typer.Option(help="model sizes: paper (256 px, GPU) or tiny (64 px, CPU)")]
Epochs = Annotated[int, typer.Option(help="total epochs (the default is the paper's)", min=1)]
TrainLr = Annotated[Optional[float], typer.Option(help="Adam learning rate",
                                                  show_default="the config's: paper 1e-4, tiny 1e-3")]
InitWeights = Annotated[Optional[Path], typer.Option(
    help="torchvision swin3d_t state_dict (local file) to start the Swin encoder from")]
Bf16 = Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast (GPU)")]
FrameCacheDir = Annotated[Optional[Path], typer.Option(
    metavar="DIR", help="keep the decoded frames here, one memory-mapped uint8 file per video, decoded once",
    show_default="<out>/frames on a GPU; on the CPU frames stay in memory")]
RunOut = Annotated[Optional[Path], typer.Option(
    help="run folder for the checkpoints; training resumes from the newest one in it",
    show_default="runs/<scenes>-<model>-<config>")]
TrainScene = Annotated[list[str], typer.Option("--scene", metavar="SCENE", help="scene name under --data")]
PretrainScenes = Annotated[list[str], typer.Option(
    "--scene", metavar="SCENES", help="scene name under --data (repeat it, or a comma list: S01,S02)")]


def _device(args: SimpleNamespace) -> str:
    """--device, or cuda when available; cuda asked for on a machine without it is a usage error."""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _args(values: dict) -> SimpleNamespace:
    """A verb's options as the runners read them: attributes, choices as their plain strings."""
    return SimpleNamespace(**{k: v.value if isinstance(v, Enum) else v for k, v in values.items()})


# ------------------------------------------------------------------ the app

def _bad_input(error: Exception) -> list[str] | None:
    """The line an error is reported as, or None for a bug (it keeps its traceback)."""
    from ipad_detect.data import DataError

    if isinstance(error, (DataError, UsageError, ValueError, FileNotFoundError)):
        return [" ".join(str(error).split())]
    if isinstance(error, OSError) and error.errno in OUT_OF_ROOM:
        return [f"{error.filename or 'an output'} could not be written ({error.strerror}); make room and rerun "
                f"(training resumes from its last checkpoint)"]
    return None


def _framework_error(e: FrameworkError) -> str:
    """One line for what typer refused: a range or a choice as this CLI has always worded them, else
    typer's message."""
    param, cause = getattr(e, "param", None), e.__cause__
    if param is not None and isinstance(cause, ValidationError):
        err = cause.errors()[0]
        flag = param.opts[0] if getattr(param, "opts", None) else param.human_readable_name
        low, high, given = getattr(param, "min", None), getattr(param, "max", None), err["input"]
        if err["type"] in ("greater_than_equal", "less_than_equal"):
            try:  # the number as the verb reads it ("5" for a float option is 5.0)
                given = type(high if low is None else low)(given)
            except (TypeError, ValueError):
                pass
            if low is not None and high is not None:
                return f"{flag} {given} is not allowed; use a value in [{low:g}, {high:g}]"
            if low is not None:
                return f"{flag} {given} is not allowed; it must be at least {low:g}"
            return f"{flag} {given} is not allowed; it must be at most {high:g}"
        if err["type"] == "value_error":  # a choice: "'x' is not one of 'a', 'b'."
            allowed = str(err.get("ctx", {}).get("error", "")).partition(" is not one of ")[2].rstrip(".")
            return f"{flag}: invalid choice: {given!r}" + (f" (choose from {allowed})" if allowed else "")
        return f"{flag}: {err['msg'][:1].lower()}{err['msg'][1:]} (got {given!r})"
    return " ".join(e.format_message().split())


CLI = CommandLine("ipad-detect", "Periodic video anomaly detection (IPAD): train on normal videos, score new ones.",
                  _bad_input, _framework_error)
app, verb = CLI.app, CLI.verb


# ------------------------------------------------------------------ train, pretrain, evaluate, score

@verb("train", "train a model on one scene",
      "Train a model on the normal training videos of one scene. Writes a checkpoint every epoch; rerun to resume.")
def cmd_train(data: Data, scene: TrainScene, model: Model = Kind.full, config: Config = ConfigName.paper,
              epochs: Epochs = 50, lr: TrainLr = None, seed: Seed = 0, stride: Stride = 1,
              max_clips: MaxClips = None, init_weights: InitWeights = None, bf16: Bf16 = False,
              frame_cache: FrameCacheDir = None, out: RunOut = None, device: Device = None,
              batch_size: BatchSize = 8, cycle_length: CycleLength = None, quiet: Quiet = False,
              compile: Compile = False) -> None:
    _run_training(_args(locals()), several_scenes=False)


@verb("pretrain", "train one model on several scenes",
      "Train one model on the training videos of several scenes (e.g. synthetic scenes before fine-tuning on "
      "real footage).")
def cmd_pretrain(data: Data, scene: PretrainScenes, model: Model = Kind.full, config: Config = ConfigName.paper,
                 epochs: Epochs = 50, lr: TrainLr = None, seed: Seed = 0, stride: Stride = 1,
                 max_clips: MaxClips = None, init_weights: InitWeights = None, bf16: Bf16 = False,
                 frame_cache: FrameCacheDir = None, out: RunOut = None, device: Device = None,
                 batch_size: BatchSize = 8, cycle_length: CycleLength = None, quiet: Quiet = False,
                 compile: Compile = False) -> None:
    _run_training(_args(locals()), several_scenes=True)


@verb("evaluate", "frame AUC of a checkpoint on a scene's test videos",
      "Score every test video of a scene and compute the frame-level AUC with IPAD's protocol; prints a summary "
      "and writes JSON.")
def cmd_evaluate(
    data: Data, scene: SceneName, checkpoint: Checkpoint,
    norm: Annotated[Norm, typer.Option(help="min-max normalise over the whole scene (IPAD) or per video")]
    = Norm.scene,
    phase_weight: PhaseWeight = None,
    out: Annotated[Optional[Path], typer.Option(help="JSON file for AUCs and per-frame scores",
                                                show_default="evaluation-<scene>.json")] = None,
    device: Device = None, batch_size: BatchSize = 8, cycle_length: CycleLength = None, quiet: Quiet = False,
    compile: Compile = False,
) -> None:
    _run_evaluate(_args(locals()))


@verb("score", "per-frame anomaly scores of one video (CSV + PNG curve)",
      "Score one video: a folder of frames (000.jpg, 001.jpg, …) or a video file. Writes per-frame scores as CSV "
      "and a score curve PNG; anomalous frames are shaded when labels are found next to the video in the layout.")
def cmd_score(
    video: Annotated[Path, typer.Argument(
        metavar="VIDEO", show_default=False,
        help="folder of frames, e.g. <root>/<scene>/testing/frames/01, or a video file (mp4, avi, mkv, … "
             "anything opencv opens)")],
    checkpoint: Checkpoint, phase_weight: PhaseWeight = None,
    out: Annotated[Path, typer.Option(help="folder for the CSV and PNG")] = Path("."),
    device: Device = None, batch_size: BatchSize = 8, cycle_length: CycleLength = None, quiet: Quiet = False,
    compile: Compile = False,
) -> None:
    _run_score(_args(locals()))


# ------------------------------------------------------------------ synthetic to real

@verb("finetune", "adapt a pretrained model to a real scene (full or LoRA, few-shot)",
      "Fine-tune a pretrained checkpoint on a real scene's normal training videos (all, or a reproducible "
      "fraction of whole videos), evaluate it on the scene's test videos and print AUC, trainable parameters and "
      "wall time. Scenes without period labels get estimated ones.")
def cmd_finetune(
    real: Annotated[str, typer.Option(metavar="SCENE", help="the real scene under --data, e.g. R01")],
    pretrained: Annotated[Path, typer.Option("--from", metavar="CKPT",
                                             help="checkpoint of ipad-detect train/pretrain (folder or run folder)")],
    data: Annotated[Optional[Path], typer.Option(help="dataset root in the IPAD layout",
                                                 show_default="$IPAD_ROOT")] = None,
    method: Annotated[Method, typer.Option(
        help="lora: LoRA on q/v, patch embedding and LayerNorms, decoder/memory/phase head trainable; full: every "
             "parameter")] = Method.lora,
    shots: Annotated[float, typer.Option(
        metavar="FRACTION", max=1.0,
        help="fraction of the real training videos to use, chosen from the seed (1: all; the paper's few-shot is "
             "0.2)")] = 1.0,
    videos: Annotated[Optional[str], typer.Option(
        metavar="NAMES", help="adapt on these training videos instead, comma-separated names, e.g. 01,03")] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank", min=1)] = 8,
    epochs: Annotated[int, typer.Option(help="fine-tuning epochs", min=1)] = 10,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate",
                                                show_default="1e-3 for lora, 1e-4 for full")] = None,
    seed: Annotated[int, typer.Option(help="seed of the few-shot choice and training")] = 0,
    stride: Stride = 1,
    max_clips: MaxClips = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="lora: also write the merged model as a normal checkpoint (<out>/merged)")] = False,
    out: Annotated[Optional[Path], typer.Option(
        help="output folder", show_default="runs/finetune-<scene>-<method>[-shots<f>]")] = None,
    device: Device = None, batch_size: BatchSize = 8, cycle_length: CycleLength = None, quiet: Quiet = False,
    compile: Compile = False,
) -> None:
    _run_finetune(_args(locals()))


@verb("estimate-period", "cycle length and phase of unlabelled footage",
      "Estimate the cycle length and per-frame phase of a scene's normal training videos from the frames alone; "
      "write them in the period/ format under --out (never into --data). Where the scene has period labels, "
      "print the errors against them.")
def cmd_estimate_period(
    data: Data, scene: SceneName,
    out: Annotated[Path, typer.Option(help="folder for <scene>/training/period/<NN>.npy and estimate.json")]
    = Path("estimated_period"),
) -> None:
    _run_estimate_period(_args(locals()))


@verb("report", "tables (like the paper's 2, 3, 4) and score curves from evaluation JSON",
      "Turn evaluation JSON files of ipad-detect evaluate/finetune into Markdown and CSV tables (models x scenes; "
      "adaptation rows with time and trainable parameters; ablation) and one score-curve PNG per test video.")
def cmd_report(
    json_files: Annotated[list[Path], typer.Argument(metavar="EVAL_JSON", show_default=False,
                                                     help="evaluation JSON files")],
    out: Annotated[Path, typer.Option(help="folder for the tables and curves")],
    no_curves: Annotated[bool, typer.Option("--no-curves", help="tables only")] = False,
) -> None:
    _run_report(_args(locals()))


# ------------------------------------------------------------------ real footage: import, calibrate, watch, export

@verb("import", "video files into the IPAD layout (numbered JPEG frames)",
      "Decode video files (anything opencv-python's VideoCapture opens) and write each as the next video of "
      "<data>/<scene>/<split>/frames/<NN>/ (frames 000.jpg, 001.jpg, …), at a constant frame rate, cropped and "
      "resized. What was done goes to <data>/<scene>/imported.json.")
def cmd_import(
    videos: Annotated[list[Path], typer.Argument(metavar="VIDEO", show_default=False,
                                                 help="video files, in order")],
    scene: Annotated[str, typer.Option(help="scene name: one folder under --data, e.g. R05")],
    split: Annotated[Split, typer.Option(help="training (normal footage) or testing")],
    data: Annotated[Path, typer.Option(help="dataset root to write into")] = Path("."),
    fps: Annotated[Optional[float], typer.Option(
        help="frame rate to resample to by timestamps",
        show_default="the file's own; a variable frame rate is resampled to its median rate")] = None,
    size: Annotated[int, typer.Option(
        help="frames are resized to SIZE x SIZE pixels (the default is the IPAD release's)")] = 256,
    crop: Annotated[Optional[str], typer.Option(
        metavar="X,Y,W,H", help="rectangle of the picture to keep, in source pixels, before resizing",
        show_default="the whole picture")] = None,
    quiet: Quiet = False,
) -> None:
    _run_import(_args(locals()))


@verb("calibrate", "an alarm threshold from normal footage, for a false-alarm rate",
      "Choose the anomaly-score threshold of `watch` from normal footage alone: held-out normal videos "
      "(--normal), else the scene's training videos, each scored against a normal bank refit without it. The "
      "threshold is the lowest at which that footage raises at most the allowed false alarms (an alarm: "
      "--min-duration seconds above it). Written as threshold.json beside the checkpoint; where the scene has "
      "labelled test videos, their precision and recall at it are printed.")
def cmd_calibrate(
    checkpoint: Checkpoint, data: Data, scene: SceneName,
    normal: Annotated[Optional[list[Path]], typer.Option(
        metavar="VIDEO", show_default="leave each training video out",
        help="held-out normal videos (frame folders or video files) instead of leaving training videos out; "
             "several after one --normal, or --normal repeated")] = None,
    false_alarms_per_hour: Annotated[float, typer.Option(
        help="false alarms an hour of normal running may raise", min=0.0)] = 1.0,
    min_duration: Annotated[float, typer.Option(help="seconds above the threshold that make an alarm (> 0)")]
    = 0.5,
    fps: Annotated[Optional[float], typer.Option(help="frame rate of the footage",
                                                 show_default="the scene's scene.json or imported.json")] = None,
    device: Device = None, batch_size: BatchSize = 8, quiet: Quiet = False,
) -> None:
    _run_calibrate(_args(locals()))


@verb("watch", "score a video file, camera or stream online and raise alarms",
      "Score SOURCE frame by frame as it arrives (a video file, a camera index such as 0, or an RTSP/HTTP URL), "
      "with the threshold of `ipad-detect calibrate` (threshold.json beside the checkpoint) or --threshold. An "
      "alarm is reported when the score stays above it for the calibrated minimum duration; each alarm is "
      "written as a contact sheet. A stalled or dropped stream is reopened; Ctrl-C ends with a summary.")
def cmd_watch(
    source: Annotated[str, typer.Argument(metavar="SOURCE", show_default=False,
                                          help="video file, camera index (0, 1, …) or stream URL")],
    checkpoint: Checkpoint,
    threshold: Annotated[Optional[float], typer.Option(help="anomaly score above which frames alarm",
                                                       show_default="the calibrated threshold.json")] = None,
    min_frames: Annotated[Optional[int], typer.Option(
        help="frames above the threshold that make an alarm", min=1,
        show_default="the calibrated one, else 5")] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="append every scored frame and every alarm to this file as JSON lines")] = None,
    alarms: Annotated[Path, typer.Option(help="folder for one contact sheet PNG per alarm")] = Path("alarms"),
    realtime: Annotated[bool, typer.Option(
        "--realtime", help="never fall behind the source: clips that arrive while one is scored are dropped "
                           "(and counted)")] = False,
    every: Annotated[int, typer.Option(help="score every N-th clip (1: every frame)", min=1)] = 1,
    batch: Annotated[int, typer.Option(
        help="score N clips at once: more frames per second on a CPU, each score up to N - 1 frames later",
        min=1)] = 1,
    loop: Annotated[bool, typer.Option("--loop", help="play a video file again from the start at its end")] = False,
    max_frames: Annotated[Optional[int], typer.Option(help="stop after this many frames", min=1,
                                                      show_default="run until the source ends")] = None,
    onnx: Annotated[Optional[Path], typer.Option(
        help="score with this graph of `ipad-detect export` in onnxruntime instead of torch")] = None,
    device: Device = None,
) -> None:
    _run_watch(_args(locals()))


@verb("export", "a trained detector as an ONNX graph",
      "Write the model's scoring path for a batch of clips (encoder, memory, phase head, decoder, the normal "
      "bank's search) as one ONNX graph, checked against torch in onnxruntime (the largest difference is "
      "printed); `watch --onnx` runs on it.")
def cmd_export(
    checkpoint: Checkpoint,
    format: Annotated[Format, typer.Option(help="onnx (the only one)")] = Format.onnx,
    out: Annotated[Optional[Path], typer.Option(
        help="the graph's file; its record beside it as .json", show_default="<checkpoint>/model.onnx")] = None,
) -> None:
    _run_export(_args(locals()))


# ------------------------------------------------------------------ what the verbs do

def reconstruction_summary(recon: float, static: float, lit_static: float | None = None) -> str:
    """The last epoch's reconstruction MSE against a still picture's, with what it means."""
    text = f"reconstruction MSE of the last epoch {recon:.5f}; each scene's mean frame would give {static:.5f}"
    if lit_static is not None:
        text += f", or {lit_static:.5f} in each frame's light (as the model's reconstructions take it)"
    if recon >= (static if lit_static is None else lit_static):
        text += ("\nnote: not below the mean frame: the model has learned no more than a still picture of the "
                 "scene, so normal motion already looks like an error to it; train longer (--epochs)")
    return text


def _check_writable(path: Path, flag: str, folder: bool) -> None:
    """Refuse an output that cannot be written before any work is spent on it, creating nothing:
    its nearest existing folder must take a file; a file must not be a folder, a folder not a file."""
    if not folder and path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {path} cannot be written ({existing} is a file, not a folder); give a writable place")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(f"{flag} {path} cannot be written ({error.strerror or error}); give a writable place")


def _check_outside_data(out: Path, data: Path) -> None:
    """Nothing is ever written inside the dataset: a run, an evaluation or an estimate there could
    replace its frames, labels or period files, or be read back as data."""
    if out.resolve() == data.resolve() or data.resolve() in out.resolve().parents:
        raise UsageError(f"--out {out} lies inside --data {data}; nothing is written into the dataset, "
                         f"choose a place outside it")


def _run_training(args: SimpleNamespace, several_scenes: bool) -> None:
    from ipad_detect.config import get_config
    from ipad_detect.train import TrainOptions, parse_scenes, train

    scenes = parse_scenes(args.scene)
    if not several_scenes and len(scenes) > 1:
        raise UsageError(f"train takes one scene, got {', '.join(scenes)}; use `ipad-detect pretrain` for several")
    config = get_config(args.config)
    out = args.out or Path("runs") / f"{'+'.join(scenes)}-{args.model}-{args.config}"
    _check_outside_data(out, args.data)
    _check_writable(out, "--out", folder=True)
    lr = config.learning_rate if args.lr is None else args.lr
    options = TrainOptions(kind=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=lr,
                           seed=args.seed, device=_device(args), stride=args.stride,
                           max_clips=args.max_clips, cycle_length=args.cycle_length,
                           init_weights=args.init_weights, bf16=args.bf16, compile=args.compile,
                           frame_cache=args.frame_cache, progress=not args.quiet)
    result = train(args.data, scenes, config, out, options)
    if result.checkpoint is not None:
        lengths = ", ".join(f"{s} {v:.1f}" for s, v in result.cycle_lengths.items())
        losses = ", ".join(f"{v:.4f}" for v in result.epoch_losses) or "-"
        print(f"trained {args.model} ({args.config}) on {', '.join(scenes)}; cycle length (frames): {lengths}; "
              f"epoch losses: {losses}; checkpoint: {result.checkpoint}")
        if result.last_recon:
            print(reconstruction_summary(result.last_recon, result.static_frame_mse, result.lit_static_frame_mse))


def _run_evaluate(args: SimpleNamespace) -> None:
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.data import load_scene
    from ipad_detect.scoring import evaluate_checkpoint

    if not (args.data / args.scene / "testing").is_dir():  # a data error first, before loading a model
        load_scene(args.data, args.scene, splits=("testing",))
    out = args.out or Path(f"evaluation-{args.scene}.json")
    _check_writable(out, "--out", folder=False)
    _check_outside_data(out, args.data)
    device = _device(args)
    checkpoint = load_checkpoint(args.checkpoint, device)
    result = evaluate_checkpoint(checkpoint, args.data, args.scene, norm=args.norm,
                                 cycle_length=args.cycle_length, phase_weight=args.phase_weight,
                                 batch_size=args.batch_size, device=device, progress=not args.quiet,
                                 compile=args.compile)
    auc = "n/a (one class only)" if result.auc is None else f"{100 * result.auc:.1f}%"
    print(f"{args.scene}: frame AUC {auc} ({checkpoint.kind}, {checkpoint.config.name}, norm {result.norm}, "
          f"phase weight {result.phase_weight})")
    for name, value in result.per_video_auc.items():
        print(f"  video {name}: " + ("one class only" if value is None else f"{100 * value:.1f}%"))
    try:  # after the figures are printed: a disk that filled up meanwhile loses the file, not the result
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(out, lambda fh: fh.write(json.dumps(result.to_json(), indent=1).encode()))
    except OSError as error:
        raise UsageError(f"--out {out} could not be written ({error.strerror or error}); the figures above "
                         f"are not saved")
    print(f"wrote {out}")


def _run_score(args: SimpleNamespace) -> None:
    import numpy as np

    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.compiled import compile_for_scoring
    from ipad_detect.data import load_scene, video_from_frame_dir
    from ipad_detect.evaluate import combine_scores, frame_auc, trim_labels
    from ipad_detect.plots import plot_score_curve
    from ipad_detect.scoring import resolve_cycle_length, score_video

    device = _device(args)
    video = video_from_frame_dir(args.video)
    _check_writable(args.out, "--out", folder=True)
    checkpoint = load_checkpoint(args.checkpoint, device)
    config = checkpoint.config
    training = []
    if video.scene:  # the video sits in the layout: <root>/<scene>/<split>/frames/<NN>
        scene_dir = video.frame_dir.parents[2]
        if (scene_dir / "training" / "frames").is_dir():
            training = load_scene(scene_dir.parent, video.scene, splits=("training",)).training
    length = resolve_cycle_length(args.cycle_length, training, checkpoint, video.scene)
    frames = video.read(config.image_size)
    model = checkpoint.model
    if args.compile:
        model = compile_for_scoring(model, checkpoint.kind, config, args.batch_size, device)
    values, error = score_video(model, checkpoint.kind, config, frames, length, args.batch_size, device)
    weight = config.phase_score_weight if args.phase_weight is None else args.phase_weight
    normality = combine_scores([values], None if error is None else [error], "video", weight)[0]
    first = config.clip_len // 2
    frame_index = np.arange(first, first + len(values))
    labels = trim_labels(video.labels, config.clip_len) if video.labels is not None else None

    stem = "-".join(part for part in (video.scene, video.split, video.name) if part)
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = args.out / f"{stem}-scores.csv", args.out / f"{stem}-scores.png"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "psnr", "phase_error", "anomaly_score", "label"])
        for i, frame in enumerate(frame_index):
            writer.writerow([int(frame), f"{values[i]:.4f}", "" if error is None else f"{error[i]:.4f}",
                             f"{1 - normality[i]:.6f}", "" if labels is None else int(labels[i])])
    plot_score_curve(png_path, frame_index, 1 - normality, labels,
                     title=f"{stem} — {checkpoint.kind} ({config.name})")
    auc = frame_auc(labels, normality) if labels is not None else None
    summary = f"; frame AUC of this video {100 * auc:.1f}%" if auc is not None else ""
    print(f"scored {len(values)} frames ({first} … {frame_index[-1]}) of {args.video}{summary}")
    print(f"wrote {csv_path} and {png_path}")


def _run_finetune(args: SimpleNamespace) -> None:
    from ipad_detect.finetune import FinetuneOptions, check_real_scene, finetune

    data = args.data or (Path(os.environ["IPAD_ROOT"]) if os.environ.get("IPAD_ROOT") else None)
    if data is None:
        raise UsageError("no data root: pass --data ROOT or set IPAD_ROOT to the dataset root in the IPAD layout")
    if not args.shots > 0:  # at most 1: typer's range (its lower end is open, which typer has not)
        raise UsageError(f"--shots {args.shots} is not allowed; give a fraction of the training videos in (0, 1]")
    videos = tuple(name.strip() for name in args.videos.split(",") if name.strip()) if args.videos else None
    if args.videos is not None and not videos:
        raise UsageError(f"--videos {args.videos!r} names no video; "
                         f"give comma-separated training video names, e.g. 01,03")
    check_real_scene(data, args.real)  # before loading any model
    shots = f"-videos{'+'.join(videos)}" if videos else "" if args.shots == 1 else f"-shots{args.shots:g}"
    out = args.out or Path("runs") / f"finetune-{args.real}-{args.method}{shots}"
    _check_outside_data(out, data)
    _check_writable(out, "--out", folder=True)
    options = FinetuneOptions(method=args.method, shots=args.shots, videos=videos, rank=args.rank, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=_device(args),
                              stride=args.stride, max_clips=args.max_clips, cycle_length=args.cycle_length,
                              merge=args.merge, compile=args.compile, progress=not args.quiet)
    result = finetune(data, args.real, args.pretrained, out, options)
    auc = "n/a (one class only)" if result.evaluation.auc is None else f"{100 * result.evaluation.auc:.1f}%"
    print(f"{args.real}: frame AUC {auc} after {args.method} fine-tuning on {len(result.videos)} training "
          f"video(s) ({', '.join(result.videos)}), {args.epochs} epoch(s)")
    print(f"trainable parameters: {result.trainable_parameters:,} of {result.total_parameters:,} "
          f"({100 * result.trainable_share:.1f}%)")
    print(f"wall time: {result.wall_time_s:.1f} s (fine-tuning); cycle length {result.cycle_length:.2f} frames")
    if result.epoch_recon:
        print(reconstruction_summary(result.epoch_recon[-1], result.static_frame_mse))
    for label, path in (("adapter", result.adapter_dir), ("checkpoint", result.checkpoint)):
        if path is not None:
            print(f"{label}: {path}")
    print(f"wrote {result.json_path}")


def _run_estimate_period(args: SimpleNamespace) -> None:
    from ipad_detect.period_estimation import estimate_scene

    _check_outside_data(args.out, args.data)
    _check_writable(args.out, "--out", folder=True)
    result = estimate_scene(args.data, args.scene, args.out)
    videos = len(result.estimate.phase)
    print(f"{args.scene}: estimated cycle length {result.estimate.cycle_length:.2f} frames "
          f"(from {videos} training video(s))")
    if result.true_cycle_length is not None:
        print(f"  labelled cycle length {result.true_cycle_length:.2f} frames: error "
              f"{result.cycle_length_error_percent:.2f}%")
        print(f"  phase error (mean circular, after aligning phase 0): {result.phase_error:.4f} cycles "
              f"({360 * result.phase_error:.1f} degrees)")
    print(f"wrote {result.period_dir} and {result.period_dir.parent.parent / 'estimate.json'}")


def _scene_fps(scene_dir: Path) -> float | None:
    """The frame rate a scene records: ipadgen's scene.json, or the first imported video's."""
    for name, read in (("scene.json", lambda d: d["spec"]["fps"]),
                       ("imported.json", lambda d: next(iter(d.values()))[0]["fps"])):
        try:
            return float(read(json.loads((scene_dir / name).read_text())))
        except (OSError, ValueError, KeyError, IndexError, TypeError, StopIteration):
            continue
    return None


def _run_calibrate(args: SimpleNamespace) -> None:
    from ipad_detect.calibrate import Threshold, anomaly_scores, choose_threshold, normal_scores, test_quality
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.data import FrameCache, load_scene, video_from_frame_dir
    from ipad_detect.evaluate import trim_labels

    if not args.min_duration > 0:  # an open range, which typer has not
        raise UsageError(f"--min-duration {args.min_duration} is not allowed; give a positive number of seconds")
    device = _device(args)
    scene = load_scene(args.data, args.scene, splits=("training",))
    fps = args.fps or _scene_fps(args.data / args.scene)
    if fps is None or fps <= 0:
        raise UsageError(f"the frame rate of {args.data / args.scene} is not recorded (no scene.json or "
                         f"imported.json with one); give --fps")
    held_out = [video_from_frame_dir(p) for p in args.normal or []]
    checkpoint = load_checkpoint(args.checkpoint, device)
    _check_writable(checkpoint.path / "threshold.json", "--checkpoint", folder=False)
    scores, source = normal_scores(checkpoint, scene.training, held_out, args.batch_size, device, not args.quiet)
    frames = sum(len(s) for s in scores)
    allowed = int(args.false_alarms_per_hour * frames / fps / 3600)
    min_frames = max(1, round(args.min_duration * fps))
    value, alarms = choose_threshold(scores, allowed, min_frames)
    threshold = Threshold(value, min_frames, fps, args.false_alarms_per_hour, frames, alarms, source, checkpoint.kind)
    testing_dir = args.data / args.scene / "testing" / "frames"
    testing = load_scene(args.data, args.scene, splits=("testing",)).testing if testing_dir.is_dir() else []
    labelled = [v for v in testing if v.labels is not None]
    if labelled:
        checkpoint = load_checkpoint(args.checkpoint, device)  # the bank as trained, not as refit above
        cache = FrameCache(checkpoint.config.image_size)
        test_quality(threshold, [anomaly_scores(checkpoint, cache.get(v), args.batch_size, device) for v in labelled],
                     [trim_labels(v.labels, checkpoint.config.clip_len) for v in labelled])
    path = threshold.save(checkpoint.path)
    print(f"threshold {value:.4g} (anomaly score; an alarm is {min_frames} frames above it at {fps:g} fps), from "
          f"{frames} frames of {source}")
    print(f"expected false alarms: {threshold.expected_rate()}; asked at most {args.false_alarms_per_hour:g} per hour")
    if labelled:
        print(f"on the {len(labelled)} labelled test videos: precision {threshold.precision:.3f}, recall "
              f"{threshold.recall:.3f} (frames), anomalies found {threshold.anomalies_found}")
    print(f"wrote {path}")


def _run_watch(args: SimpleNamespace) -> None:
    from ipad_detect.calibrate import Threshold
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.watch import parse_source, watch

    source = parse_source(args.source)
    if args.out is not None:
        _check_writable(args.out, "--out", folder=False)
    _check_writable(args.alarms, "--alarms", folder=True)
    device = _device(args)
    checkpoint = load_checkpoint(args.checkpoint, device)
    if args.threshold is None:
        threshold = Threshold.load(checkpoint.path)
        if args.min_frames is not None:
            threshold.min_frames = args.min_frames
    else:
        threshold = Threshold(args.threshold, args.min_frames or 5, 0.0, 0.0, 0, 0, "given on the command line",
                              checkpoint.kind)
    args.alarms.mkdir(parents=True, exist_ok=True)
    print(f"watching {args.source} with threshold {threshold.threshold:.4g} (alarm after {threshold.min_frames} "
          f"frames above it); Ctrl-C ends", flush=True)
    out = open(args.out, "a") if args.out is not None else None
    try:
        summary = watch(checkpoint, source, threshold, out, args.alarms, args.realtime, args.loop, args.max_frames,
                        args.every, device, report=lambda line: print(line, flush=True), onnx=args.onnx,
                        batch=args.batch)
    finally:
        if out is not None:
            out.close()
    print(f"{summary.ended}: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
          f"{summary.scored} scored, {summary.dropped} clips dropped to keep up, {summary.reconnects} reconnects, "
          f"{len(summary.alarms)} alarm(s)" + (f"; sheets in {args.alarms}" if summary.alarms else ""))


def _run_export(args: SimpleNamespace) -> None:
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.export import export_onnx

    checkpoint = load_checkpoint(args.checkpoint)
    out = args.out or checkpoint.path / "model.onnx"
    _check_writable(out, "--out", folder=False)
    print(f"exporting {checkpoint.kind} ({checkpoint.config.name}) from {checkpoint.path} …", flush=True)
    record = export_onnx(checkpoint, out)
    print(f"wrote {out} (outputs {', '.join(record['outputs'])}); onnxruntime against torch on two clips: max abs "
          f"difference {record['max_abs_difference']:.3g}")


def _run_import(args: SimpleNamespace) -> None:
    from ipad_detect.data import check_scene_name
    from ipad_detect.footage import Crop
    from ipad_detect.ingest import import_footage

    check_scene_name(args.scene)
    crop = Crop.parse(args.crop) if args.crop is not None else None
    for video in args.videos:
        if not video.is_file():
            raise UsageError(f"video file {video} does not exist")
    _check_writable(args.data / args.scene, "--data", folder=True)
    done = import_footage(args.videos, args.data, args.scene, args.split, args.size, args.fps, crop,
                          progress=not args.quiet)
    for entry in done:
        print(f"{Path(entry.source).name} -> {args.data / args.scene / args.split / 'frames' / entry.video}: "
              f"{entry.frames} frames at {entry.fps:g} fps, {entry.size}x{entry.size}"
              + (f" ({entry.note})" if entry.note else ""))
    print(f"wrote {len(done)} video(s); record in {args.data / args.scene / 'imported.json'}")


def _run_report(args: SimpleNamespace) -> None:
    from ipad_detect.report import make_report

    _check_writable(args.out, "--out", folder=True)
    written = make_report(args.json_files, args.out, curves=not args.no_curves)
    for table in written["tables"]:
        print(table.markdown())
    curves = len(written.get("curves", []))
    print(f"wrote {written['report']}, {len(written['tables'])} table(s) as .md and .csv"
          + (f", {curves} score curve(s) in {args.out / 'curves'}" if curves else ""))


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"ipad-detect: warning: {message}\n"



# ------------------------------------------------------------------ entry point

def _spread(argv: list[str], option: str = "--normal") -> list[str]:
    """`calibrate --normal A B C` as argparse's nargs="+" read it (click has no such option):
    each value after the option, up to the next option, gets an `--normal` of its own."""
    spread, taking, rest = [], False, iter(argv)
    for arg in rest:
        if arg == "--":
            return [*spread, arg, *rest]
        if arg == option:
            spread += [arg, *[v for v in [next(rest, None)] if v is not None]]  # its first value, as it comes
            taking = True
        elif taking and not arg.startswith("-"):
            spread += [option, arg]
        else:
            spread.append(arg)
            taking = False
    return spread


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    warnings.formatwarning = _one_line_warning
    return CLI.main(_spread(argv) if argv[:1] == ["calibrate"] else argv)


if __name__ == "__main__":  # also `torchrun -m ipad_detect.cli train ...`
    sys.exit(main())
