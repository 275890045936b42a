"""Accuracy benchmark: every detector on a fixed set of generated scenes, under the IPAD protocol.

The benchmark set is `bench/scenes/A01.yaml` … `A06.yaml`: six device families (lifter, conveyor,
cutter, press, gripper, sorter), every anomaly kind of each family in its test videos (so every
category), the normal nuisances on as in IPAD (light intensity and colour drift, flicker, light
direction, camera shake, cycle-time jitter), 3 training and 4 test videos of 3 cycles at 64 px
and 10 fps. `V01` … `V04` are validation scenes of the same kind (another lifter, a rotary
table, a filler, a palletizer): hyper-parameters are chosen on those (`--validation`), never on the
benchmark. The scenes are rendered once with `ipadgen render-set` into `<work>/data` and reused.

Every learned model trains on every scene from scratch with the same budget, `--clips` training
clips (epochs of `--clips / --epochs` clips drawn afresh from all stride-1 clips), once per seed of
`--seeds` (other initial weights, memory, clip draws and order), and each run's wall time is
printed. The non-learned references draw nothing and run once. Rows:

- every `--model` kind: full (the default detector), paper (the paper's model as published:
  reconstruction from the encoder's last stage, the window check), vswin, memae, conae, and the
  non-learned references frame-nn, clip-nn and phase-nn (`ipad_detect.nearest`);
- the paper's table-4 ablation on the default detector: reconstruction only (V-Swin-T), + memory,
  + phase (the phase head boosts the memory read-out, no phase score), + the paper's window
  check, our cycle check in its place; then our normal bank (models/normal_bank.py) compared with
  every normal clip (the default: learned tokens and pixels, each position's least residual to the
  4 nearest clips), by its nearest clip alone, by its tokens alone, by its pixels
  alone (frame-standardised 32 x 32 clips: a non-learned distance), and only with the clips at the
  phase a clip is due at. Rows of one training share it and differ in scoring only.

Printed: the frame AUC (IPAD protocol: clips of 16 at stride 1, centre-frame PSNR, the window's
phase error where a model has one, min-max over each scene's test videos) of each row on each scene
(the mean over the seeds), their mean, its standard deviation over the scenes and, with several
seeds, over the seeds (of each seed's mean over the scenes) and each seed's mean; a per-category
table (each category's anomalous frames against the normal frames of the scenes that have that
category, scene-normalised scores pooled, mean ± sd over the seeds); the last epoch's reconstruction
MSE over that of each scene's mean training frame (below 1: a model has learned more than a still
picture). No test label or test period label is read by any detector; labels are read here, to
score. Results go to `<work>/results.json`, checkpoints to `<work>/runs`, each run's scores on each
scene to `<work>/outcomes`; a rerun reuses finished runs and their scores.

    python bench/accuracy.py                  # 6 scenes, every row: about 1 h 45 min on 2 idle CPU cores
                                              # (2026-12-06, by parts: --core first, then the rest)
    python bench/accuracy.py --quick          # 2 scenes (A01, A02) at 1,200 clips: about 15 min
    python bench/accuracy.py --validation     # the validation scenes V01-V04
    python bench/accuracy.py --core           # the default detector's rows and the references: about 6 min a scene
    python bench/accuracy.py --core --seeds 0,1,2   # the same trained three times: the spread over seeds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.config import get_config
from ipad_detect.data import load_scene
from ipad_detect.evaluate import evaluate_scene, frame_auc
from ipad_detect.registry import get_kind
from ipad_detect.scoring import score_scene
from ipad_detect.train import TrainOptions, train

SCENE_DIR = Path(__file__).resolve().parent / "scenes"
BENCHMARK = ("A01", "A02", "A03", "A04", "A05", "A06")
QUICK = ("A01", "A02")
VALIDATION = ("V01", "V02", "V03", "V04")
CATEGORIES = ("appearance", "position", "motion", "logic")


@dataclass(frozen=True)
class Run:
    """One training: a model kind with config overrides (rows can share a run and score it differently)."""

    kind: str
    overrides: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        return "-".join([self.kind] + [f"{k}={v}" for k, v in self.overrides])


@dataclass(frozen=True)
class Row:
    label: str
    run: Run
    phase_weight: float | None = None  # weight of the phase error in the score; None = the config's
    scoring: tuple[tuple[str, object], ...] = ()  # config fields changed for scoring only


DEFAULT = Run("full")
NO_BANK = (("bank_weight", 0.0),)
ROWS = (
    Row("full (default)", DEFAULT),
    Row("paper", Run("paper"), phase_weight=0.5),  # the paper's weight; tiny's own is 0
    Row("vswin", Run("vswin")),
    Row("memae", Run("memae")),
    Row("conae", Run("conae")),
    Row("frame-nn (no learning)", Run("frame-nn")),
    Row("clip-nn (no learning)", Run("clip-nn")),
    Row("phase-nn (no learning)", Run("phase-nn")),
    # Table 4 of the paper, part by part, on the default detector's training (rows of one training
    # share it); then our parts: the normal bank over all normal clips (the default: learned tokens
    # and pixels), its tokens alone, its pixels alone (no learning in that distance), and at the
    # due phase only.
    Row("ablation: reconstruction only", Run("vswin")),
    Row("ablation: + memory", Run("full", (("use_phase", False),)), scoring=NO_BANK),
    Row("ablation: + phase (boosts the memory)", DEFAULT, phase_weight=0.0, scoring=NO_BANK),
    Row("ablation: + window check (paper), weight 0.5", DEFAULT, phase_weight=0.5,
        scoring=NO_BANK + (("phase_check", "window"),)),
    Row("ablation: + cycle check (ours), weight 0.5", DEFAULT, phase_weight=0.5, scoring=NO_BANK),
    Row("ablation: + normal bank, every phase (ours, default)", DEFAULT),
    Row("ablation: normal bank, the nearest clip alone", DEFAULT, scoring=(("bank_neighbours", 1),)),
    Row("ablation: normal bank, tokens alone", DEFAULT, scoring=(("pixel_weight", 0.0),)),
    Row("ablation: normal bank, pixels alone (no learning)", DEFAULT, scoring=(("pixel_weight", 1.0),)),
    Row("ablation: + normal bank at the due phase (ours)", DEFAULT, scoring=(("bank_at_phase", True),)),
)


@dataclass
class Outcome:
    """What one run gave on one scene."""

    auc: dict[str, float | None] = field(default_factory=dict)  # row label -> scene AUC
    fit: float | None = None  # last epoch's recon MSE / mean frame's
    lit_fit: float | None = None  # ... / that of the mean frame in each frame's light
    seconds: float = 0.0  # training wall time
    normality: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # row -> video -> scores


def render(work: Path, scenes: tuple[str, ...], workers: int) -> Path:
    """Render the scenes that are not there yet (render-set resumes an interrupted render)."""
    root = work / "data"
    missing = [s for s in scenes if not (root / s / "scene.json").is_file()]
    if missing:
        command = [str(Path(sys.executable).with_name("ipadgen")), "render-set",
                   *[str(SCENE_DIR / f"{s}.yaml") for s in missing], "--out", str(root), "--workers", str(workers)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        print(f"rendered {', '.join(missing)} in {time.perf_counter() - start:.0f} s")
    return root


def frame_categories(root: Path, scene: str, clip_len: int) -> dict[str, dict[str, np.ndarray]]:
    """video -> category -> bool mask over the scored frames (trimmed like the labels): anomalous
    frames inside an anomaly of that category (from the test videos' meta files)."""
    head, tail = clip_len // 2, clip_len - 1 - clip_len // 2
    result = {}
    for video in load_scene(root, scene, splits=("testing",)).testing:
        masks = {c: np.zeros(video.num_frames, bool) for c in CATEGORIES}
        for anomaly in (video.meta or {}).get("anomalies", []):
            span = slice(anomaly["first_frame"], anomaly["last_frame"] + 1)
            masks[anomaly["category"]][span] = True
        result[video.name] = {c: (m & (video.labels == 1))[head:video.num_frames - tail] for c, m in masks.items()}
    return result


def run_scene(root: Path, scene: str, run: Run, rows: list[Row], args: argparse.Namespace, seed: int) -> Outcome:
    """Train (or resume) one run on one scene and score its rows; the outcome is kept in
    `<work>/outcomes/` so a rerun, or a table over other scenes or seeds, reuses it instead of scoring again."""
    kept = args.work / "outcomes" / f"{run_name(scene, run, seed)}-clips{args.clips}-epochs{args.epochs}.json"
    if kept.is_file():
        outcome = Outcome(**json.loads(kept.read_text()))
        if all(row.label in outcome.auc for row in rows):
            return outcome
    outcome = score_run(root, scene, run, rows, args, seed)
    kept.parent.mkdir(parents=True, exist_ok=True)
    temporary = kept.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(outcome)))
    temporary.replace(kept)
    return outcome


