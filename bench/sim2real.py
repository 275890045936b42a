"""The paper's table 3 on generated data: pretrain on synthetic-style renders, adapt to real-style ones.

One device is rendered twice with the same seed (same parts, parameters and camera): in the
synthetic style (Workbench, the IPAD synthetic look) for pretraining, and with `--style real`
(Cycles, worn colours, sensor noise, motion blur, lens distortion, JPEG) as the "real" scene. The
real scene's period files are moved aside before anything trains, as real footage has none: every
run on it uses estimated phase targets (period_estimation), and the estimate is checked against
the moved-aside truth. Both scenes are rendered without the normal light drift, flicker and camera
shake unless `--nuisance` is given: the tiny model's frame PSNR at 64 px is swamped by them (on the
same lifter scene, in-domain frame AUC 48.8% with them, 69.0% without), and a comparison of
adaptation methods needs a detector that sees the anomalies at all. The two scenes still differ
in their whole look (renderer, materials, noise, blur, distortion, compression).

Rows (frame AUC on the real scene's test videos, fine-tuning wall time, trainable parameters):
real only (trained from scratch, as many epochs as a fine-tune), synthetic only (pretrained, no
adaptation), pretrain + full fine-tune, pretrain + few-shot full fine-tune, pretrain + few-shot
LoRA, and the non-learned reference clip-nn on the real scene's training videos: on all of them (the
data of real only and the full fine-tune) and on each few-shot choice alone (the data of the few-shot
rows, whose normal bank holds only the clips of the video they adapted on). Real only and the
full fine-tune run `--repeats` times with other seeds (other clip subsets and orders). The few-shot
rows run once per few-shot choice: the training videos in name order cut into groups of `--shots` ·
n videos (0.2 of 5: each video alone, seed = run number), so every video is used once and no run
repeats another's draw (random draws gave two of three runs the same video). Every run on the real
scene trains on as many clips as the full fine-tune (`--few-shot-budget clips`): a few-shot run on
one video of 99 clips takes 52 epochs where the full fine-tune takes 20 of 256 clips drawn from 495,
so the rows differ in the data they see, not in how long they train. Each method fine-tunes at its
own default learning rate (`--finetune-lr` sets one for all). The paper's protocol, the same epochs
on a fifth of the data and so a fifth of the training, is `--few-shot-budget epochs`; at that budget
none of the few-shot models reconstructed its clips clearly better than a still picture (measured on
2026-11-30).
Each row shows the mean AUC ± the standard deviation over its runs, the mean wall time of a run, and
the last epoch's reconstruction MSE over that of the videos' mean training frame: at or above 1 a
model has learned no more than a still picture of the scene. Then whether few-shot
LoRA reaches >= 97% of the full fine-tune's mean AUC with <= 30% of its trainable parameters, a
bootstrap interval of that ratio over the runs, whether the difference is larger than the spread,
and the same parameter share for the paper config. Figures are printed, never asserted. Training
on the real scene uses every clip at stride 1 (at most `--max-clips` per epoch), so a few-shot run
gets all the clips its one video has; pretraining takes every second clip (why: at the pretraining
call).

    python bench/sim2real.py --repeats 1           # tiny config, ~78 min on 2 CPU cores, renders included
    python bench/sim2real.py --work /tmp/s2r --epochs 4 --finetune-epochs 3 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.config import get_config
from ipad_detect.data import clip_starts, cycle_length_from_labels, load_scene, read_period
from ipad_detect.finetune import FinetuneOptions, FinetuneResult, add_lora, count_trainable, finetune
from ipad_detect.models import build_model, count_parameters
from ipad_detect.report import make_report
from ipad_detect.scoring import evaluate_checkpoint
from ipad_detect.train import TrainOptions, TrainResult, train

SYNTHETIC, REAL = "synthetic", "real"


def render(args: argparse.Namespace, root: Path, style: str) -> None:
    """Render the scene named after `style` with `ipadgen render` (kept when it is already there)."""
    if (root / style / "scene.json").is_file():
        print(f"  {style}: already rendered in {root / style}")
        return
    command = [str(Path(sys.executable).with_name("ipadgen")), "render", "--device", args.device,
               "--anomalies", args.anomalies, "--out", str(root), "--scene-name", style, "--seed", str(args.seed),
               "--train-videos", str(args.train_videos), "--test-videos", str(args.test_videos),
               "--cycles", str(args.cycles), "--fps", str(args.fps), "--resolution", str(args.resolution),
               "--quiet"]
    if style == REAL:
        command += ["--style", "real", "--samples", str(args.samples)]
    if not args.nuisance:
        command += ["--no-nuisance"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ipadgen render failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    print(f"  {style}: {style} style, rendered in {time.perf_counter() - start:.0f} s")


def hide_period_labels(root: Path, truth: Path) -> None:
    """Move the real scene's period files aside (real footage has none); keep them for checking."""
    for split in ("training", "testing"):
        source = root / REAL / split / "period"
        if source.is_dir():
            target = truth / REAL / split / "period"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(str(source), str(target))


