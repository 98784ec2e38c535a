"""ViTPose (Xu et al., NeurIPS 2022) as mmpose 1.x builds it: mmpretrain's plain ViT backbone and a
``HeatmapHead``, with the classic decoder (two 4x4 stride-2 deconvolutions) or the simple one
(ReLU, bilinear x4, 3x3 conv).

State-dict keys are mmpose's (``backbone.*`` as `src.models.vit.VisionTransformer`, ``head.deconv_layers.*``,
``head.final_layer.*``), so mmpose checkpoints load with strict key and shape checks
(`src.models.weights.load_official_weights`), and MAE-pretrained backbone files (MAE / timm names or
mmpretrain names, any square grid, with or without a cls position) initialise the backbone
(`ViTPose.init_weights`).

The cls position. Published ViTPose files may hold a position embedding of 1 + h w entries: the
official ViTPose forward adds the first (cls) entry to every token, while mmpretrain, which
mmpose 1.x uses, drops it when loading. ``cls_position="drop"`` (default) follows mmpose;
``cls_position="add"`` folds it into every token as the official code does (the two differ by
that constant vector per token).
"""

from __future__ import annotations

import logging
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from src.models.initialisations import MAE_VIT
from src.models.pretrained import PretrainedReport, load_backbone_weights
from src.models.resnet import DeconvHead
from src.models.vit import ARCHS, CLS_POSITION_MODES, VisionTransformer, timm_to_mmpretrain

log = logging.getLogger(__name__)

HEAD_TYPES = ("classic", "simple")
#: drop_path_rate of mmpose's ViTPose-{S,B,L,H} COCO configs, used when none is given
RECIPE_DROP_PATH: dict[str, float] = {"s": 0.1, "b": 0.3, "l": 0.5, "h": 0.55}


class FeatureMapUpsample(nn.Module):
    """The simple decoder's neck (mmpose ``FeatureMapProcessor(scale_factor=4, apply_relu=True)``): ReLU, then
    bilinear upsampling (align_corners=False). (N, C, h, w) -> (N, C, h s, w s); no parameters."""

    def __init__(self, *, scale_factor: float = 4.0) -> None:
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(F.relu(x), scale_factor=self.scale_factor, mode="bilinear", align_corners=False)


