"""The model registry: every detector kind registers itself where it is defined, with
`@register_model` (as timm's and torchvision's models do), and is built by name.

The CLI's `--model` choices, the reports' labels, the checkpoint loader and the trainer all read
the kinds from here, so a new model is one decorated builder in one file (and an import in
`models/__init__.py`). A kind is either *learned* (a network that `train.py` optimises and
`scoring.reconstruct_video` scores) or a non-learned *reference* (a bank of normal samples filled
once from the training videos, `nearest.py`, with `fit` and `score_video` of its own). Scoring
goes through one interface for both, `get_kind(name).normality(model, frames, config, ...)`, so
no scorer branches on a kind; what only a network can do (fine-tune, export) asks
`get_kind(name).learned`, never for a kind by its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ipad_detect.config import ModelConfig


def _as_given(config: ModelConfig) -> ModelConfig:
    return config


def _reconstructed(model, frames, config: ModelConfig, batch_size: int = 8, device="cpu", starts=None):
    """A learned model's normality per clip and its phase probabilities (`scoring.reconstruct_video`)."""
    from ipad_detect.scoring import reconstruct_video  # scoring reads the registry: imported when called

    return reconstruct_video(model, frames, config, batch_size, device, starts)


def _searched(model, frames, config: ModelConfig, batch_size: int = 8, device="cpu", starts=None):
    """A reference's normality per clip (its own `score_video`, over every clip) and no phase."""
    values = model.score_video(frames, config.clip_len)
    return (values if starts is None else values[starts]), None


def without_bank(config: ModelConfig) -> ModelConfig:
    """Scored by reconstruction alone (the baselines as published)."""
    return config.model_copy(update={"bank_weight": 0.0})


@dataclass(frozen=True)
class ModelKind:
    """What the project knows of one kind of detector."""

    name: str  # the --model value and the checkpoint's "kind"
    build: Callable  # ModelConfig -> a fresh nn.Module
    label: str  # its row in reports
    description: str  # one phrase for the CLI help
    learned: bool = True  # False: a non-learned reference, fit once with fit(videos, cache, cycle_length)
    configure: Callable[[ModelConfig], ModelConfig] = _as_given  # the config this kind really runs with
    # (model, frames, config, batch_size, device, starts=None) -> (normality per clip, phase
    # probabilities [clips, bins] or None): every stride-1 clip, or those starting at `starts`
    normality: Callable = _reconstructed


_KINDS: dict[str, ModelKind] = {}


def register_model(name: str, *, label: str, description: str, learned: bool = True,
                   configure: Callable[[ModelConfig], ModelConfig] = _as_given) -> Callable:
    """Decorator: register a builder (a class or a function of the config) as the kind `name`."""

    def register(build: Callable) -> Callable:
        if name in _KINDS:
            raise ValueError(f"model kind {name!r} is registered twice ({_KINDS[name].build.__module__} "
                             f"and {build.__module__}); choose another name")
        _KINDS[name] = ModelKind(name, build, label, description, learned, configure,
                                 _reconstructed if learned else _searched)
        return build

    return register


def _registered() -> dict[str, ModelKind]:
    """Every registered kind, in the order of registration (the project's own, imported here, first)."""
    import ipad_detect.models  # noqa: F401  (their decorators register the learned kinds)
    import ipad_detect.nearest  # noqa: F401  (... and the references)

    return _KINDS


def model_kinds(learned: bool | None = None) -> tuple[str, ...]:
    """The names of the registered kinds: all of them, or only the learned ones (True) or references (False)."""
    return tuple(name for name, kind in _registered().items() if learned is None or kind.learned == learned)


def get_kind(name: str) -> ModelKind:
    kinds = _registered()
    if name not in kinds:
        raise ValueError(f"unknown model kind {name!r}; allowed: {', '.join(kinds)}")
    return kinds[name]


def kind_label(name: str) -> str:
    """A kind's row label in reports; a kind no longer registered (an old result file) keeps its name."""
    kinds = _registered()
    return kinds[name].label if name in kinds else name


def kind_config(kind: str, config: ModelConfig) -> ModelConfig:
    """The config a model of `kind` really runs with (saved in its checkpoint, read when scoring)."""
    return get_kind(kind).configure(config)


def build_model(kind: str, config: ModelConfig):
    """A freshly initialised model of `kind` (a network, or an empty reference bank) sized by `config`."""
    return get_kind(kind).build(kind_config(kind, config))
