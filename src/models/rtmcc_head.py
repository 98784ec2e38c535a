"""RTMPose's SimCC head (mmpose ``RTMCCHead``): a large-kernel conv to K maps, each flattened into
a token, a gated attention unit over the K tokens, and two linear classifiers giving per-keypoint
logits over the x and y bins (input width / height times the split ratio).

Parameter names follow mmpose (``final_layer``, ``mlp.0.g``, ``mlp.1``, ``gau.*``, ``cls_x``,
``cls_y``), so RTMPose checkpoints load with strict key and shape checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from src.models.drop_path import drop_path

#: rotary-embedding frequencies: mmpose's code raises 10000 to +i/half (frequencies grow with i);
#: RoFormer's paper uses 10000^(-i/half) (they shrink). Only used with ``pos_enc=True``.
ROPE_FREQUENCIES = ("mmpose", "roformer")
ACTIVATIONS = ("SiLU", "ReLU")


class ScaleNorm(nn.Module):
    """x / max(||x||_2 / sqrt(dim), eps) * g over the last axis, with one learnable scalar ``g`` (shape (1,)).

    Shapes: (..., dim) -> (..., dim).
    """

    def __init__(self, dim: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    """Elementwise learnable scale ``scale`` (dim,), initialised to 1. Shapes: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def rope(x: torch.Tensor, *, frequencies: str = "mmpose") -> torch.Tensor:
    """Rotary position embedding along axis 1 (tokens) of x (N, K, ..., D), D even: the halves
    (x1, x2) of the last axis are rotated by the angle position * f_i of their pair i."""
    num_tokens, half = x.shape[1], x.shape[-1] // 2
    exponent = torch.arange(half, dtype=torch.float32, device=x.device) / half
    inv_freq = 10000.0**exponent if frequencies == "mmpose" else 10000.0**-exponent
    position = torch.arange(num_tokens, dtype=torch.float32, device=x.device)
    angle = (position[:, None] * inv_freq).reshape(num_tokens, *([1] * (x.dim() - 3)), half)
    sin, cos = angle.sin().to(x.dtype), angle.cos().to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class RTMCCBlock(nn.Module):
    """Gated attention unit (Hua et al. 2022) over K tokens, self-attention form, as mmpose's RTMCCBlock.

    ``uv`` (no bias) maps ScaleNorm(x) to u (e), v (e) and a shared base (s) after the activation;
    q, k = base * gamma[i] + beta[i]; attention = relu(q k^T / sqrt(s))^2 (K x K);
    out = res_scale * x + drop_path(o(u * (attention @ v))).

    Args:
        num_tokens: K (only used by the relative position bias).
        in_dims: token width (``out_dims`` must equal it: the block is residual).
        out_dims: output token width.
        expansion_factor: e = in_dims * expansion_factor.
        s: width of q and k.
        eps: ScaleNorm's clamp.
        dropout_rate: dropout on the attention matrix.
        drop_path: stochastic-depth rate of the residual branch.
        act_fn: "SiLU" or "ReLU" after ``uv``.
        use_rel_bias: add a learnable bias w[j - i + K - 1] (w: (2K-1,)) to q k^T.
        pos_enc: rotary position embedding on q and k (``rope_frequencies`` picks mmpose's or
            RoFormer's frequencies).
        bias: biases in ``uv`` and ``o``.

    Shapes: (N, K, in_dims) -> (N, K, out_dims).
    """

    def __init__(
        self,
        *,
        num_tokens: int,
        in_dims: int,
        out_dims: int,
        expansion_factor: float = 2,
        s: int = 128,
        eps: float = 1e-5,
        dropout_rate: float = 0.0,
        drop_path: float = 0.0,
        act_fn: str = "SiLU",
        use_rel_bias: bool = False,
        pos_enc: bool = False,
        rope_frequencies: str = "mmpose",
        bias: bool = False,
    ) -> None:
        super().__init__()
        if in_dims != out_dims:
            raise ValueError(f"RTMCCBlock is residual: in_dims ({in_dims}) must equal out_dims ({out_dims})")
        if act_fn not in ACTIVATIONS:
            raise ValueError(f"act_fn must be one of {ACTIVATIONS}, got {act_fn!r}")
        if rope_frequencies not in ROPE_FREQUENCIES:
            raise ValueError(f"rope_frequencies must be one of {ROPE_FREQUENCIES}, got {rope_frequencies!r}")
        if pos_enc and s % 2:
            raise ValueError(f"pos_enc rotates pairs of q / k features: s must be even, got {s}")
        self.num_tokens = num_tokens
        self.s = s
        self.e = int(in_dims * expansion_factor)
        self.drop_path_rate = drop_path
        self.use_rel_bias = use_rel_bias
        self.pos_enc = pos_enc
        self.rope_frequencies = rope_frequencies
        if use_rel_bias:
            self.w = nn.Parameter(torch.rand(2 * num_tokens - 1))
        self.o = nn.Linear(self.e, out_dims, bias=bias)
        self.uv = nn.Linear(in_dims, 2 * self.e + s, bias=bias)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.ln = ScaleNorm(in_dims, eps=eps)
        nn.init.xavier_uniform_(self.uv.weight)  # as mmpose's constructor; the head's init_weights overwrites it
        self.act_fn = nn.SiLU(inplace=True) if act_fn == "SiLU" else nn.ReLU(inplace=True)
        self.res_scale = Scale(in_dims)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None

    def relative_bias(self, num_tokens: int) -> torch.Tensor:
        """(K, K) bias whose entry (i, j) is w[j - i + K - 1], K = num_tokens (at most the constructor's)."""
        index = torch.arange(num_tokens, device=self.w.device)
        return self.w[index[None, :] - index[:, None] + num_tokens - 1]

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch before drop path: x (N, K, in_dims) -> (N, K, out_dims)."""
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=-1)
        base = base.unsqueeze(2) * self.gamma + self.beta  # (N, K, 2, s)
        if self.pos_enc:
            base = rope(base, frequencies=self.rope_frequencies)
        q, k = base.unbind(dim=2)
        qk = torch.bmm(q, k.transpose(1, 2))  # (N, K, K)
        if self.use_rel_bias:
            qk = qk + self.relative_bias(q.shape[1])
        kernel = F.relu(qk / math.sqrt(self.s)).square()
        if self.dropout is not None:
            kernel = self.dropout(kernel)
        return self.o(u * torch.bmm(kernel, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, K, in_dims) -> (N, K, out_dims)."""
        return self.res_scale(x) + drop_path(self.attention(x), self.drop_path_rate, training=self.training)

    def reset_gates(self) -> None:
        """mmpose's draws for the parameters outside Linear layers: gamma, beta (and w) ~ U[0, 1)."""
        nn.init.uniform_(self.gamma, 0.0, 1.0)
        nn.init.uniform_(self.beta, 0.0, 1.0)
        if self.use_rel_bias:
            nn.init.uniform_(self.w, 0.0, 1.0)


