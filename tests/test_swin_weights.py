"""Our Video Swin encoder with converted torchvision weights computes torchvision's features."""

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models.video import swin3d_t
from torchvision.models.video.swin_transformer import SwinTransformer3d

from ipad_detect.config import get_config
from ipad_detect.models.swin3d import SwinEncoder3d
from ipad_detect.models.swin_weights import convert_torchvision_swin3d, load_swin3d_weights


def torchvision_features(model: SwinTransformer3d, clips: torch.Tensor) -> torch.Tensor:
    """torchvision's forward up to (not including) its avgpool and classifier head."""
    return model.norm(model.features(model.pos_drop(model.patch_embed(clips))))


@pytest.fixture(scope="module")
def torchvision_swin3d_t() -> SwinTransformer3d:
    torch.manual_seed(0)
    return swin3d_t(weights=None).eval()


def test_converted_swin3d_t_gives_torchvision_features(torchvision_swin3d_t, tmp_path):
    path = tmp_path / "swin3d_t.pth"
    torch.save(torchvision_swin3d_t.state_dict(), path)
    encoder = SwinEncoder3d.from_config(get_config("paper")).eval()
    load_swin3d_weights(encoder, path)

    torch.manual_seed(1)
    # 64x64 pads the (8, 7, 7) windows and shifts with masks; later stages shrink the window.
    # 8x96x96 has an odd token grid after merging (pads there too).
    for shape in [(2, 3, 16, 64, 64), (1, 3, 8, 96, 96)]:
        clips = torch.randn(shape)
        with torch.no_grad():
            expected = torchvision_features(torchvision_swin3d_t, clips)
            ours = encoder(clips)
        assert ours.shape == expected.shape
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_safetensors_file_loads_the_same_weights(torchvision_swin3d_t, tmp_path):
    state = torchvision_swin3d_t.state_dict()
    torch.save(state, tmp_path / "swin3d_t.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "swin3d_t.safetensors"))
    from_pth = SwinEncoder3d.from_config(get_config("paper"))
    from_safetensors = SwinEncoder3d.from_config(get_config("paper"))
    load_swin3d_weights(from_pth, tmp_path / "swin3d_t.pth")
    load_swin3d_weights(from_safetensors, tmp_path / "swin3d_t.safetensors")
    for (name, a), (_, b) in zip(from_pth.state_dict().items(), from_safetensors.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(from_pth.features[0][0].attn.q.weight, state["features.0.0.attn.qkv.weight"][:96])


def test_converter_splits_fused_qkv_rows_into_q_k_v(torchvision_swin3d_t):
    state = torchvision_swin3d_t.state_dict()
    converted = convert_torchvision_swin3d(state)
    qkv = state["features.2.1.attn.qkv.weight"]  # stage 2, second block: dim 192
    dim = qkv.shape[1]
    for i, name in enumerate("qkv"):
        assert torch.equal(converted[f"features.2.1.attn.{name}.weight"], qkv[i * dim : (i + 1) * dim])
    assert not any(key.startswith("head.") or "qkv" in key for key in converted)
    assert torch.equal(converted["features.0.0.mlp.fc2.weight"], state["features.0.0.mlp.3.weight"])


def test_tiny_config_matches_torchvision_built_with_the_same_sizes(tmp_path):
    """The converter is not tied to swin3d_t: tiny's shifted (4, 4, 4) windows map too."""
    cfg = get_config("tiny")
    torch.manual_seed(2)
    reference = SwinTransformer3d(
        patch_size=list(cfg.patch_size), embed_dim=cfg.embed_dim, depths=list(cfg.depths),
        num_heads=list(cfg.num_heads), window_size=list(cfg.window_size), stochastic_depth_prob=0.0,
    ).eval()
    path = tmp_path / "tiny.pth"
    torch.save(reference.state_dict(), path)
    encoder = SwinEncoder3d.from_config(cfg).eval()
    load_swin3d_weights(encoder, path)
    clips = torch.randn(2, 3, cfg.clip_len, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        torch.testing.assert_close(encoder(clips), torchvision_features(reference, clips), atol=1e-5, rtol=1e-5)


def test_checkpoint_of_another_architecture_names_the_wrong_shapes(torchvision_swin3d_t, tmp_path):
    path = tmp_path / "swin3d_t.pth"
    torch.save(torchvision_swin3d_t.state_dict(), path)
    tiny = SwinEncoder3d.from_config(get_config("tiny"))
    wrong = r"wrong shapes: features\.0\.0\.attn\.k\.bias \(file \(96,\), encoder \(24,\)\)"
    with pytest.raises(ValueError, match=wrong):
        load_swin3d_weights(tiny, path)


def test_missing_and_unexpected_keys_are_named(torchvision_swin3d_t, tmp_path):
    state = dict(torchvision_swin3d_t.state_dict())
    del state["features.6.1.norm2.weight"]
    state["features.0.0.attn.extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    encoder = SwinEncoder3d.from_config(get_config("paper"))
    with pytest.raises(ValueError) as error:
        load_swin3d_weights(encoder, path)
    message = str(error.value)
    assert "missing keys: features.6.1.norm2.weight" in message
    assert "unexpected keys: features.0.0.attn.extra.weight" in message


def test_missing_file_and_non_state_dict_are_refused(tmp_path):
    encoder = SwinEncoder3d.from_config(get_config("tiny"))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_swin3d_weights(encoder, tmp_path / "absent.pth")
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="expected a state_dict"):
        load_swin3d_weights(encoder, path)