def write_row(path: Path, result, row: str, wall_time: float, trainable: int, total: int,
              pretrain_scenes: list[str], shots: float | None) -> Path:
    """An evaluation JSON with a "finetune" block (method "none": no adaptation; shots None: no real
    training data), so `ipad-detect report` puts the run in table 3."""
    data = result.to_json()
    data["finetune"] = {"row": row, "method": "none", "shots": shots,
                        "wall_time_s": wall_time, "trainable_parameters": trainable, "total_parameters": total,
                        "trainable_share": trainable / total, "pretrain_scenes": pretrain_scenes}
    path.write_text(json.dumps(data))
    return path


@dataclass
class Row:
    """One row of the table and its runs."""
    label: str
    trainable: int
    total: int
    aucs: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    fits: list[float | None] = field(default_factory=list)  # reconstruction MSE / the mean frame's (None: no training)
    files: list[Path] = field(default_factory=list)

    def add(self, auc: float, seconds: float, fit: float | None, file: Path) -> None:
        self.aucs.append(auc)
        self.seconds.append(seconds)
        self.fits.append(fit)
        self.files.append(file)

    def fit_text(self, run: int | None = None) -> str:
        """The recon / mean frame figure of one run, or the mean over the row's runs ("-": not trained)."""
        fits = [f for f in (self.fits if run is None else [self.fits[run]]) if f is not None]
        if not fits:
            return "-"
        figure = f"{statistics.mean(fits):.2f}"
        return figure if run is None else f"recon / mean frame {figure}"


def reconstruction_fit(result: TrainResult | FinetuneResult) -> float | None:
    """The last epoch's reconstruction MSE over that of the videos' mean training frame (None when no
    epoch ran in this call, as in a resumed, finished pretraining)."""
    if not result.epoch_recon or not result.static_frame_mse:
        return None
    return result.epoch_recon[-1] / result.static_frame_mse


def labelled_cycle_length(root: Path, truth: Path) -> float | None:
    """The real scene's cycle length from its moved-aside period labels."""
    videos = load_scene(root, REAL, splits=("training",)).training
    for video in videos:
        period_file = truth / REAL / "training" / "period" / f"{video.name}.npy"
        if not period_file.is_file():
            return None
        video.cycle, video.phase = read_period(period_file, video.num_frames)
    return cycle_length_from_labels(videos)


def few_shot_groups(names: list[str], fraction: float) -> list[tuple[str, ...]]:
    """The training videos in name order cut into consecutive groups of round(fraction · n), at least
    one video each (a remainder too small for a group is left out): one few-shot run per group."""
    names = sorted(names)
    size = max(1, int(round(fraction * len(names))))
    return [tuple(names[i:i + size]) for i in range(0, len(names) - size + 1, size)]


def spread_of(aucs: list[float]) -> float:
    """Population standard deviation of a row's AUCs over its runs (0 for one run)."""
    return statistics.pstdev(aucs) if len(aucs) > 1 else 0.0


def auc_text(aucs: list[float]) -> str:
    """Mean AUC in percent, with ± the spread when the row ran more than once."""
    mean = 100 * statistics.mean(aucs)
    return f"{mean:.1f} ± {100 * spread_of(aucs):.1f}" if len(aucs) > 1 else f"{mean:.1f}"


def ratio_interval(full: list[float], few_shot: list[float], draws: int = 10000,
                   seed: int = 0) -> tuple[float, float]:
    """5th and 95th percentile of mean(few_shot) / mean(full) when both rows' runs are resampled with
    replacement: how far the ratio the target is judged on could move with other runs."""
    rng = np.random.default_rng(seed)
    full_means = rng.choice(full, size=(draws, len(full))).mean(axis=1)
    few_shot_means = rng.choice(few_shot, size=(draws, len(few_shot))).mean(axis=1)
    low, high = np.percentile(few_shot_means / full_means, [5, 95])
    return float(low), float(high)


