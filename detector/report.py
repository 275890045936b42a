"""Tables like the IPAD paper's, from evaluation JSON files (`ipad-detect evaluate` / `finetune`).

- Table 2: models x scenes, frame AUC (%), and the mean of the scene AUCs.
- Table 3: adaptation to real scenes, one row per (pretraining data, fine-tuning data, method):
  AUC per scene and mean, fine-tuning wall time, trainable parameters (runs of one row on one
  scene with other seeds: their mean ± standard deviation). Rows come from the
  "finetune" block that `ipad-detect finetune` writes; runs without adaptation (trained on the
  real scene only, or pretrained only) carry a block with method "none" (bench/sim2real.py).
- Table 4: ablation of the period information (reconstruction / period score, window / memory).

Each table is written as Markdown and CSV; every test video's anomaly score curve as a PNG.
A JSON may name its own rows: "label" (table 2), "ablation" (table 4), "finetune"."row" (table 3).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ipad_detect.evaluate import dataset_auc
from ipad_detect.registry import kind_label

ABLATION_ROWS = ("reconstruction only (V-Swin-T)", "period only (E_p score)", "window only (no memory)",
                 "memory only (no window score)", "both (ours)")


@dataclass
class Run:
    """One evaluation JSON, reduced to what the tables need."""

    path: Path
    scene: str
    auc: float | None
    kind: str
    label: str
    ablation: str | None
    finetune: dict | None
    result: dict


def _checkpoint_config(result: dict) -> dict:
    """The model config stored beside the evaluated checkpoint, when that folder still exists."""
    path = Path(result.get("checkpoint") or "") / "config.json"
    if result.get("checkpoint") and path.is_file():
        return json.loads(path.read_text()).get("config", {})
    return {}


def _ablation_row(result: dict) -> str | None:
    if result.get("ablation"):
        return result["ablation"]
    kind, weight = result.get("kind"), result.get("phase_weight", 0.0)
    if kind == "vswin":
        return ABLATION_ROWS[0]
    if kind != "full":
        return None
    if weight == 1.0:
        return ABLATION_ROWS[1]
    if _checkpoint_config(result).get("use_memory", True) is False:
        return ABLATION_ROWS[2]
    return ABLATION_ROWS[3] if weight == 0.0 else ABLATION_ROWS[4]


def read_run(path: Path | str) -> Run:
    """An evaluation JSON; a clear error when the file is not one."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read evaluation JSON {path}: {error}") from None
    missing = [key for key in ("auc", "scene", "videos") if key not in result]
    if missing:
        raise ValueError(f"{path} is not an evaluation JSON of ipad-detect evaluate/finetune "
                         f"(missing {', '.join(missing)})")
    kind = result.get("kind", "?")
    label = result.get("label") or kind_label(kind)
    if result.get("kind") == "full" and result.get("phase_weight") in (0.0, 1.0) and not result.get("label"):
        label += f" (phase weight {result['phase_weight']:g})"
    return Run(path=path, scene=result["scene"], auc=result["auc"], kind=kind, label=label,
               ablation=_ablation_row(result), finetune=result.get("finetune"), result=result)


# ----------------------------------------------------------------------------- tables


@dataclass
class Table:
    name: str
    title: str
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> tuple[Path, Path]:
        md, csv_path = out / f"{self.name}.md", out / f"{self.name}.csv"
        md.write_text(self.markdown())
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.header)
            writer.writerows(self.rows)
        return md, csv_path


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def parameters(count: int | None, share: float | None = None) -> str:
    if count is None:
        return "-"
    text = f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.0f}k" if count >= 1e3 else str(count)
    return text if share is None else f"{text} ({100 * share:.0f}%)"


def _scene_table(name: str, title: str, first: str, runs_by_row: dict[str, dict[str, float | None]],
                 scenes: list[str]) -> Table:
    rows = [[row] + [percent(values.get(s)) for s in scenes] + [percent(dataset_auc(values))]
            for row, values in runs_by_row.items()]
    return Table(name, title, [first, *scenes, "Avg."], rows)


def _scenes(runs: list[Run]) -> list[str]:
    return sorted({r.scene for r in runs})


def table2(runs: list[Run]) -> Table | None:
    """Models x scenes (paper table 2); fine-tuning runs are left to table 3."""
    plain = [r for r in runs if r.finetune is None]
    if not plain:
        return None
    rows: dict[str, dict[str, float | None]] = {}
    for run in plain:
        rows.setdefault(run.label, {})[run.scene] = run.auc
    return _scene_table("table2", "Frame-level AUC (%) per scene (cf. paper table 2)", "Method", rows, _scenes(plain))


def _finetune_data(block: dict) -> str:
    if block.get("method") == "none" and block.get("shots") in (None, 0):
        return "none"
    videos, total = len(block.get("videos") or []), block.get("all_videos")
    shots = block.get("shots", 1.0)
    if shots is None or shots >= 1:
        return "all"
    return f"few-shot {videos}/{total}" if total else f"few-shot ({shots:g})"