def run_name(scene: str, run: Run, seed: int) -> str:
    """<scene>-<run>-seed<S>-<config hash>: a changed config (a new default) is a new run, never a
    stale checkpoint or outcome reused."""
    config = get_config("tiny", **dict(run.overrides)).model_dump(mode="json")
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    return f"{scene}-{run.name}-seed{seed}-{digest}"


def run_seed(run: Run, seed: int) -> int:
    """The seed a run trains with: a non-learned reference draws nothing, so every seed shares its seed-0 run."""
    return seed if get_kind(run.kind).learned else 0


def score_run(root: Path, scene: str, run: Run, rows: list[Row], args: argparse.Namespace, seed: int) -> Outcome:
    config = get_config("tiny", **dict(run.overrides))
    epochs = args.epochs
    options = TrainOptions(kind=run.kind, epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                           max_clips=max(1, args.clips // epochs), progress=False)
    result = train(root, [scene], config, args.work / "runs" / run_name(scene, run, seed), options)
    checkpoint = load_checkpoint(result.checkpoint)
    trained_config = checkpoint.config
    scores = {}
    for scoring in {row.scoring for row in rows}:
        checkpoint.config = trained_config.model_copy(update=dict(scoring))
        scores[scoring] = score_scene(checkpoint, root, scene, progress=False)[0]
    outcome = Outcome(seconds=result.seconds)  # the whole training, a resumed run's earlier sessions included
    if result.last_recon and result.static_frame_mse:
        outcome.fit = result.last_recon / result.static_frame_mse
    if result.last_recon and result.lit_static_frame_mse:
        outcome.lit_fit = result.last_recon / result.lit_static_frame_mse
    for row in rows:
        weight = config.phase_score_weight if row.phase_weight is None else row.phase_weight
        evaluation = evaluate_scene(scores[row.scoring], phase_weight=weight, clip_len=config.clip_len)
        outcome.auc[row.label] = evaluation.auc
        outcome.normality[row.label] = {name: values.tolist() for name, values in evaluation.normality.items()}
    return outcome


def category_auc(label: str, scenes: list[str], outcomes: dict, masks: dict) -> dict[str, float | None]:
    """Per category: AUC of its anomalous frames against the normal frames of the scenes that have it."""
    table = {}
    for category in CATEGORIES:
        labels, scores = [], []
        for scene in scenes:
            normality = outcomes[scene][label]
            if not any(m[category].any() for m in masks[scene].values()):
                continue
            for video, values in normality.items():
                values = np.asarray(values)
                anomalous = masks[scene][video][category]
                normal = ~np.any([masks[scene][video][c] for c in CATEGORIES], axis=0)
                normal &= ~anomalous
                labels += [1] * int(anomalous.sum()) + [0] * int(normal.sum())
                scores += values[anomalous].tolist() + values[normal].tolist()
        table[category] = frame_auc(np.asarray(labels), np.asarray(scores)) if labels else None
    return table


def worst_of(fits: list[float | None]) -> float | None:
    """The largest recon / mean frame figure of the runs that have one (a run resumed with no
    epoch left has none)."""
    present = [f for f in fits if f is not None]
    return max(present) if present else None


def worst(fits: list[float | None]) -> str:
    largest = worst_of(fits)
    return "–" if largest is None else f"{largest:.2f}"


def mean_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def sd_of(values: list[float | None]) -> float | None:
    """Standard deviation (population, as numpy's) of the values there are; none for fewer than two."""
    present = [v for v in values if v is not None]
    return float(np.std(present)) if len(present) > 1 else None


def spread(values: list[float | None]) -> str:
    """Mean ± standard deviation in percent (the mean alone for one value)."""
    deviation = sd_of(values)
    return percent(mean_of(values)) + ("" if deviation is None else f" ± {100 * deviation:.1f}")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def markdown(header: list[str], lines: list[list[str]]) -> str:
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench_out/accuracy"),
                        help="folder for the renders, runs and results (default bench_out/accuracy)")
    parser.add_argument("--quick", action="store_true", help="2 scenes (A01, A02) and half the training budget")
    parser.add_argument("--validation", action="store_true", help="the validation scenes V01-V04 instead")
    parser.add_argument("--scenes", default=None, help="comma list of scene names from bench/scenes (overrides)")
    parser.add_argument("--clips", type=int, default=None,
                        help="training clips per learned model and scene (default 2400; --quick 1200)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs the clips are spread over (default 4)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every learned model (1e-3)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seeds", default="0",
                        help="comma list of training seeds; each learned model trains once per seed (default 0)")
    parser.add_argument("--kinds", default=None, help="only the rows of these model kinds, comma list (all)")
    parser.add_argument("--core", action="store_true",
                        help="only the default detector's rows (one training per scene) and the non-learned references")
    parser.add_argument("--workers", type=int, default=2, help="render-set workers (default 2)")
    args = parser.parse_args()
    scenes = (tuple(args.scenes.split(",")) if args.scenes else VALIDATION if args.validation
              else QUICK if args.quick else BENCHMARK)
    unknown = [s for s in scenes if not (SCENE_DIR / f"{s}.yaml").is_file()]
    if unknown:
        raise SystemExit(f"unknown scene(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(p.stem for p in SCENE_DIR.glob('*.yaml')))}")
    try:
        seeds = sorted({int(seed) for seed in args.seeds.split(",")})
    except ValueError:
        raise SystemExit(f"--seeds {args.seeds!r}: give whole numbers separated by commas, e.g. 0,1,2") from None
    if args.clips is None:
        args.clips = 1200 if args.quick else 2400
    rows = [r for r in ROWS if args.kinds is None or r.run.kind in args.kinds.split(",")]
    if args.core:
        rows = [r for r in rows if r.run == DEFAULT or not get_kind(r.run.kind).learned]
    args.work.mkdir(parents=True, exist_ok=True)
    root = render(args.work, scenes, args.workers)

    runs: dict[Run, list[Row]] = {}
    for row in rows:
        runs.setdefault(row.run, []).append(row)
    masks = {scene: frame_categories(root, scene, get_config("tiny").clip_len) for scene in scenes}
    # seed -> scene -> row -> AUC, and -> video -> normality (for the categories)
    scene_aucs: dict[int, dict[str, dict[str, float | None]]] = {seed: {s: {} for s in scenes} for seed in seeds}
    outcomes: dict[int, dict[str, dict[str, dict]]] = {seed: {s: {} for s in scenes} for seed in seeds}
    fits: dict[str, list[float | None]] = {}
    lit_fits: dict[str, list[float | None]] = {}
    times: dict[str, list[float]] = {}
    for seed in seeds:
        for scene in scenes:
            for run, run_rows in runs.items():
                outcome = run_scene(root, scene, run, run_rows, args, run_seed(run, seed))
                for row in run_rows:
                    outcomes[seed][scene][row.label] = outcome.normality[row.label]
                    scene_aucs[seed][scene][row.label] = outcome.auc[row.label]
                    fits.setdefault(row.label, []).append(outcome.fit)
                    lit_fits.setdefault(row.label, []).append(outcome.lit_fit)
                    times.setdefault(row.label, []).append(outcome.seconds)
                    print(f"{scene} seed {seed} {row.label}: AUC {percent(outcome.auc[row.label])}, "
                          f"training {outcome.seconds:.0f} s"
                          + (f", recon / mean frame {outcome.fit:.2f}" if outcome.fit is not None else "")
                          + (f" (/ lit mean frame {outcome.lit_fit:.2f})" if outcome.lit_fit is not None else ""),
                          flush=True)

    print(f"\nFrame AUC (%), IPAD protocol, tiny config, {args.clips} training clips per learned model, "
          f"seeds {', '.join(map(str, seeds))} (a scene's figure is the mean over them), lr {args.lr}")
    lines, results = [], {}
    for row in rows:
        per_seed = {seed: [scene_aucs[seed][s][row.label] for s in scenes] for seed in seeds}
        aucs = [mean_of([per_seed[seed][i] for seed in seeds]) for i in range(len(scenes))]
        seed_means = [mean_of(per_seed[seed]) for seed in seeds]
        mean = mean_of(aucs)
        categories = {seed: category_auc(row.label, list(scenes), outcomes[seed], masks) for seed in seeds}
        results[row.label] = {
            "kind": row.run.kind, "overrides": dict(row.run.overrides), "phase_weight": row.phase_weight,
            "auc": dict(zip(scenes, aucs)), "mean": mean, "sd_over_scenes": sd_of(aucs),
            "mean_per_seed": dict(zip(map(str, seeds), seed_means)), "sd_over_seeds": sd_of(seed_means),
            "auc_per_seed": {str(seed): dict(zip(scenes, per_seed[seed])) for seed in seeds},
            "categories": {c: mean_of([categories[seed][c] for seed in seeds]) for c in CATEGORIES},
            "categories_per_seed": {str(seed): categories[seed] for seed in seeds},
            "recon_over_mean_frame": worst_of(fits[row.label]),
            "recon_over_lit_mean_frame": worst_of(lit_fits[row.label]),
            "train_seconds": float(np.mean(times[row.label]))}
        lines.append([row.label, *map(percent, aucs), percent(mean), percent(sd_of(aucs)),
                      percent(sd_of(seed_means)), " / ".join(map(percent, seed_means)),
                      f"{np.mean(times[row.label]):.0f}", worst(fits[row.label]), worst(lit_fits[row.label])])
    print(markdown(["detector", *scenes, "mean", "sd scenes", "sd seeds", "mean per seed", "train s",
                    "max recon / mean frame", "max recon / lit mean frame"], lines))
    print("\nPer category: frame AUC (%) of the category's anomalous frames against the normal frames"
          + (" (mean over the seeds ± their standard deviation)" if len(seeds) > 1 else ""))
    print(markdown(["detector", *CATEGORIES], [
        [row.label, *(spread([results[row.label]["categories_per_seed"][str(seed)][c] for seed in seeds])
                      for c in CATEGORIES)] for row in rows]))
    (args.work / "results.json").write_text(json.dumps(
        {"scenes": list(scenes), "clips": args.clips, "epochs": args.epochs, "lr": args.lr, "seeds": seeds,
         "rows": results}, indent=1))
    print(f"\nwrote {args.work / 'results.json'}")


if __name__ == "__main__":
    main()
