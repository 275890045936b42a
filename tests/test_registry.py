"""The model registry: kinds are registered where they are defined and everything else reads them."""
import pytest
import torch
from torch import nn

from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.config import get_config
from ipad_detect.data import load_scene
from ipad_detect.evaluate import evaluate_scene
from ipad_detect.models.conae import ConvAutoencoder
from ipad_detect.registry import _KINDS, build_model, get_kind, kind_label, model_kinds, register_model, without_bank
from ipad_detect.scoring import score_videos
from ipad_detect.train import TrainOptions, train

TINY = get_config("tiny")


def test_the_project_kinds_are_registered_the_default_first():
    assert model_kinds()[0] == "full"
    assert set(model_kinds(learned=True)) == {"full", "paper", "vswin", "memae", "conae"}
    assert model_kinds(learned=False) == ("frame-nn", "clip-nn", "phase-nn")
    assert get_kind("paper").configure(TINY).phase_check == "window"
    assert kind_label("vswin") == "V-Swin-T" and kind_label("gone-since") == "gone-since"
    with pytest.raises(ValueError, match="unknown model kind 'swin'; allowed: full, paper, vswin"):
        get_kind("swin")


@pytest.fixture
def registered():
    """Register kinds for one test and forget them after it."""
    before = dict(_KINDS)
    yield register_model
    _KINDS.clear()
    _KINDS.update(before)


def test_a_kind_registered_twice_is_refused(registered):
    registered("twice", label="Twice", description="twice")(nn.Identity)
    with pytest.raises(ValueError, match="model kind 'twice' is registered twice"):
        registered("twice", label="Twice", description="twice")(nn.Identity)


def test_a_model_registered_in_one_place_trains_scores_and_reloads(registered, ipad_root, tmp_path):
    """A newcomer's model: one decorated class, then trained, saved, loaded and scored by name."""

    @registered("narrow-ae", label="Narrow AE", description="narrow-ae (a test's conv autoencoder)",
                configure=without_bank)  # it has no normal bank: scored by its reconstruction
    class NarrowAutoencoder(ConvAutoencoder):
        pass

    assert "narrow-ae" in model_kinds(learned=True)
    result = train(ipad_root, ["S01"], TINY, tmp_path / "run",
                   TrainOptions(kind="narrow-ae", epochs=1, max_clips=8, progress=False))
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.kind == "narrow-ae" and isinstance(loaded.model, NarrowAutoencoder)
    for before, after in zip(result.model.state_dict().values(), loaded.model.state_dict().values()):
        torch.testing.assert_close(before, after)
    scores = score_videos(loaded.model, loaded.kind, loaded.config, load_scene(ipad_root, "S01").testing,
                          cycle_length=None, progress=False)
    assert evaluate_scene(scores).auc is not None
    assert isinstance(build_model("narrow-ae", TINY), NarrowAutoencoder)
