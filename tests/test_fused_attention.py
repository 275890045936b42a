"""Window attention in FlexAttention (the bias and the shift's mask as a score_mod) gives the eager
module's output. On the CPU, torch 2.14 runs FlexAttention forward only: eagerly as its unfused
reference (fast at these sizes), and the kernel call compiled alone as its fused C++ kernel (about
25 s to build, so marked slow). Inside a whole compiled model its CPU lowering fails (it wants q, k,
v and the captured bias as plain 4-D buffers), which is why `--compile` keeps SDPA on the CPU."""

import pytest
import torch
from torch.nn.attention.flex_attention import flex_attention

from ipad_detect.config import get_config
from ipad_detect.models import swin3d
from ipad_detect.models.swin3d import SwinEncoder3d, WindowAttention3d, use_attention

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


def attention_pair(shift: tuple[int, int, int]) -> tuple[WindowAttention3d, WindowAttention3d]:
    torch.manual_seed(0)
    eager = WindowAttention3d(48, 2, (4, 4, 4), shift).eval()
    flex = WindowAttention3d(48, 2, (4, 4, 4), shift).eval()
    flex.load_state_dict(eager.state_dict())
    use_attention(flex, "flex")
    return eager, flex


@pytest.mark.parametrize("shift", [(0, 0, 0), (2, 2, 2)])
def test_flex_window_attention_gives_the_eager_output(shift):
    eager, flex = attention_pair(shift)
    # 6 x 10 x 10 tokens: the (4, 4, 4) windows pad, and the shift brings regions together (masked).
    x = torch.randn(2, 6, 10, 10, 48)
    with torch.no_grad():
        expected, fused = eager(x), flex(x)
    assert flex.attention == "flex"
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_flex_encoder_gives_the_eager_features_through_shifted_and_plain_blocks():
    torch.manual_seed(0)
    # At 64 px the paper's (8, 7, 7) windows pad and shift with masks; later stages shrink them.
    encoder = SwinEncoder3d.from_config(get_config("paper")).eval()
    clips = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        expected = encoder(clips)
        use_attention(encoder, "flex")
        fused = encoder(clips)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


def test_unknown_attention_is_refused():
    with pytest.raises(ValueError, match="unknown attention 'flash'; allowed: eager, flex"):
        use_attention(SwinEncoder3d.from_config(get_config("tiny")), "flash")


@pytest.mark.slow
def test_the_fused_flex_kernel_gives_the_eager_output(monkeypatch):
    eager, flex = attention_pair((2, 2, 2))
    monkeypatch.setattr(swin3d, "flex_attention", torch.compile(flex_attention))
    x = torch.randn(2, 6, 10, 10, 48)
    with torch.no_grad():
        expected, fused = eager(x), flex(x)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention trains on a GPU only (bench/gpu.sh)")
def test_compiled_flex_on_cuda_gives_the_eager_output_and_gradients():
    torch.manual_seed(0)
    eager = WindowAttention3d(96, 3, (8, 7, 7), (4, 3, 3)).cuda()  # the paper's stage 0 (head dim 32)
    flex = WindowAttention3d(96, 3, (8, 7, 7), (4, 3, 3)).cuda()
    flex.load_state_dict(eager.state_dict())
    use_attention(flex, "flex")
    x = torch.randn(2, 8, 16, 16, 96, device="cuda")
    expected, fused = eager(x), torch.compile(flex)(x)
    torch.testing.assert_close(fused, expected, atol=1e-4, rtol=1e-4)
    expected.square().sum().backward()
    fused.square().sum().backward()
    for (name, a), (_, b) in zip(eager.named_parameters(), flex.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-3, rtol=1e-3, msg=name)