def paper_lora_share(rank: int) -> float:
    """Trainable share of the paper config under our LoRA selection (shapes only, no memory)."""
    with torch.device("meta"):
        model = add_lora(build_model("full", get_config("paper")), rank)
    trainable, total = count_trainable(model)
    return trainable / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("sim2real_out"), help="data, runs and report (reused)")
    parser.add_argument("--device", default="lifter", help="device family to render (default lifter)")
    parser.add_argument("--anomalies", default="appearance,position",
                        help="anomalies of the test videos (default appearance,position: what reconstruction can see)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-videos", type=int, default=5, help="per scene (default 5: few-shot 1/5 = 1 video)")
    parser.add_argument("--test-videos", type=int, default=6)
    parser.add_argument("--cycles", type=int, default=3, help="work cycles per video (default 3)")
    parser.add_argument("--fps", type=float, default=4.0, help="frames per second (default 4: short cycles)")
    parser.add_argument("--resolution", type=int, default=64, help="frame size (default 64, the tiny config's)")
    parser.add_argument("--samples", type=int, default=4, help="Cycles samples of the real style (default 4)")
    parser.add_argument("--nuisance", action="store_true",
                        help="render with the normal light drift, flicker and camera shake (default off: see above)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of pretraining (default 6)")
    parser.add_argument("--finetune-epochs", type=int, default=20,
                        help="epochs of the full fine-tune and of real-only training, and the training budget of "
                             "the few-shot runs (--few-shot-budget; default 20: after 6 the losses still fell fast)")
    parser.add_argument("--few-shot-budget", choices=("clips", "epochs"), default="clips",
                        help="training of a few-shot run: clips (default): as many training clips as the full "
                             "fine-tune, so the rows differ in data and not in training; epochs: as many epochs as "
                             "the full fine-tune, the paper's protocol, which on a fifth of the data is a fifth of "
                             "the training")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of real only and of the full fine-tune, seeds 0.. (default 3; few-shot rows run "
                             "once per few-shot choice)")
    parser.add_argument("--max-clips", type=int, default=256,
                        help="at most this many clips per epoch, drawn afresh each epoch (default 256)")
    parser.add_argument("--stride", type=int, default=1,
                        help="clip stride of every training run on the real scene (default 1: every clip, so a "
                             "few-shot run gets all the clips of its video)")
    parser.add_argument("--shots", type=float, default=0.2, help="few-shot fraction (default 0.2, the paper's)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    parser.add_argument("--finetune-lr", type=float, default=None,
                        help="learning rate of every fine-tune (default: each method's own, as `ipad-detect finetune` "
                             "uses it: 1e-4 for full, the paper's, and 1e-3 for LoRA; pretraining and real only "
                             "train from scratch at 1e-3)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} is not allowed; give at least 1 run per row")
    if args.stride < 1:
        parser.error(f"--stride {args.stride} is not allowed; give a positive clip stride")
    if args.finetune_lr is not None and args.finetune_lr <= 0:
        parser.error(f"--finetune-lr {args.finetune_lr} is not allowed; give a positive learning rate")
    if not 0 < args.shots < 1:
        parser.error(f"--shots {args.shots} is not allowed; "
                     f"give the few-shot fraction of the training videos in (0, 1)")
    torch.set_num_threads(args.threads)
    config = get_config("tiny")
    root, runs = args.work / "data", args.work / "runs"
    began = time.perf_counter()

    print(f"== rendering {args.device} twice, seed {args.seed}, {args.train_videos}+{args.test_videos} videos of "
          f"{args.cycles} cycles at {args.fps:g} fps, {args.resolution} px, "
          f"nuisance {'on' if args.nuisance else 'off'}")
    render(args, root, SYNTHETIC)
    render(args, root, REAL)
    hide_period_labels(root, args.work / "truth")

    train_options = dict(batch_size=8, lr=1e-3, max_clips=args.max_clips, stride=args.stride, progress=False)
    rows: list[Row] = []

    print("== pretraining on the synthetic scene")
    start = time.perf_counter()
    # Pretraining takes every second clip (250, all of them every epoch). Its loss sits first on a plateau
    # near 0.075, the phase term at chance (0.02 · ln 50 bins; reconstruction is near 0.002), until the
    # phase head learns; at stride 1, with one fixed subset of 256 of the 500 clips (before --max-clips drew
    # afresh each epoch), it stayed there for 20 epochs.
    pretrained = train(root, [SYNTHETIC], config, runs / "pretrain",
                       TrainOptions(epochs=args.epochs, **{**train_options, "stride": 2}))
    pretrain_time = time.perf_counter() - start
    fit = reconstruction_fit(pretrained)
    print(f"  {pretrain_time:.0f} s, losses {', '.join(f'{v:.4f}' for v in pretrained.epoch_losses)}"
          + (f", recon / mean frame {fit:.2f}" if fit is not None else " (resumed: no epoch left)"))
    total = count_parameters(pretrained.model)

    real_videos = load_scene(root, REAL, splits=("training",)).training
    training_videos = [video.name for video in real_videos]
    clips_of = {video.name: len(clip_starts(video.num_frames, config.clip_len, args.stride)) for video in real_videos}

    def epochs_for(videos: tuple[str, ...]) -> int:
        """Epochs of a run on these videos: the full fine-tune's, or (budget "clips") as many as it takes
        to train on as many clips as the full fine-tune does."""
        if args.few_shot_budget == "epochs":
            return args.finetune_epochs
        per_epoch = min(args.max_clips, sum(clips_of[name] for name in videos))
        budget = args.finetune_epochs * min(args.max_clips, sum(clips_of.values()))
        return max(1, round(budget / per_epoch))

    print(f"== real only: trained from scratch on the real scene for as many epochs as the fine-tunes "
          f"(estimated phase targets), {args.repeats} run(s)")
    real_only_row = Row("real only", total, total)
    for seed in range(args.repeats):
        out = runs / "real-only" / f"seed-{seed}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        real_only = train(root, [REAL], config, out,
                          TrainOptions(epochs=args.finetune_epochs, seed=seed, **train_options))
        seconds = time.perf_counter() - start
        evaluation = evaluate_checkpoint(load_checkpoint(real_only.checkpoint), root, REAL, progress=False)
        real_only_row.add(evaluation.auc, seconds, reconstruction_fit(real_only),
                          write_row(out / "evaluation.json", evaluation, "1 real only", seconds, total, total, [], 1.0))
        print(f"  seed {seed}: AUC {100 * evaluation.auc:.1f}, {seconds:.0f} s, {args.finetune_epochs} epochs, "
              f"{real_only_row.fit_text(-1)}")
    rows.append(real_only_row)
    estimated = real_only.cycle_lengths[REAL]

    print("== synthetic only: the pretrained model on the real scene, no adaptation")
    evaluation = evaluate_checkpoint(load_checkpoint(pretrained.checkpoint), root, REAL, progress=False)
    synthetic_only_row = Row("synthetic only", total, total)
    synthetic_only_row.add(evaluation.auc, pretrain_time, None,
                           write_row(runs / "synthetic-only.json", evaluation, "2 synthetic only", pretrain_time,
                                     total, total, [SYNTHETIC], None))
    rows.append(synthetic_only_row)

    groups = few_shot_groups(training_videos, args.shots)
    for label, method, choices in (
            ("pretrain + full finetune", "full", [tuple(training_videos)] * args.repeats),
            ("pretrain + few-shot full", "full", groups),
            ("pretrain + few-shot LoRA", "lora", groups)):
        print(f"== {label}, {len(choices)} run(s)")
        row_name = f"{len(rows) + 1} {label}"
        row = None
        for seed, videos in enumerate(choices):
            out = runs / label.replace(" + ", "-").replace(" ", "-") / f"run-{seed}"
            shutil.rmtree(out, ignore_errors=True)  # a fresh run each time, so the wall time is the whole fine-tune
            epochs = epochs_for(videos)
            result = finetune(root, REAL, pretrained.checkpoint, out,
                              FinetuneOptions(method=method, videos=videos, rank=args.rank, epochs=epochs,
                                              lr=args.finetune_lr, batch_size=8, max_clips=args.max_clips,
                                              stride=args.stride, seed=seed, progress=False))
            data = json.loads(result.json_path.read_text())
            data["finetune"]["row"] = row_name
            result.json_path.write_text(json.dumps(data))
            row = row or Row(label, result.trainable_parameters, result.total_parameters)
            row.add(result.evaluation.auc, result.wall_time_s, reconstruction_fit(result),
                    result.json_path)
            print(f"  seed {seed}: AUC {100 * result.evaluation.auc:.1f}, videos {', '.join(result.videos)}, "
                  f"{result.wall_time_s:.0f} s, {epochs} epochs, {row.fit_text(-1)}")
        rows.append(row)

    # The non-learned reference on the same data as the rows above: every real training video (as real
    # only and the full fine-tune), and each few-shot choice alone (as the few-shot rows, whose normal bank
    # holds the clips of their one video).
    references: list[Row] = []
    for label, folder, data, choices in (
            ("clip-nn (no learning)", "clip-nn", "the real training videos", [None]),
            ("clip-nn, few-shot (no learning)", "clip-nn-few-shot", "each few-shot choice", groups)):
        print(f"== {label}: each frame's 9-frame clip against every clip of {data}, {len(choices)} run(s)")
        row_name = f"{len(rows) + 1} {label}"
        reference_row = Row(label, 0, total)
        for seed, videos in enumerate(choices):
            out = runs / folder / f"run-{seed}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            reference = train(root, [REAL], config, out,
                              TrainOptions(kind="clip-nn", epochs=1, videos=videos, **train_options))
            seconds = time.perf_counter() - start
            evaluation = evaluate_checkpoint(load_checkpoint(reference.checkpoint), root, REAL, progress=False)
            reference_row.add(evaluation.auc, seconds, None,
                              write_row(out / "evaluation.json", evaluation, row_name, seconds, 0, total, [],
                                        1.0 if videos is None else len(videos) / len(training_videos)))
            print(f"  run {seed}: AUC {100 * evaluation.auc:.1f}"
                  + (f", videos {', '.join(videos)}" if videos else "") + f", {seconds:.0f} s to fill its bank")
        rows.append(reference_row)
        references.append(reference_row)

    print()
    print(f"== table 3 analogue: {args.device} ({args.anomalies}), tiny config, "
          f"{args.test_videos} test videos")
    print(f"{'':<34}{'AUC (%)':>14}{'finetune time':>15}{'trainable params':>26}{'recon / mean frame':>20}")
    for row in rows:
        print(f"{row.label:<34}{auc_text(row.aucs):>14}{statistics.mean(row.seconds):>13.0f} s"
              f"{row.trainable:>14,} ({100 * row.trainable / row.total:.0f}%){row.fit_text():>20}")
    print("recon / mean frame: the last epoch's reconstruction MSE over that of the videos' mean training frame, "
          "mean over runs; at or above 1 a model has learned no more than a still picture")
    full, lora = rows[2], rows[4]
    full_auc, lora_auc = statistics.mean(full.aucs), statistics.mean(lora.aucs)
    auc_ratio, param_ratio = lora_auc / full_auc, lora.trainable / full.trainable
    reached = auc_ratio >= 0.97 and param_ratio <= 0.30
    print(f"few-shot LoRA vs full fine-tune: {100 * auc_ratio:.1f}% of its mean AUC (target >= 97%) with "
          f"{100 * param_ratio:.1f}% of its trainable parameters (target <= 30%): "
          f"{'target reached' if reached else 'target NOT reached'}")
    if full_auc < 0.6:
        print(f"NOTE: the full fine-tune's AUC ({100 * full_auc:.1f}%) is close to chance; a ratio of two such AUCs "
              f"says little about LoRA")
    if len(full.aucs) > 1 and len(lora.aucs) > 1:
        low, high = ratio_interval(full.aucs, lora.aucs)
        print(f"90% bootstrap interval of that AUC ratio over the runs: {100 * low:.1f}% to {100 * high:.1f}%")
    spread = max(spread_of(full.aucs), spread_of(lora.aucs))
    if len(full.aucs) > 1:
        verdict = "within" if abs(full_auc - lora_auc) <= spread else "larger than"
        print(f"the AUC difference ({100 * (lora_auc - full_auc):+.1f} points) is {verdict} the spread over runs "
              f"(largest standard deviation {100 * spread:.1f} points)")
    for reference in references:
        verdict = "beats" if lora_auc > statistics.mean(reference.aucs) else "does NOT beat"
        print(f"few-shot LoRA ({100 * lora_auc:.1f}) {verdict} {reference.label} "
              f"({100 * statistics.mean(reference.aucs):.1f})")
    print(f"the same LoRA selection in the paper config trains {100 * paper_lora_share(args.rank):.1f}% of the "
          f"parameters (paper: 10.3M of 35.9M = 28.7%)")
    true_length = labelled_cycle_length(root, args.work / "truth")
    if true_length is not None:
        print(f"cycle length of the real scene: estimated {estimated:.2f} frames, labelled {true_length:.2f} "
              f"({100 * abs(estimated - true_length) / true_length:.1f}% error)")
    written = make_report([path for row in rows for path in row.files], args.work / "report", curves=False)
    print(f"report: {written['report']}; total bench time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
