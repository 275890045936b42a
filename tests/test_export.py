"""`ipad-detect export --format onnx`: the graph scores as torch does, and `watch --onnx` runs on it."""
import json

import numpy as np
import pytest
from test_watch import calibrated, played  # noqa: F401 - the fixture

from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.cli import main
from ipad_detect.data import to_clip_tensor
from ipad_detect.export import OnnxScorer
from ipad_detect.watch import score_clips

pytestmark = pytest.mark.slow  # an export takes half a minute


@pytest.fixture(scope="module")
def exported(calibrated, tmp_path_factory):  # noqa: F811
    root, _ = calibrated
    run = tmp_path_factory.mktemp("export") / "full"
    assert main(["train", "--data", str(root), "--scene", "S01", "--config", "tiny", "--epochs", "1",
                 "--max-clips", "8", "--out", str(run), "--quiet"]) == 0
    assert main(["calibrate", "--checkpoint", str(run), "--data", str(root), "--scene", "S01", "--fps", "10",
                 "--min-duration", "0.3", "--quiet"]) == 0
    assert main(["export", "--checkpoint", str(run), "--format", "onnx"]) == 0
    return run, next(run.glob("epoch-*")) / "model.onnx"


def test_the_graph_scores_clips_as_torch_does(exported, capsys):
    run, graph = exported
    record = json.loads(graph.with_suffix(".json").read_text())
    assert record["outputs"] == ["centre", "bank_distance", "phase_probs"] and record["max_abs_difference"] < 1e-4
    checkpoint, onnx = load_checkpoint(run), OnnxScorer(graph)
    frames = np.random.default_rng(0).integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    starts = [0, 2, 4]  # three clips in one batch: the graph takes any number
    torch_scores, torch_phases = score_clips(checkpoint, frames, starts)
    clips = np.stack([to_clip_tensor(frames[s:s + 16]).numpy() for s in starts])
    onnx_scores, onnx_phases = onnx.score(clips, 16, checkpoint.config.bank_weight)
    assert onnx_scores == pytest.approx(list(torch_scores), abs=1e-3) and onnx_phases == torch_phases
    one_by_one = [onnx.score(clip[None], 16, checkpoint.config.bank_weight)[0][0] for clip in clips]
    assert one_by_one == pytest.approx(onnx_scores, abs=1e-4)


def test_watch_on_the_graph_raises_the_alarms_torch_raises(exported, tmp_path):
    run, graph = exported
    mp4 = tmp_path / "red.mp4"
    played(mp4, 64, red=slice(30, 42))
    lines = {}
    for name, extra in (("torch", []), ("onnx", ["--onnx", str(graph)])):
        out = tmp_path / f"{name}.jsonl"
        assert main(["watch", str(mp4), "--checkpoint", str(run), "--out", str(out), "--alarms",
                     str(tmp_path / name), *extra]) == 0
        lines[name] = [json.loads(line) for line in out.read_text().splitlines()]
    scores = {name: np.array([x["score"] for x in v if "score" in x]) for name, v in lines.items()}
    np.testing.assert_allclose(scores["onnx"], scores["torch"], atol=1e-3)
    events = {name: [(x["start_frame"], x["end_frame"]) for x in v if "event" in x] for name, v in lines.items()}
    assert events["onnx"] == events["torch"]


def test_a_reference_has_no_graph(calibrated, capsys):  # noqa: F811
    _, run = calibrated  # clip-nn
    assert main(["export", "--checkpoint", str(run)]) == 2
    assert "non-learned reference" in capsys.readouterr().err
