"""Plain vision transformer (Dosovitskiy et al., ICLR 2021) as mmpretrain's ``VisionTransformer``
is configured for ViTPose: no cls token, the token grid returned as a feature map after the
final LayerNorm.

Parameter names are mmpretrain's (``patch_embed.projection``, ``pos_embed``, ``layers.i.ln1``,
``layers.i.attn.qkv`` / ``attn.proj``, ``layers.i.ln2``, ``layers.i.ffn.layers.0.0`` /
``ffn.layers.1``, final ``ln1``), so mmpose 1.x ViTPose checkpoints load strictly under
``backbone.``. `timm_to_mmpretrain` maps MAE / timm names (``blocks.i.norm1``, ``mlp.fc1``, ...)
onto these; `VisionTransformer.fit_pos_embed` fits a file's position embedding (a cls position,
another grid) to the model.

Shapes: images (N, 3, H, W) -> tokens (N, h w, C) with h, w = floor((H + 2 pad - P) / P) + 1
(16 x 12 for 256 x 192, patch 16, padding 2) -> feature map (N, C, h, w).
"""

from __future__ import annotations

import logging
import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from src.models.drop_path import DropPath

log = logging.getLogger(__name__)

#: (embed_dims, num_layers, num_heads, feedforward_channels) of the ViTPose sizes. mmpretrain's
#: own ``'small'`` arch is another network (768 wide, 8 layers); ViTPose-S passes these numbers.
ARCHS: dict[str, tuple[int, int, int, int]] = {
    "s": (384, 12, 12, 1536),
    "b": (768, 12, 12, 3072),
    "l": (1024, 24, 16, 4096),
    "h": (1280, 32, 16, 5120),
}
#: LayerNorm eps of mmpretrain's ViT (``norm_cfg=dict(type='LN', eps=1e-6)``)
LN_EPS = 1e-6
CLS_POSITION_MODES = ("drop", "add")

# MAE / timm / official-ViTPose names -> mmpretrain names (applied in order, first match wins)
_TIMM_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^patch_embed\.proj\.", "patch_embed.projection."),
        (r"^blocks\.(\d+)\.norm1\.", r"layers.\1.ln1."),
        (r"^blocks\.(\d+)\.norm2\.", r"layers.\1.ln2."),
        (r"^blocks\.(\d+)\.attn\.", r"layers.\1.attn."),
        (r"^blocks\.(\d+)\.mlp\.fc1\.", r"layers.\1.ffn.layers.0.0."),
        (r"^blocks\.(\d+)\.mlp\.fc2\.", r"layers.\1.ffn.layers.1."),
        (r"^norm\.", "ln1."),  # MAE / timm final norm
        (r"^last_norm\.", "ln1."),  # the official ViTPose backbone's final norm
    )
)


def timm_to_mmpretrain(name: str) -> str:
    """A ViT tensor name in MAE / timm (or official ViTPose) style -> the mmpretrain name used here.

    ``patch_embed.proj`` -> ``patch_embed.projection``; ``blocks.i.norm1`` / ``norm2`` -> ``layers.i.ln1`` /
    ``ln2``; ``blocks.i.attn.{qkv,proj}`` -> ``layers.i.attn.{qkv,proj}``; ``blocks.i.mlp.fc1`` / ``fc2`` ->
    ``layers.i.ffn.layers.0.0`` / ``ffn.layers.1``; final ``norm`` (or ViTPose's ``last_norm``) -> ``ln1``.
    Names already in mmpretrain style, and ``pos_embed`` / ``cls_token``, are returned unchanged.
    """
    for pattern, replacement in _TIMM_RULES:
        renamed, count = pattern.subn(replacement, name, count=1)
        if count:
            return renamed
    return name


