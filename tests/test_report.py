"""Tables 2, 3 and 4 and score curves from evaluation JSON files."""

import csv
import json

import numpy as np
import pytest

from ipad_detect.cli import main
from ipad_detect.evaluate import VideoScores, evaluate_scene
from ipad_detect.report import make_report


def evaluation_json(path, scene, kind="full", quality=1.0, phase_weight=0.5, finetune=None, **extra):
    """A real evaluation result of two 40-frame test videos; `quality` = how well scores follow labels."""
    rng = np.random.default_rng(len(scene) + int(10 * quality))
    videos = []
    for name in ("01", "02"):
        labels = np.zeros(40, np.uint8)
        labels[20:30] = 1
        psnr = 30 - 5 * quality * labels[8:33] + rng.normal(0, 1, 25)
        videos.append(VideoScores(name, labels, psnr))
    result = evaluate_scene(videos).to_json()
    result.update({"scene": scene, "kind": kind, "config": "tiny", "phase_weight": phase_weight,
                   "checkpoint": str(path.parent / "missing"), **extra})
    if finetune is not None:
        result["finetune"] = finetune
    path.write_text(json.dumps(result))
    return path, result["auc"]


def test_tables_from_evaluation_json(tmp_path, capsys):
    made = {}
    for scene in ("S01", "S02"):
        for kind, quality in (("full", 2.0), ("vswin", 1.0), ("conae", 0.3)):
            made[(kind, scene)] = evaluation_json(tmp_path / f"{kind}-{scene}.json", scene, kind, quality,
                                                  phase_weight=0.5 if kind == "full" else 0.0)
        made[("full-w0", scene)] = evaluation_json(tmp_path / f"w0-{scene}.json", scene, "full", 1.5, phase_weight=0.0)
    for method, shots, seconds, trainable in (("full", 1.0, 600.0, 1_200_000), ("lora", 0.2, 90.0, 300_000)):
        block = {"method": method, "shots": shots, "videos": ["01"] if shots < 1 else ["01", "02", "03", "04", "05"],
                 "all_videos": 5, "wall_time_s": seconds, "trainable_parameters": trainable,
                 "trainable_share": trainable / 1_200_000, "pretrain_scenes": ["S01", "S02"]}
        made[(method, "R01")] = evaluation_json(tmp_path / f"{method}-R01.json", "R01", "full", 1.0, finetune=block)

    files = sorted(tmp_path.glob("*.json"))
    assert main(["report", *map(str, files), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "cf. paper table 2" in printed and "cf. paper table 3" in printed and "cf. paper table 4" in printed

    rows = {r["Method"]: r for r in csv.DictReader(open(tmp_path / "report" / "table2.csv"))}
    assert set(rows) == {"Ours", "V-Swin-T", "conAE", "Ours (phase weight 0)"}
    ours = [made[("full", s)][1] for s in ("S01", "S02")]
    assert rows["Ours"]["S01"] == f"{100 * ours[0]:.1f}" and rows["Ours"]["Avg."] == f"{100 * np.mean(ours):.1f}"
    assert "R01" not in rows["Ours"]  # fine-tuning runs go to table 3

    table3 = list(csv.DictReader(open(tmp_path / "report" / "table3.csv")))
    assert [(r["Finetune data"], r["Method"]) for r in table3] == [("all", "full finetune"), ("few-shot 1/5", "LoRA")]
    assert table3[0]["Pretrain data"] == "S01,S02" and table3[0]["Finetune time"] == "10.0 min"
    assert table3[1]["Finetune time"] == "90 s" and table3[1]["Trainable parameters"] == "300k (25%)"
    assert table3[1]["R01"] == f"{100 * made[('lora', 'R01')][1]:.1f}"

    table4 = {r["Variant"]: r for r in csv.DictReader(open(tmp_path / "report" / "table4.csv"))}
    assert set(table4) == {"reconstruction only (V-Swin-T)", "memory only (no window score)", "both (ours)"}
    assert table4["both (ours)"]["Avg."] == rows["Ours"]["Avg."]

    markdown = (tmp_path / "report" / "table2.md").read_text()
    assert "| Method | S01 | S02 | Avg. |" in markdown
    assert (tmp_path / "report" / "report.md").read_text().count("### ") == 3
    curves = sorted((tmp_path / "report" / "curves").glob("*.png"))
    assert len(curves) == 2 * len(files) and curves[0].read_bytes()[:4] == b"\x89PNG"


def test_a_single_model_gives_table_2_only(tmp_path):
    path, _ = evaluation_json(tmp_path / "e.json", "S01")
    written = make_report([path], tmp_path / "out", curves=False)
    assert [t.name for t in written["tables"]] == ["table2"] and not (tmp_path / "out" / "curves").exists()


def test_repeated_runs_of_a_row_give_mean_and_spread(tmp_path):
    block = {"row": "5 few-shot LoRA", "method": "lora", "shots": 0.2, "videos": ["01"], "all_videos": 5,
             "wall_time_s": 60.0, "trainable_parameters": 300_000, "trainable_share": 0.25, "pretrain_scenes": ["S01"]}
    aucs = [evaluation_json(tmp_path / f"seed{q}.json", "R01", "full", q, finetune=block)[1] for q in (0.2, 0.4, 0.6)]
    assert len(set(aucs)) == 3
    written = make_report(sorted(tmp_path.glob("*.json")), tmp_path / "out", curves=False)
    (row,) = list(csv.DictReader(open(written["table3"][1])))
    assert row["R01"] == f"{100 * np.mean(aucs):.1f} ± {100 * np.std(aucs):.1f}"
    assert row["Avg."] == f"{100 * np.mean(aucs):.1f}"


@pytest.mark.parametrize("content, message", [("{", "cannot read evaluation JSON"),
                                               ('{"auc": 0.5}', "is not an evaluation JSON")])
def test_bad_json_exits_2(tmp_path, content, message, capsys):
    (tmp_path / "bad.json").write_text(content)
    assert main(["report", str(tmp_path / "bad.json"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