class ViTPose(nn.Module):
    """ViT backbone -> (simple: ReLU + bilinear x4) -> heatmap head; heatmaps at stride 4.

    Args:
        arch: "s", "b", "l" or "h" (sizes in `src.models.vit.ARCHS`), or None with all sizes given.
        embed_dims, num_layers, num_heads, feedforward_channels: override the arch's sizes.
        num_joints: K heatmaps (17 for COCO).
        img_size: (H, W) of the input crops (256, 192).
        drop_path_rate: stochastic depth of the last layer (linear from 0 at the first); None takes the
            mmpose recipe's value for the arch (S 0.1, B 0.3, L 0.5, H 0.55; 0 without an arch).
        head: "classic" (2 deconvs k4 s2 + BN + ReLU, 1x1 final conv) or "simple" (ReLU, bilinear x4,
            3x3 final conv).
        deconv_channels: width of the classic head's deconvs (256).
        cls_position: what a file's leading cls position becomes, "drop" (mmpose / mmpretrain) or "add"
            (official ViTPose: added to every token); see the module docstring.

    Input (N, 3, H, W) -> heatmaps (N, K, H/4, W/4): (N, 17, 64, 48) for 256 x 192.
    """

    #: the layer that outputs the heatmaps (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("head.final_layer",)

    def __init__(
        self,
        *,
        arch: str | None = "b",
        embed_dims: int | None = None,
        num_layers: int | None = None,
        num_heads: int | None = None,
        feedforward_channels: int | None = None,
        num_joints: int = 17,
        img_size: tuple[int, int] = (256, 192),
        drop_path_rate: float | None = None,
        head: str = "classic",
        deconv_channels: int = 256,
        cls_position: str = "drop",
    ) -> None:
        super().__init__()
        if head not in HEAD_TYPES:
            raise ValueError(f"ViTPose head must be one of {HEAD_TYPES}, got {head!r}")
        if cls_position not in CLS_POSITION_MODES:
            raise ValueError(f"cls_position must be one of {CLS_POSITION_MODES}, got {cls_position!r}")
        if num_joints < 1:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        if drop_path_rate is None:
            drop_path_rate = RECIPE_DROP_PATH.get(arch, 0.0) if arch in ARCHS else 0.0
        self.num_joints = num_joints
        self.head_type = head
        self.cls_position = cls_position
        self.backbone = VisionTransformer(
            arch=arch,
            embed_dims=embed_dims,
            num_layers=num_layers,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            img_size=tuple(img_size),
            patch_size=16,
            patch_padding=2,
            qkv_bias=True,
            drop_path_rate=drop_path_rate,
        )
        channels = self.backbone.out_channels
        if head == "classic":
            self.neck: nn.Module = nn.Identity()
            self.head = DeconvHead(
                in_channels=channels, out_channels=num_joints, num_deconv_layers=2, deconv_channels=deconv_channels
            )
        else:
            self.neck = FeatureMapUpsample(scale_factor=4.0)
            self.head = DeconvHead(
                in_channels=channels, out_channels=num_joints, num_deconv_layers=0, final_conv_kernel=3
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) -> heatmaps (N, K, H/4, W/4) (H, W giving a whole number of patches)."""
        return self.head(self.neck(self.backbone(x)))

    @property
    def default_pretrained(self) -> str | None:
        """The registry name (or URL) of the file the official recipe initialises the backbone from."""
        return MAE_VIT.get(self.backbone.embed_dims)

    def init_weights(self, pretrained: str | None = None, *, partial: bool = False) -> PretrainedReport | None:
        """mmpose's init, then the backbone from ``pretrained`` when given.

        Head as mmpose's HeatmapHead (deconvs and final conv N(0, 0.001), biases 0, BN 1 / 0); backbone as
        mmpretrain's VisionTransformer without a file (`VisionTransformer.init_weights`: patch conv, qkv and proj
        PyTorch's defaults, pos_embed truncated normal std 0.02, FFN Xavier-uniform with N(0, 1e-6) biases,
        LayerNorm 1 / 0).

        ``pretrained``: a local backbone file (MAE ``mae_pretrain_vit_*.pth`` with MAE / timm names such as
        ``blocks.0.norm1.weight`` under ``model``, an mmpretrain-named file bare or under ``backbone.``, or an
        mmpose / official ViTPose pose checkpoint, whose ``backbone.*`` tensors are used). Names are mapped by
        `src.models.vit.timm_to_mmpretrain`; the position embedding is fitted by
        `VisionTransformer.fit_pos_embed` (cls position dropped or added per ``cls_position``, grid resized
        bicubically, e.g. 14x14 at 224 -> 16x12). Unused tensors (``cls_token``, a decoder) are listed.

        Raises:
            FileNotFoundError: no such file.
            ValueError: nothing fits, or (unless ``partial``) some backbone tensors are missing from the file
                or have other shapes; the message lists them.
        """
        self.backbone.init_weights()
        self.head.init_weights()
        if pretrained is None:
            return None
        return load_backbone_weights(
            self.backbone,
            pretrained,
            prefixes=("backbone.", ""),
            rename=timm_to_mmpretrain,
            adapt=self._fit_backbone_file,
            partial=partial,
        )

    def _fit_backbone_file(
        self, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        if "pos_embed" in state:
            state = {
                **state,
                "pos_embed": self.backbone.fit_pos_embed(state["pos_embed"], cls_position=self.cls_position),
            }
        return state

    def adapt_official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """An mmpose checkpoint's tensors fitted before the strict key and shape check (called by
        `load_official_weights`).

        ``backbone.pos_embed`` holding exactly one position more than the model (a leading cls position) loses it
        (``cls_position="drop"``, mmpretrain's loading) or has it added to every token (``"add"``, the official
        ViTPose forward); ``backbone.cls_token``, which neither uses, is dropped. Other lengths are left alone, so
        another grid or width is refused by the shape check.
        """
        state = dict(state)
        key = "backbone.pos_embed"
        pos_embed = state.get(key)
        if pos_embed is not None and pos_embed.ndim == 3 and pos_embed.shape[1] == self.backbone.pos_embed.shape[1] + 1:
            tokens = pos_embed[:, 1:]
            if self.cls_position == "add":
                tokens = tokens + pos_embed[:, :1]
            state[key] = tokens
            log.info("%s: cls position %s", key, "added to every token" if self.cls_position == "add" else "dropped")
        if state.pop("backbone.cls_token", None) is not None:
            log.info("backbone.cls_token dropped (ViTPose has no cls token)")
        return state
