"""Video Swin Transformer encoder (Liu et al. 2022), laid out like torchvision's `swin3d_t`.

Why our own module: torchvision's attention reads `qkv.weight` directly (F.linear on the fused
tensor), so LoRA adapters that peft puts on `qkv` are never called. Here `q`, `k` and `v` are
separate nn.Linear layers called as modules, so `LoraConfig(target_modules=["q", "v"])` really
acts. Everything else (patch embedding, shifted 3-D windows with their attention mask, relative
position bias, patch merging, norms, init) follows torchvision exactly, so its Kinetics-400
weights map 1:1 (see `swin_weights.py`).

Window attention runs in one of two ways (`use_attention`): "eager", SDPA with the bias and the
shift's mask materialised as an attention mask (the default; on a GPU that bars the flash kernels),
or "flex", FlexAttention with both added to the scores inside the kernel (`score_mod`). FlexAttention
is fused only under torch.compile (`--compile` on a GPU); called eagerly it is torch's unfused
reference. On the CPU (torch 2.14) it has no backward and its lowering inside a compiled model
fails, so there `--compile` keeps "eager" (tests/test_fused_attention.py says what runs).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention.flex_attention import flex_attention
from torchvision.ops import StochasticDepth

from ipad_detect.config import ModelConfig

Size3 = tuple[int, int, int]
ATTENTION = ("eager", "flex")


def _pad_to_multiple(size: Size3, multiple: Size3) -> Size3:
    return tuple((m - s % m) % m for s, m in zip(size, multiple))  # type: ignore[return-value]


@lru_cache(maxsize=64)
def _shifted_window_mask(padded: Size3, window: Size3, shift: Size3, device: torch.device) -> Tensor:
    """[num_windows, V, V] additive mask: -100 between tokens that the cyclic shift brought
    together from different regions (torchvision's value, so outputs match), 0 elsewhere.
    Cached, and built outside inference mode so a mask first made while scoring can be reused
    while training."""
    with torch.inference_mode(False):
        return _build_shifted_window_mask(padded, window, shift, device)


def _build_shifted_window_mask(padded: Size3, window: Size3, shift: Size3, device: torch.device) -> Tensor:
    region = torch.zeros(padded, device=device)
    count = 0
    bounds = [((0, -w), (-w, -s), (-s, None)) for w, s in zip(window, shift)]
    for d in bounds[0]:
        for h in bounds[1]:
            for w in bounds[2]:
                region[d[0] : d[1], h[0] : h[1], w[0] : w[1]] = count
                count += 1
    windows = _partition(region[None, ..., None], window).squeeze(-1)  # [nW, V]
    mask = windows[:, None, :] - windows[:, :, None]
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def _partition(x: Tensor, window: Size3) -> Tensor:
    """[B, T, H, W, C] (sizes multiples of the window) -> [B * num_windows, V, C]."""
    b, t, h, w, c = x.shape
    x = x.view(b, t // window[0], window[0], h // window[1], window[1], w // window[2], window[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, window[0] * window[1] * window[2], c)


def _merge_windows(x: Tensor, window: Size3, b: int, size: Size3) -> Tensor:
    """Inverse of `_partition`: [B * num_windows, V, C] -> [B, T, H, W, C]."""
    t, h, w = size
    x = x.view(b, t // window[0], h // window[1], w // window[2], window[0], window[1], window[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, t, h, w, -1)


def _flex_window_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None,
                           heads: int) -> Tensor:
    """SDPA of q, k, v [B, nW * heads, V, head_dim] with the relative-position bias [heads, V, V]
    and the shift's mask [nW, V, V] added to the scores inside FlexAttention's kernel, so the
    [nW * heads, V, V] sum of both is never written out."""
    if mask is None:
        def score_mod(score, b, h, q_idx, kv_idx):
            return score + bias[h % heads, q_idx, kv_idx]
    else:
        def score_mod(score, b, h, q_idx, kv_idx):
            return score + bias[h % heads, q_idx, kv_idx] + mask[h // heads, q_idx, kv_idx]
    return flex_attention(q, k, v, score_mod=score_mod)


def use_attention(model: nn.Module, attention: str) -> None:
    """Run every window attention of `model` the `attention` way (`ATTENTION`; the outputs agree)."""
    if attention not in ATTENTION:
        raise ValueError(f"unknown attention {attention!r}; allowed: {', '.join(ATTENTION)}")
    for module in model.modules():
        if isinstance(module, WindowAttention3d):
            module.attention = attention


class WindowAttention3d(nn.Module):
    """Multi-head self-attention inside (shifted) 3-D windows, with relative position bias."""

    def __init__(self, dim: int, num_heads: int, window_size: Size3, shift_size: Size3) -> None:
        super().__init__()
        self.attention = "eager"  # or "flex" (`use_attention`)
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.shift_size = tuple(shift_size)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        wd, wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # Derived from the window size, so not saved in checkpoints.
        self.register_buffer("relative_position_index", self._relative_position_index(), persistent=False)

    def _relative_position_index(self) -> Tensor:
        wd, wh, ww = self.window_size
        coords = torch.stack(
            torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij")
        ).flatten(1)  # [3, V]
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # [V, V, 3]
        relative = relative + torch.tensor([wd - 1, wh - 1, ww - 1])
        return relative[..., 0] * (2 * wh - 1) * (2 * ww - 1) + relative[..., 1] * (2 * ww - 1) + relative[..., 2]

    def forward(self, x: Tensor) -> Tensor:
        b, t, h, w, c = x.shape
        # A window larger than the input shrinks to the input and is not shifted (as torchvision).
        window = tuple(min(wi, si) for wi, si in zip(self.window_size, (t, h, w)))
        shift = tuple(0 if si <= wi else sh for wi, si, sh in zip(self.window_size, (t, h, w), self.shift_size))
        pad = _pad_to_multiple((t, h, w), window)
        x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
        padded = tuple(x.shape[1:4])
        shifted = sum(shift) > 0
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))

        windows = _partition(x, window)  # [B*nW, V, C]
        volume = windows.shape[1]
        num_windows = windows.shape[0] // b
        heads, head_dim = self.num_heads, c // self.num_heads

        # Windows and heads share one axis, [B, nW * heads, V, head_dim], so SDPA gets 4-D inputs
        # (what its fused GPU kernels take) and the [nW, heads, V, V] bias broadcasts over the batch.
        def split_heads(y: Tensor) -> Tensor:
            y = y.view(b, num_windows, volume, heads, head_dim).transpose(2, 3)
            return y.reshape(b, num_windows * heads, volume, head_dim)

        q, k, v = split_heads(self.q(windows)), split_heads(self.k(windows)), split_heads(self.v(windows))
        index = self.relative_position_index[:volume, :volume].flatten()
        bias = self.relative_position_bias_table[index].view(volume, volume, heads).permute(2, 0, 1)
        mask = _shifted_window_mask(padded, window, shift, x.device) if shifted else None  # type: ignore[arg-type]
        if self.attention == "flex":
            out = _flex_window_attention(q, k, v, bias.to(q.dtype), None if mask is None else mask.to(q.dtype), heads)
        else:
            bias = bias.expand(num_windows, heads, volume, volume)
            if mask is not None:
                bias = bias + mask[:, None]
            bias = bias.reshape(1, num_windows * heads, volume, volume).to(q.dtype)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.view(b, num_windows, heads, volume, head_dim).transpose(2, 3).reshape(b * num_windows, volume, c)
        out = self.proj(out)

        x = _merge_windows(out, window, b, padded)  # type: ignore[arg-type]
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :t, :h, :w].contiguous()


class Mlp(nn.Module):
    """The transformer block's feed-forward part: Linear, GELU, Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock3d(nn.Module):
    """Pre-norm transformer block: window attention then MLP, each with stochastic depth."""

    def __init__(
        self, dim: int, num_heads: int, window_size: Size3, shift_size: Size3, mlp_ratio: float, drop_prob: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention3d(dim, num_heads, window_size, shift_size)
        self.stochastic_depth = StochasticDepth(drop_prob, "row")
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Halves height and width (time is kept) and doubles the channels."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


class PatchEmbed3d(nn.Module):
    """Non-overlapping 3-D patches -> tokens, channels last: [B, 3, T, H, W] -> [B, T', H', W', C]."""

    def __init__(self, patch_size: Size3, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        pad = _pad_to_multiple(tuple(x.shape[2:]), self.patch_size)  # type: ignore[arg-type]
        x = F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class SwinEncoder3d(nn.Module):
    """Video Swin encoder: clips [B, 3, T, H, W] -> features [B, T', H', W', C_last] (normed).

    Equals torchvision's SwinTransformer3d up to (not including) its avgpool and head.
    """

    def __init__(
        self,
        patch_size: Size3,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: tuple[int, ...],
        window_size: Size3,
        mlp_ratio: float = 4.0,
        stochastic_depth_prob: float = 0.1,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed3d(patch_size, embed_dim)
        total_blocks, block_id = sum(depths), 0
        layers: list[nn.Module] = []
        for stage, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = embed_dim * 2**stage
            blocks = []
            for i in range(depth):
                drop_prob = stochastic_depth_prob * block_id / max(total_blocks - 1, 1)
                shift = (0, 0, 0) if i % 2 == 0 else tuple(w // 2 for w in window_size)
                blocks.append(SwinBlock3d(dim, heads, window_size, shift, mlp_ratio, drop_prob))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            if stage < len(depths) - 1:
                layers.append(PatchMerging(dim))
        # Same indices as torchvision's `features` (stages and mergings alternate), so keys map 1:1.
        self.features = nn.Sequential(*layers)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features, eps=1e-5)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "SwinEncoder3d":
        return cls(
            patch_size=cfg.patch_size,
            embed_dim=cfg.embed_dim,
            depths=cfg.depths,
            num_heads=cfg.num_heads,
            window_size=cfg.window_size,
            mlp_ratio=cfg.mlp_ratio,
            stochastic_depth_prob=cfg.stochastic_depth_prob,
        )

    def forward(self, clips: Tensor) -> Tensor:
        return self.norm(self.features(self.patch_embed(clips)))

    def forward_with_stage(self, clips: Tensor, stage: int, final: bool = True) -> tuple[Tensor, Tensor | None]:
        """(the output of stage `stage`'s blocks, un-normed, [B, T', H_s, W_s, C_s]; the final
        features, or None with `final` off: the later stages are then not run)."""
        x = self.patch_embed(clips)
        for layer in self.features[:2 * stage + 1]:
            x = layer(x)
        if not final:
            return x, None
        return x, self.norm(self.features[2 * stage + 1:](x))
