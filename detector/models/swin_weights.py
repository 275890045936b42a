"""Loading torchvision's video Swin weights (e.g. Kinetics-400 `swin3d_t`) into our encoder.

Kept apart from the module: `swin3d.py` defines the network, this file maps a checkpoint onto it.
Reads local files only (no downloads): a `torch.save(model.state_dict())` file, read with
`weights_only=True`, or a `.safetensors` file.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from ipad_detect.models.swin3d import SwinEncoder3d

# torchvision keys that our encoder does not have: the Kinetics classifier, and the relative
# position index, which our attention recomputes from its window size.
_DROPPED = re.compile(r"^head\.|\.relative_position_index$")
_FUSED_QKV = re.compile(r"^(.*\.attn)\.qkv\.(weight|bias)$")
_MLP_LAYERS = {"mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2."}  # torchvision's MLP is a Sequential


def convert_torchvision_swin3d(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision SwinTransformer3d state_dict -> SwinEncoder3d state_dict.

    The fused `attn.qkv` rows are q | k | v (torchvision reshapes its output as (3, heads, dim)),
    so they split into three equal blocks; MLP indices become fc1/fc2; the head is dropped.
    """
    converted: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if _DROPPED.search(key):
            continue
        fused = _FUSED_QKV.match(key)
        if fused:
            prefix, kind = fused.groups()
            if value.shape[0] % 3:
                raise ValueError(f"{key}: fused qkv has {value.shape[0]} rows, not a multiple of 3")
            for name, part in zip("qkv", value.chunk(3, dim=0)):
                converted[f"{prefix}.{name}.{kind}"] = part.clone()
            continue
        for old, new in _MLP_LAYERS.items():
            key = key.replace(old, new)
        converted[key] = value
    return converted


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"Swin weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (name -> tensor) saved with torch.save")
    return state


def _list(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_swin3d_weights(encoder: SwinEncoder3d | nn.Module, path: str | Path) -> None:
    """Load torchvision video Swin weights from a local file into `encoder` (in place).

    Raises ValueError naming the keys when the file does not fit the encoder's architecture
    (missing keys, unexpected keys, or shapes that differ).
    """
    path = Path(path)
    weights = convert_torchvision_swin3d(_read_state_dict(path))
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong_shape = [
        f"{key} (file {tuple(weights[key].shape)}, encoder {tuple(expected[key].shape)})"
        for key in sorted(set(expected) & set(weights))
        if weights[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_list(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_list(wrong_shape, limit=4)}")
    if problems:
        raise ValueError(
            f"{path} does not fit this Swin encoder (is it torchvision swin3d_t weights for this config?); "
            + "; ".join(problems)
        )
    encoder.load_state_dict(weights, strict=True)