class RTMCCHead(nn.Module):
    """RTMPose head: final_layer (k x k conv to K maps) -> flatten (N, K, h*w) -> mlp (ScaleNorm +
    Linear to hidden_dims) -> gau (RTMCCBlock) -> cls_x / cls_y (Linear, no bias).

    Args:
        in_channels: channels of the backbone's stride-32 map.
        num_joints: K.
        input_size: network input (w, h) in pixels.
        in_featuremap_size: (w, h) of the backbone's map; the flattened tokens have w*h features.
        simcc_split_ratio: bins per pixel; the logits have int(w * ratio) and int(h * ratio) bins.
        final_layer_kernel: kernel of the first conv (7 in RTMPose; mmpose's class default is 1).
        hidden_dims, s, expansion_factor: the gated attention unit (RTMCCBlock); RTMPose: 256, 128, 2.
        dropout_rate, drop_path, act_fn, use_rel_bias, pos_enc, rope_frequencies: its other settings;
            RTMPose: 0, 0, "SiLU", False, False, and rope unused.

    Shapes: features (N, in_channels, h, w) -> (x logits (N, K, W*ratio), y logits (N, K, H*ratio)).
    """

    #: the layers that output the logits (kept in fp32 under mixed precision)
    prediction_layers: ClassVar[tuple[str, ...]] = ("cls_x", "cls_y")

    def __init__(
        self,
        *,
        in_channels: int,
        num_joints: int,
        input_size: Sequence[int],
        in_featuremap_size: Sequence[int],
        simcc_split_ratio: float = 2.0,
        final_layer_kernel: int = 7,
        hidden_dims: int = 256,
        s: int = 128,
        expansion_factor: float = 2,
        dropout_rate: float = 0.0,
        drop_path: float = 0.0,
        act_fn: str = "SiLU",
        use_rel_bias: bool = False,
        pos_enc: bool = False,
        rope_frequencies: str = "mmpose",
    ) -> None:
        super().__init__()
        self.input_size = size_pair("input_size", input_size)
        self.in_featuremap_size = size_pair("in_featuremap_size", in_featuremap_size)
        if final_layer_kernel % 2 == 0:
            raise ValueError(f"final_layer_kernel must be odd (same-size conv), got {final_layer_kernel}")
        self.num_joints = num_joints
        self.simcc_split_ratio = float(simcc_split_ratio)
        flatten_dims = self.in_featuremap_size[0] * self.in_featuremap_size[1]
        self.final_layer = nn.Conv2d(
            in_channels, num_joints, final_layer_kernel, padding=final_layer_kernel // 2, bias=True
        )
        self.mlp = nn.Sequential(ScaleNorm(flatten_dims), nn.Linear(flatten_dims, hidden_dims, bias=False))
        self.gau = RTMCCBlock(
            num_tokens=num_joints,
            in_dims=hidden_dims,
            out_dims=hidden_dims,
            expansion_factor=expansion_factor,
            s=s,
            dropout_rate=dropout_rate,
            drop_path=drop_path,
            act_fn=act_fn,
            use_rel_bias=use_rel_bias,
            pos_enc=pos_enc,
            rope_frequencies=rope_frequencies,
        )
        self.cls_x = nn.Linear(hidden_dims, int(self.input_size[0] * self.simcc_split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden_dims, int(self.input_size[1] * self.simcc_split_ratio), bias=False)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (N, C, h, w) -> (x logits (N, K, Wx), y logits (N, K, Wy))."""
        check_featuremap(features, self.in_featuremap_size, self.input_size, type(self).__name__)
        tokens = self.gau(self.mlp(self.final_layer(features).flatten(2)))
        return self.cls_x(tokens), self.cls_y(tokens)

    def init_weights(self) -> None:
        """mmpose's RTMCCHead init: Conv2d N(0, 0.001), Linear N(0, 0.01) (this overwrites the xavier
        init of ``gau.uv``), biases 0; ScaleNorm g and the residual scale 1; gamma / beta ~ U[0, 1)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, ScaleNorm):
                nn.init.ones_(m.g)
            elif isinstance(m, Scale):
                nn.init.ones_(m.scale)
        self.gau.reset_gates()


def size_pair(name: str, value: Sequence[int]) -> tuple[int, int]:
    """A (w, h) pair of positive ints from a config value (list or tuple), or a ValueError naming it."""
    values = tuple(int(v) for v in value)
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"{name} must be two positive sizes (w, h), got {value!r}")
    return values  # type: ignore[return-value]


def check_featuremap(
    features: torch.Tensor, featuremap_size: tuple[int, int], input_size: tuple[int, int], owner: str
) -> None:
    """Refuse a feature map whose size differs from the one the flattening layers were built for
    (not while tracing for export, where the sizes are fixed by the example input)."""
    if torch.jit.is_tracing():
        return
    h, w = features.shape[-2:]
    if (w, h) != featuremap_size:
        raise ValueError(
            f"{owner} was built for {featuremap_size[0]}x{featuremap_size[1]} (w x h) feature maps "
            f"(input {input_size[0]}x{input_size[1]}), got {w}x{h}: images must be the model's input_size"
        )


def feature_size(size: int, *, num_halvings: int = 5) -> int:
    """Side of the stride-32 feature map for an input side: each stride-2 conv (k3, p1) rounds up."""
    for _ in range(num_halvings):
        size = (size + 1) // 2
    return size