def resize_pos_embed(
    pos_embed: torch.Tensor, src_shape: tuple[int, int], dst_shape: tuple[int, int], *, mode: str = "bicubic"
) -> torch.Tensor:
    """Position embedding of a (h, w) token grid, (1, h w, C) in row-major order, resampled to another grid
    (1, h' w', C) by ``mode`` interpolation with align_corners=False (mmpretrain's ``resize_pos_embed``)."""
    src_h, src_w = src_shape
    dst_h, dst_w = dst_shape
    if (src_h, src_w) == (dst_h, dst_w):
        return pos_embed
    _, length, channels = pos_embed.shape
    if length != src_h * src_w:
        raise ValueError(f"position embedding of {length} tokens does not fill a {src_h}x{src_w} grid")
    grid = pos_embed.reshape(1, src_h, src_w, channels).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(dst_h, dst_w), mode=mode, align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided conv: (N, 3, H, W) -> (N, C, h, w).

    Args:
        img_size: (H, W) the position embedding is laid out for.
        patch_size: P, kernel and stride of the conv.
        padding: zero padding of the conv (2 for ViTPose: 256 x 192 -> 16 x 12).
        embed_dims: C.
    """

    def __init__(self, *, img_size: tuple[int, int], patch_size: int, padding: int, embed_dims: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, embed_dims, kernel_size=patch_size, stride=patch_size, padding=padding)
        self.init_out_size = tuple((size + 2 * padding - patch_size) // patch_size + 1 for size in img_size)
        if min(self.init_out_size) < 1:
            raise ValueError(f"img_size {tuple(img_size)} gives no patch of size {patch_size} (padding {padding})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x)


class MultiheadAttention(nn.Module):
    """Self-attention with a fused ``qkv`` projection (rows: q, k, v; each split into heads in order)
    and an output ``proj``; scale head_dims^-0.5. (N, L, C) -> (N, L, C)."""

    def __init__(self, *, embed_dims: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f"embed_dims {embed_dims} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, channels = x.shape
        # (N, L, 3C) -> (3, N, heads, L, head_dims)
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, channels // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(n, length, channels))


class FFN(nn.Module):
    """Linear -> GELU -> Linear; keys ``layers.0.0`` and ``layers.1`` as mmpretrain's FFN. (N, L, C) -> (N, L, C)."""

    def __init__(self, *, embed_dims: int, feedforward_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.GELU()),
            nn.Linear(feedforward_channels, embed_dims),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransformerEncoderLayer(nn.Module):
    """Pre-norm block: x + drop_path(attn(ln1(x))), then x + drop_path(ffn(ln2(x))). (N, L, C) -> (N, L, C)."""

    def __init__(
        self, *, embed_dims: int, num_heads: int, feedforward_channels: int, qkv_bias: bool, drop_path_rate: float
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dims, eps=LN_EPS)
        self.attn = MultiheadAttention(embed_dims=embed_dims, num_heads=num_heads, qkv_bias=qkv_bias)
        self.ln2 = nn.LayerNorm(embed_dims, eps=LN_EPS)
        self.ffn = FFN(embed_dims=embed_dims, feedforward_channels=feedforward_channels)
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.ln1(x)))
        return x + self.drop_path(self.ffn(self.ln2(x)))

    def init_weights(self) -> None:
        """mmpretrain's layer init: qkv / proj PyTorch's Linear default, FFN Linear weights Xavier-uniform
        with biases N(0, 1e-6), LayerNorms 1 / 0."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.LayerNorm)):
                module.reset_parameters()
        for module in self.ffn.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.normal_(module.bias, std=1e-6)


class VisionTransformer(nn.Module):
    """mmpretrain ``VisionTransformer`` with ``with_cls_token=False, out_type='featmap'`` (ViTPose's settings).

    Args:
        arch: "s", "b", "l" or "h" (see `ARCHS`), or None to give all four sizes below.
        embed_dims, num_layers, num_heads, feedforward_channels: override the arch's values (C, depth,
            heads, FFN width); tests use tiny ones.
        img_size: (H, W) the position embedding is laid out for; other input sizes are served by
            resizing it bicubically on the fly, as mmpretrain does.
        patch_size: P (16).
        patch_padding: padding of the patch conv (2 in ViTPose's ``patch_cfg``).
        qkv_bias: bias of the qkv projection (True).
        drop_path_rate: stochastic depth of the last layer; layer i of L gets rate * i / (L - 1)
            (mmpretrain's ``np.linspace(0, rate, L)``).
    """

    def __init__(
        self,
        *,
        arch: str | None = "b",
        embed_dims: int | None = None,
        num_layers: int | None = None,
        num_heads: int | None = None,
        feedforward_channels: int | None = None,
        img_size: tuple[int, int] = (256, 192),
        patch_size: int = 16,
        patch_padding: int = 2,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if arch is not None and arch not in ARCHS:
            raise ValueError(f"unknown ViT arch {arch!r}; choose one of {sorted(ARCHS)} or give the sizes explicitly")
        preset = ARCHS[arch] if arch is not None else (None, None, None, None)
        given = (embed_dims, num_layers, num_heads, feedforward_channels)
        sizes = [value if value is not None else default for value, default in zip(given, preset)]
        if any(size is None or size < 1 for size in sizes):
            raise ValueError(
                "VisionTransformer needs positive embed_dims, num_layers, num_heads and feedforward_channels "
                f"(from arch or given), got {sizes}"
            )
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        embed_dims, num_layers, num_heads, feedforward_channels = sizes
        self.embed_dims = embed_dims
        self.out_channels = embed_dims
        self.num_layers = num_layers
        self.img_size = tuple(img_size)
        self.patch_embed = PatchEmbed(
            img_size=self.img_size, patch_size=patch_size, padding=patch_padding, embed_dims=embed_dims
        )
        self.patch_resolution: tuple[int, int] = self.patch_embed.init_out_size
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dims))
        # np.linspace(0, rate, L) without numpy or tensors (works on the meta device)
        step = drop_path_rate / (num_layers - 1) if num_layers > 1 else 0.0
        rates = [step * i for i in range(num_layers - 1)] + [drop_path_rate if num_layers > 1 else 0.0]
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                embed_dims=embed_dims,
                num_heads=num_heads,
                feedforward_channels=feedforward_channels,
                qkv_bias=qkv_bias,
                drop_path_rate=rate,
            )
            for rate in rates
        )
        self.ln1 = nn.LayerNorm(embed_dims, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) -> feature map (N, C, h, w) after the final LayerNorm."""
        x = self.patch_embed(x)
        n, channels, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # (N, h w, C), row-major tokens
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, (h, w))
        for layer in self.layers:
            x = layer(x)
        x = self.ln1(x)
        return x.reshape(n, h, w, channels).permute(0, 3, 1, 2)

    def init_weights(self) -> None:
        """mmpretrain 1.x's init without a pretrained file (its ``init_cfg`` is None): patch conv PyTorch's
        Conv2d default, position embedding truncated normal (std 0.02, cut at +-2), layers as
        `TransformerEncoderLayer.init_weights`, final LayerNorm 1 / 0."""
        self.patch_embed.projection.reset_parameters()
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)
        for layer in self.layers:
            layer.init_weights()
        self.ln1.reset_parameters()

    def fit_pos_embed(self, pos_embed: torch.Tensor, *, cls_position: str = "drop") -> torch.Tensor:
        """A file's position embedding (1, L, C) made to fit this model's (1, h w, C).

        - L = h w: returned as is.
        - L = h w + 1 (a leading cls position, as official ViTPose files hold): the cls position is
          dropped (``cls_position="drop"``, mmpretrain's loading) or added to every token (``"add"``,
          what the official ViTPose forward does with it).
        - otherwise a square grid, with (L = s^2 + 1) or without (L = s^2) a leading cls position, e.g. a
          224 x 224 MAE file's 1 + 14 x 14: the grid is resized bicubically to h x w (mmpretrain's
          ``resize_pos_embed``) and the cls position handled as above.

        Anything else (or another C) is returned unchanged, for the caller's shape check to report.
        """
        if cls_position not in CLS_POSITION_MODES:
            raise ValueError(f"cls_position must be one of {CLS_POSITION_MODES}, got {cls_position!r}")
        h, w = self.patch_resolution
        if pos_embed.ndim != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[2] != self.embed_dims:
            return pos_embed
        length = pos_embed.shape[1]
        if length == h * w:
            return pos_embed
        if length == h * w + 1:
            grid, extra = (h, w), 1
        elif math.isqrt(length) ** 2 == length:
            grid, extra = (math.isqrt(length),) * 2, 0
        elif math.isqrt(length - 1) ** 2 == length - 1:
            grid, extra = (math.isqrt(length - 1),) * 2, 1
        else:
            return pos_embed
        tokens = resize_pos_embed(pos_embed[:, extra:], grid, (h, w))
        if extra and cls_position == "add":
            tokens = tokens + pos_embed[:, :1]
        what = f"cls position {'added to every token' if cls_position == 'add' else 'dropped'}" if extra else ""
        resized = f"{grid[0]}x{grid[1]} grid resized to {h}x{w}" if grid != (h, w) else ""
        log.info(
            "position embedding %s -> %s: %s",
            tuple(pos_embed.shape),
            tuple(tokens.shape),
            ", ".join(part for part in (what, resized) if part),
        )
        return tokens