def table3(runs: list[Run]) -> Table | None:
    """Adaptation rows (paper table 3): AUC per scene, mean, fine-tuning time, trainable parameters."""
    adapted = [r for r in runs if r.finetune is not None]
    if not adapted:
        return None
    scenes = _scenes(adapted)
    groups: dict[tuple, list[Run]] = {}
    for run in adapted:
        block = run.finetune
        pretrain = ",".join(block.get("pretrain_scenes") or []) or "none"
        method = {"lora": "LoRA", "full": "full finetune", "none": "-"}.get(block.get("method"), block.get("method"))
        key = (block.get("row") or "", pretrain, _finetune_data(block), method)
        groups.setdefault(key, []).append(run)
    rows = []
    for (row, pretrain, data, method), members in groups.items():
        repeats: dict[str, list[float]] = {}  # runs of one row on one scene (seeds): mean, ± their spread
        for run in members:
            if run.auc is not None:
                repeats.setdefault(run.scene, []).append(run.auc)
        aucs = {s: float(np.mean(v)) for s, v in repeats.items()}
        cells = [percent(aucs.get(s)) + (f" ± {100 * np.std(repeats[s]):.1f}" if len(repeats.get(s, [])) > 1 else "")
                 for s in scenes]
        times = [r.finetune.get("wall_time_s") for r in members if r.finetune.get("wall_time_s") is not None]
        trainable = [r.finetune.get("trainable_parameters") for r in members]
        shares = [r.finetune.get("trainable_share") for r in members if r.finetune.get("trainable_share") is not None]
        rows.append([row, pretrain, data, method] + cells
                    + [percent(dataset_auc(aucs)), duration(float(np.mean(times)) if times else None),
                       parameters(max((t for t in trainable if t is not None), default=None),
                                  float(np.mean(shares)) if shares else None)])
    header = ["Row", "Pretrain data", "Finetune data", "Method", *scenes, "Avg.", "Finetune time",
              "Trainable parameters"]
    if not any(row[0] for row in rows):  # no named rows: drop the column
        header, rows = header[1:], [row[1:] for row in rows]
    return Table("table3", "Adaptation to real scenes (cf. paper table 3)", header, rows)


def table4(runs: list[Run]) -> Table | None:
    """Ablation of the period information (paper table 4), from full / vswin runs."""
    found = [r for r in runs if r.ablation is not None and r.finetune is None]
    rows: dict[str, dict[str, float | None]] = {}
    for label in ABLATION_ROWS:
        for run in found:
            if run.ablation == label:
                rows.setdefault(label, {})[run.scene] = run.auc
    for run in found:  # rows named in the JSON that are not ours
        if run.ablation not in ABLATION_ROWS:
            rows.setdefault(run.ablation, {})[run.scene] = run.auc
    if len(rows) < 2:  # one configuration is no ablation
        return None
    return _scene_table("table4", "Ablation of the period information (cf. paper table 4)", "Variant", rows,
                        _scenes(found))


# ----------------------------------------------------------------------------- curves and the report


def score_curves(run: Run, out: Path, prefix: str = "") -> list[Path]:
    """One PNG per test video: anomaly score against frame, anomalous frames shaded."""
    from ipad_detect.plots import plot_score_curve

    written = []
    first = int(run.result.get("first_frame", 8))
    for name, video in run.result["videos"].items():
        score = np.asarray(video["anomaly_score"], dtype=float)
        if not len(score):
            continue
        labels = np.asarray(video["labels"]) if video.get("labels") is not None else None
        frames = np.arange(first, first + len(score))
        stem = f"{prefix}{run.path.stem}-{run.scene}-{name}".replace("/", "_")
        title = f"{run.scene} video {name} — {run.label}"
        if run.finetune:
            title += f", {run.finetune.get('method')} ({_finetune_data(run.finetune)})"
        written.append(plot_score_curve(out / f"{stem}.png", frames, score, labels, title))
    return written


class ReportWriteError(ValueError):
    """A report file that could not be written: one line naming it."""


def make_report(json_files: list[Path | str], out: Path | str, curves: bool = True) -> dict[str, object]:
    """Write table2/3/4 .md and .csv, report.md (all tables) and score curves under `out`."""
    if not json_files:
        raise ValueError("no evaluation JSON given; pass files written by ipad-detect evaluate or finetune")
    runs = [read_run(path) for path in json_files]
    out = Path(out)
    tables = [t for t in (table2(runs), table3(runs), table4(runs)) if t is not None]
    written: dict[str, object] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for table in tables:
            written[table.name] = table.write(out)
        report = out / "report.md"
        report.write_text("\n".join(t.markdown() for t in tables))
        written["report"] = report
        written["tables"] = tables
        if curves:
            (out / "curves").mkdir(exist_ok=True)
            written["curves"] = [png for i, run in enumerate(runs, 1)  # numbered: many files are "evaluation.json"
                                 for png in score_curves(run, out / "curves", f"{i:02d}-")]
    except OSError as error:  # a disk that fills up, a file system that goes read-only
        raise ReportWriteError(f"{error.filename or out} could not be written ({error.strerror or error}); "
                               "make room (or give another --out) and run report again") from None
    return written
