"""`ipad-detect`: train, pretrain, evaluate and score, one verb per job; finetune, estimate-period
and report for the synthetic-to-real path (paper section 4.4).

Bad input ends with exit code 2 and one line on stderr saying what was wrong and what is allowed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

from ipadgen.contract import OUT_OF_ROOM, write_atomically
from ipad_detect.kinds import KINDS

CONFIG_NAMES = ("paper", "tiny")


class UsageError(ValueError):
    """A command line that cannot be run; printed as one line, exit code 2."""


def _device(args: argparse.Namespace) -> str:
    """--device, or cuda when available; cuda asked for on a machine without it is a usage error."""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="where to run (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per batch (default 8, as the paper)")
    parser.add_argument("--cycle-length", type=float, default=None,
                        help="frames per work cycle, for videos without period labels (default: from the "
                             "training period labels, else estimated from the training frames; the estimated "
                             "period files are written to <out>/period)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (on a GPU with fused window attention); the first step "
                             "compiles, minutes for the paper config, and its time is printed")


def _add_training(parser: argparse.ArgumentParser, several_scenes: bool) -> None:
    parser.add_argument("--data", required=True, type=Path, help="dataset root in the IPAD layout")
    parser.add_argument("--scene", required=True, action="append",
                        help="scene name under --data" + (" (repeat it, or a comma list: S01,S02)"
                                                          if several_scenes else ""))
    parser.add_argument("--model", choices=KINDS, default="full",
                        help="full (ours), vswin (no memory/phase), memae, conae; the non-learned references frame-nn, "
                             "clip-nn (nearest normal training frame / 9-frame clip), phase-nn (nearest training "
                             "frame at the phase the frame is due at) (default full)")
    parser.add_argument("--config", choices=CONFIG_NAMES, default="paper",
                        help="model sizes: paper (256 px, GPU) or tiny (64 px, CPU) (default paper)")
    parser.add_argument("--epochs", type=int, default=50, help="total epochs (default 50, as the paper)")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam learning rate (default: the config's, paper 1e-4, tiny 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--stride", type=int, default=1, help="clip stride of the training sampler (default 1)")
    parser.add_argument("--max-clips", type=int, default=None,
                        help="at most this many clips per epoch, drawn afresh each epoch (quick runs)")
    parser.add_argument("--init-weights", type=Path, default=None,
                        help="torchvision swin3d_t state_dict (local file) to start the Swin encoder from")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU)")
    parser.add_argument("--frame-cache", type=Path, default=None, metavar="DIR",
                        help="keep the decoded frames here, one memory-mapped uint8 file per video, decoded once "
                             "(default: <out>/frames on a GPU; on the CPU frames stay in memory)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder for the checkpoints; training resumes from the newest one in it "
                             "(default runs/<scenes>-<model>-<config>)")
    _add_common(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipad-detect",
        description="Periodic video anomaly detection (IPAD): train on normal videos, score new ones.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    train = verbs.add_parser("train", help="train a model on one scene",
                             description="Train a model on the normal training videos of one scene. "
                                         "Writes a checkpoint every epoch; rerun to resume.")
    _add_training(train, several_scenes=False)

    pretrain = verbs.add_parser("pretrain", help="train one model on several scenes",
                                description="Train one model on the training videos of several scenes "
                                            "(e.g. synthetic scenes before fine-tuning on real footage).")
    _add_training(pretrain, several_scenes=True)

    evaluate = verbs.add_parser("evaluate", help="frame AUC of a checkpoint on a scene's test videos",
                                description="Score every test video of a scene and compute the frame-level "
                                            "AUC with IPAD's protocol; prints a summary and writes JSON.")
    evaluate.add_argument("--data", required=True, type=Path, help="dataset root in the IPAD layout")
    evaluate.add_argument("--scene", required=True, help="scene name under --data")
    evaluate.add_argument("--checkpoint", required=True, type=Path,
                          help="checkpoint folder, or a run folder (its newest epoch)")
    evaluate.add_argument("--norm", choices=("scene", "video"), default="scene",
                          help="min-max normalise over the whole scene (IPAD) or per video (default scene)")
    evaluate.add_argument("--phase-weight", type=float, default=None,
                          help="weight of the phase error in the final score, 0..1 (default: the config's)")
    evaluate.add_argument("--out", type=Path, default=None,
                          help="JSON file for AUCs and per-frame scores (default evaluation-<scene>.json)")
    _add_common(evaluate)

    score = verbs.add_parser("score", help="per-frame anomaly scores of one video (CSV + PNG curve)",
                             description="Score one video: a folder of frames (000.jpg, 001.jpg, …) or a video file. Writes "
                                         "per-frame scores as CSV and a score curve PNG; anomalous frames "
                                         "are shaded when labels are found next to the video in the layout.")
    score.add_argument("video", type=Path, metavar="VIDEO",
                       help="folder of frames, e.g. <root>/<scene>/testing/frames/01, or a video file (mp4, avi, "
                            "mkv, … anything opencv opens)")
    score.add_argument("--checkpoint", required=True, type=Path,
                       help="checkpoint folder, or a run folder (its newest epoch)")
    score.add_argument("--phase-weight", type=float, default=None,
                       help="weight of the phase error in the final score, 0..1 (default: the config's)")
    score.add_argument("--out", type=Path, default=Path("."), help="folder for the CSV and PNG (default .)")
    _add_common(score)
    _add_adaptation_verbs(verbs)
    return parser


def _add_adaptation_verbs(verbs) -> None:
    finetune = verbs.add_parser(
        "finetune", help="adapt a pretrained model to a real scene (full or LoRA, few-shot)",
        description="Fine-tune a pretrained checkpoint on a real scene's normal training videos (all, or a "
                    "reproducible fraction of whole videos), evaluate it on the scene's test videos and print "
                    "AUC, trainable parameters and wall time. Scenes without period labels get estimated ones.")
    finetune.add_argument("--real", required=True, metavar="SCENE", help="the real scene under --data, e.g. R01")
    finetune.add_argument("--data", type=Path, default=None,
                          help="dataset root in the IPAD layout (default: $IPAD_ROOT)")
    finetune.add_argument("--from", dest="pretrained", required=True, type=Path, metavar="CKPT",
                          help="checkpoint of ipad-detect train/pretrain (folder or run folder)")
    finetune.add_argument("--method", choices=("lora", "full"), default="lora",
                          help="lora: LoRA on q/v, patch embedding and LayerNorms, decoder/memory/phase head "
                               "trainable; full: every parameter (default lora)")
    finetune.add_argument("--shots", type=float, default=1.0, metavar="FRACTION",
                          help="fraction of the real training videos to use, chosen from the seed (default 1: all; "
                               "the paper's few-shot is 0.2)")
    finetune.add_argument("--videos", default=None, metavar="NAMES",
                          help="adapt on these training videos instead, comma-separated names, e.g. 01,03")
    finetune.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    finetune.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (default 10)")
    finetune.add_argument("--lr", type=float, default=None,
                          help="Adam learning rate (default 1e-3 for lora, 1e-4 for full)")
    finetune.add_argument("--seed", type=int, default=0, help="seed of the few-shot choice and training (default 0)")
    finetune.add_argument("--stride", type=int, default=1, help="clip stride of the training sampler (default 1)")
    finetune.add_argument("--max-clips", type=int, default=None,
                          help="at most this many clips per epoch, drawn afresh each epoch")
    finetune.add_argument("--merge", action="store_true",
                          help="lora: also write the merged model as a normal checkpoint (<out>/merged)")
    finetune.add_argument("--out", type=Path, default=None,
                          help="output folder (default runs/finetune-<scene>-<method>[-shots<f>])")
    _add_common(finetune)

    estimate = verbs.add_parser(
        "estimate-period", help="cycle length and phase of unlabelled footage",
        description="Estimate the cycle length and per-frame phase of a scene's normal training videos from "
                    "the frames alone; write them in the period/ format under --out (never into --data). "
                    "Where the scene has period labels, print the errors against them.")
    estimate.add_argument("--data", required=True, type=Path, help="dataset root in the IPAD layout")
    estimate.add_argument("--scene", required=True, help="scene name under --data")
    estimate.add_argument("--out", type=Path, default=Path("estimated_period"),
                          help="folder for <scene>/training/period/<NN>.npy and estimate.json "
                               "(default estimated_period)")

    calibrate = verbs.add_parser(
        "calibrate", help="an alarm threshold from normal footage, for a false-alarm rate",
        description="Choose the anomaly-score threshold of `watch` from normal footage alone: held-out normal "
                    "videos (--normal), else the scene's training videos, each scored against a normal bank "
                    "refit without it. The threshold is the lowest at which that footage raises at most the "
                    "allowed false alarms (an alarm: --min-duration seconds above it). Written as "
                    "threshold.json beside the checkpoint; where the scene has labelled test videos, their "
                    "precision and recall at it are printed.")
    calibrate.add_argument("--checkpoint", required=True, type=Path,
                           help="checkpoint folder, or a run folder (its newest epoch)")
    calibrate.add_argument("--data", required=True, type=Path, help="dataset root in the IPAD layout")
    calibrate.add_argument("--scene", required=True, help="scene name under --data")
    calibrate.add_argument("--normal", nargs="+", type=Path, default=None, metavar="VIDEO",
                           help="held-out normal videos (frame folders or video files) instead of leaving "
                                "training videos out")
    calibrate.add_argument("--false-alarms-per-hour", type=float, default=1.0,
                           help="false alarms an hour of normal running may raise (default 1)")
    calibrate.add_argument("--min-duration", type=float, default=0.5,
                           help="seconds above the threshold that make an alarm (default 0.5)")
    calibrate.add_argument("--fps", type=float, default=None,
                           help="frame rate of the footage (default: the scene's scene.json or imported.json)")
    calibrate.add_argument("--device", choices=("cpu", "cuda"), default=None,
                           help="where to run (default: cuda when available, else cpu)")
    calibrate.add_argument("--batch-size", type=int, default=8, help="clips per batch (default 8)")
    calibrate.add_argument("--quiet", action="store_true", help="no progress bars")

    watch = verbs.add_parser(
        "watch", help="score a video file, camera or stream online and raise alarms",
        description="Score SOURCE frame by frame as it arrives (a video file, a camera index such as 0, or an "
                    "RTSP/HTTP URL), with the threshold of `ipad-detect calibrate` (threshold.json beside the "
                    "checkpoint) or --threshold. An alarm is reported when the score stays above it for the "
                    "calibrated minimum duration; each alarm is written as a contact sheet. A stalled or "
                    "dropped stream is reopened; Ctrl-C ends with a summary.")
    watch.add_argument("source", metavar="SOURCE", help="video file, camera index (0, 1, …) or stream URL")
    watch.add_argument("--checkpoint", required=True, type=Path,
                       help="checkpoint folder, or a run folder (its newest epoch)")
    watch.add_argument("--threshold", type=float, default=None,
                       help="anomaly score above which frames alarm (default: the calibrated threshold.json)")
    watch.add_argument("--min-frames", type=int, default=None,
                       help="frames above the threshold that make an alarm (default: the calibrated one, else 5)")
    watch.add_argument("--out", type=Path, default=None,
                       help="append every scored frame and every alarm to this file as JSON lines")
    watch.add_argument("--alarms", type=Path, default=Path("alarms"),
                       help="folder for one contact sheet PNG per alarm (default alarms)")
    watch.add_argument("--realtime", action="store_true",
                       help="never fall behind the source: clips that arrive while one is scored are dropped "
                            "(and counted)")
    watch.add_argument("--every", type=int, default=1, help="score every N-th clip (default 1: every frame)")
    watch.add_argument("--batch", type=int, default=1,
                       help="score N clips at once: more frames per second on a CPU, each score up to N - 1 "
                            "frames later (default 1)")
    watch.add_argument("--loop", action="store_true", help="play a video file again from the start at its end")
    watch.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    watch.add_argument("--onnx", type=Path, default=None,
                       help="score with this graph of `ipad-detect export` in onnxruntime instead of torch")
    watch.add_argument("--device", choices=("cpu", "cuda"), default=None,
                       help="where to run (default: cuda when available, else cpu)")

    export = verbs.add_parser(
        "export", help="a trained detector as an ONNX graph",
        description="Write the model's scoring path for a batch of clips (encoder, memory, phase head, decoder, the "
                    "normal bank's search) as one ONNX graph, checked against torch in onnxruntime (the largest "
                    "difference is printed); `watch --onnx` runs on it.")
    export.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint folder, or a run folder (its newest epoch)")
    export.add_argument("--format", choices=("onnx",), default="onnx", help="onnx (the only one)")
    export.add_argument("--out", type=Path, default=None,
                        help="the graph's file (default <checkpoint>/model.onnx); its record beside it as .json")

    importer = verbs.add_parser(
        "import", help="video files into the IPAD layout (numbered JPEG frames)",
        description="Decode video files (anything opencv-python's VideoCapture opens) and write each as the "
                    "next video of <data>/<scene>/<split>/frames/<NN>/ (frames 000.jpg, 001.jpg, …), at a "
                    "constant frame rate, cropped and resized. What was done goes to <data>/<scene>/imported.json.")
    importer.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files, in order")
    importer.add_argument("--data", type=Path, default=Path("."), help="dataset root to write into (default .)")
    importer.add_argument("--scene", required=True, help="scene name: one folder under --data, e.g. R05")
    importer.add_argument("--split", required=True, choices=("training", "testing"),
                          help="training (normal footage) or testing")
    importer.add_argument("--fps", type=float, default=None,
                          help="frame rate to resample to by timestamps (default: the file's own; a variable "
                               "frame rate is resampled to its median rate)")
    importer.add_argument("--size", type=int, default=256,
                          help="frames are resized to SIZE x SIZE pixels (default 256, as the IPAD release)")
    importer.add_argument("--crop", default=None, metavar="X,Y,W,H",
                          help="rectangle of the picture to keep, in source pixels, before resizing")
    importer.add_argument("--quiet", action="store_true", help="no progress bars")

    report = verbs.add_parser(
        "report", help="tables (like the paper's 2, 3, 4) and score curves from evaluation JSON",
        description="Turn evaluation JSON files of ipad-detect evaluate/finetune into Markdown and CSV tables "
                    "(models x scenes; adaptation rows with time and trainable parameters; ablation) and one "
                    "score-curve PNG per test video.")
    report.add_argument("json_files", nargs="+", type=Path, metavar="EVAL_JSON", help="evaluation JSON files")
    report.add_argument("--out", required=True, type=Path, help="folder for the tables and curves")
    report.add_argument("--no-curves", action="store_true", help="tables only")


# ----------------------------------------------------------------------------- verbs


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


def _check_phase_weight(weight: float | None) -> None:
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise UsageError(f"--phase-weight {weight} is not allowed; use a value in [0, 1]")


def _run_training(args: argparse.Namespace, several_scenes: bool) -> None:
    from ipad_detect.config import get_config
    from ipad_detect.train import TrainOptions, parse_scenes, train

    scenes = parse_scenes(args.scene)
    if not several_scenes and len(scenes) > 1:
        raise UsageError(f"train takes one scene, got {', '.join(scenes)}; use `ipad-detect pretrain` for several")
    for name, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--stride", args.stride)):
        if value < 1:
            raise UsageError(f"{name} {value} is not allowed; use a positive integer")
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
        if result.epoch_recon:
            print(reconstruction_summary(result.epoch_recon[-1], result.static_frame_mse, result.lit_static_frame_mse))


def _run_evaluate(args: argparse.Namespace) -> None:
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.data import load_scene
    from ipad_detect.scoring import evaluate_checkpoint

    if not (args.data / args.scene / "testing").is_dir():  # a data error first, before loading a model
        load_scene(args.data, args.scene, splits=("testing",))
    _check_phase_weight(args.phase_weight)
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


def _run_score(args: argparse.Namespace) -> None:
    import numpy as np

    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.compiled import compile_for_scoring
    from ipad_detect.data import load_scene, video_from_frame_dir
    from ipad_detect.evaluate import combine_scores, frame_auc, trim_labels
    from ipad_detect.plots import plot_score_curve
    from ipad_detect.scoring import resolve_cycle_length, score_video

    device = _device(args)
    video = video_from_frame_dir(args.video)
    _check_phase_weight(args.phase_weight)
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


def _run_finetune(args: argparse.Namespace) -> None:
    from ipad_detect.finetune import FinetuneOptions, check_real_scene, finetune

    data = args.data or (Path(os.environ["IPAD_ROOT"]) if os.environ.get("IPAD_ROOT") else None)
    if data is None:
        raise UsageError("no data root: pass --data ROOT or set IPAD_ROOT to the dataset root in the IPAD layout")
    for name, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--stride", args.stride),
                        ("--rank", args.rank)):
        if value < 1:
            raise UsageError(f"{name} {value} is not allowed; use a positive integer")
    if not 0 < args.shots <= 1:
        raise UsageError(f"--shots {args.shots} is not allowed; give a fraction of the training videos in (0, 1]")
    videos = tuple(name.strip() for name in args.videos.split(",") if name.strip()) if args.videos else None
    if args.videos is not None and not videos:
        raise UsageError(f"--videos {args.videos!r} names no video; give comma-separated training video names, e.g. 01,03")
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


def _run_estimate_period(args: argparse.Namespace) -> None:
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


def _run_calibrate(args: argparse.Namespace) -> None:
    from ipad_detect.calibrate import Threshold, anomaly_scores, choose_threshold, normal_scores, test_quality
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.data import FrameCache, load_scene, video_from_frame_dir
    from ipad_detect.evaluate import trim_labels

    if not args.false_alarms_per_hour >= 0:
        raise UsageError(f"--false-alarms-per-hour {args.false_alarms_per_hour} is not allowed; give 0 or more")
    if not args.min_duration > 0:
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


def _run_watch(args: argparse.Namespace) -> None:
    from ipad_detect.calibrate import Threshold
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.watch import parse_source, watch

    source = parse_source(args.source)
    for name, value in (("--every", args.every), ("--batch", args.batch), ("--min-frames", args.min_frames),
                        ("--max-frames", args.max_frames)):
        if value is not None and value < 1:
            raise UsageError(f"{name} {value} is not allowed; use a positive integer")
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


def _run_export(args: argparse.Namespace) -> None:
    from ipad_detect.checkpoint import load_checkpoint
    from ipad_detect.export import export_onnx

    checkpoint = load_checkpoint(args.checkpoint)
    out = args.out or checkpoint.path / "model.onnx"
    _check_writable(out, "--out", folder=False)
    print(f"exporting {checkpoint.kind} ({checkpoint.config.name}) from {checkpoint.path} …", flush=True)
    record = export_onnx(checkpoint, out)
    print(f"wrote {out} (outputs {', '.join(record['outputs'])}); onnxruntime against torch on two clips: max abs "
          f"difference {record['max_abs_difference']:.3g}")


def _run_import(args: argparse.Namespace) -> None:
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


def _run_report(args: argparse.Namespace) -> None:
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


RUNNERS = {"evaluate": _run_evaluate, "score": _run_score, "finetune": _run_finetune,
           "estimate-period": _run_estimate_period, "report": _run_report, "import": _run_import,
           "calibrate": _run_calibrate, "watch": _run_watch, "export": _run_export}  # train, pretrain: above


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warning
    from ipad_detect.data import DataError

    try:
        if args.verb in ("train", "pretrain"):
            _run_training(args, several_scenes=args.verb == "pretrain")
        else:
            RUNNERS[args.verb](args)
    except (DataError, UsageError, ValueError, FileNotFoundError) as error:
        message = " ".join(str(error).split())
        print(f"ipad-detect {args.verb}: error: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in OUT_OF_ROOM:
            raise
        print(f"ipad-detect {args.verb}: error: {error.filename or 'an output'} could not be written "
              f"({error.strerror}); make room and rerun (training resumes from its last checkpoint)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
