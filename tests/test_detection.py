"""The default detector detects: trained briefly on a small rendered scene, it finds clearly visible
appearance anomalies, and it reconstructs better than the scene's mean frame (a still picture).

Deterministic (fixed seeds, one thread-independent CPU run), not a timing test: the training budget
is a number of clips, about a minute and a half of 2 CPU cores.
"""


import pytest

pytest.importorskip("bpy")

from ipad_detect.checkpoint import load_checkpoint  # noqa: E402
from ipad_detect.config import get_config  # noqa: E402
from ipad_detect.scoring import evaluate_checkpoint  # noqa: E402
from ipad_detect.train import TrainOptions, train  # noqa: E402
from ipadgen.cli import main as ipadgen  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
TINY = get_config("tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    assert ipadgen(["render", "--device", "lifter", "--anomalies", "load_color,missing_arm,load_shape",
                    "--out", str(root), "--scene-name", "L", "--seed", "5", "--train-videos", "2",
                    "--test-videos", "3", "--cycles", "3", "--resolution", "64", "--fps", "5",
                    "--quiet"]) == 0
    options = TrainOptions(epochs=4, max_clips=300, lr=1e-3, seed=0, progress=False)  # the default model: full
    result = train(root, ["L"], TINY, root / "run", options)
    return root, result


def test_default_detector_finds_appearance_anomalies(trained):
    root, result = trained
    evaluation = evaluate_checkpoint(load_checkpoint(result.checkpoint), root, "L", progress=False)
    assert evaluation.auc >= 0.9, evaluation.per_video_auc


def test_training_reconstructs_better_than_the_mean_frame(trained):
    _, result = trained
    assert result.epoch_recon[-1] < result.static_frame_mse, (result.epoch_recon, result.static_frame_mse)
