"""Human3.6M MPJPE and PA-MPJPE as DDP-safe torchmetrics Metrics (3DMPPE PoseNet evaluation).

Dimension letters: N samples (people), K joints of the model's layout, E evaluated joints.

`MPJPEMetric.compute`: gather -> drop DDP padding duplicates (first copy of each sample id) ->
root-relative prediction and ground truth -> MPJPE, and Procrustes alignment on all K joints ->
PA-MPJPE, both averaged over the E evaluated joints (the thorax the PoseNet model adds is aligned
on but not evaluated), overall and per action. `PAMPJPEMetric` is the same metric with PA-MPJPE
as its headline (Human3.6M protocol 1); `MPJPEMetric` heads with MPJPE (protocol 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat, rank_zero_warn

from src.layouts import KeypointInfo, get_keypoint_info
from src.layouts import root_index as layout_root_index
from src.metrics.mpjpe import joint_errors, rigid_align

__all__ = ["ALIGNMENTS", "MPJPE_KEYS", "MPJPEMetric", "PAMPJPEMetric"]

#: Overall keys of `MPJPEMetric.compute`; per action it adds "MPJPE/<action>" and "PA-MPJPE/<action>".
MPJPE_KEYS = ("MPJPE", "PA-MPJPE")

#: Procrustes alignment of PA-MPJPE -> whether it fits a scale (official PoseNet: "rigid").
ALIGNMENTS = {"rigid": False, "similarity": True}


class MPJPEMetric(Metric):
    """MPJPE and PA-MPJPE in millimetres over a validation epoch, overall and per action, DDP-safe.

    Each `update` appends N predicted poses with their sample ids, ground truth and action indices.
    The metric subtracts the root joint from prediction and ground truth itself, so predictions may
    be absolute or root-relative.

    Args:
        keypoint_info: the model's keypoint layout (K joints of the predictions and ground truth).
        actions: action names; ``batch["action"]`` holds indices into this sequence.
        eval_layout: registry name of the layout whose joints are evaluated; each of its keypoint
            names must be in ``keypoint_info`` (official: the 17 Human3.6M joints, "h36m17").
        root_index: index of the root joint in ``keypoint_info``; None: the layout's pelvis
            (`src.layouts.root_index`).
        alignment: "rigid" (rotation + translation, the official PA-MPJPE) or "similarity" (plus an
            isotropic scale).
        **kwargs: passed to torchmetrics.Metric (e.g. process_group, dist_sync_on_step).

    After `compute`, `last_per_joint` maps each evaluated joint name to its MPJPE.
    """

    monitor: ClassVar[str] = "MPJPE"
    mode: ClassVar[str] = "min"
    submission_options: ClassVar[tuple[str, ...]] = ()

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        *,
        keypoint_info: KeypointInfo,
        actions: Sequence[str],
        eval_layout: str = "h36m17",
        root_index: int | None = None,
        alignment: str = "rigid",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keypoint_info = keypoint_info
        self.actions = tuple(str(action) for action in actions)
        if not self.actions:
            raise ValueError(f"{type(self).__name__}: actions is empty; give the action names of the dataset")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"{type(self).__name__}: action names repeat: {list(self.actions)}")
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {sorted(ALIGNMENTS)}, got {alignment!r}")
        self.alignment = alignment
        k = keypoint_info.num_keypoints
        if root_index is None:
            root_index = layout_root_index(keypoint_info)
        if not 0 <= root_index < k:
            raise ValueError(f"root_index {root_index} out of range for layout {keypoint_info.name!r} with K={k}")
        self.root_index = int(root_index)
        self.eval_layout = eval_layout
        eval_names = get_keypoint_info(eval_layout).keypoint_names
        missing = [name for name in eval_names if name not in keypoint_info.keypoint_names]
        if missing:
            raise ValueError(
                f"evaluated layout {eval_layout!r} has joints {missing} that the model layout "
                f"{keypoint_info.name!r} lacks (it has {list(keypoint_info.keypoint_names)})"
            )
        self.eval_names = tuple(eval_names)
        self.eval_indices = tuple(keypoint_info.keypoint_names.index(name) for name in eval_names)
        # List states: under DDP "cat" gathers uneven per-rank sizes correctly.
        self.add_state("sample_ids", default=[], dist_reduce_fx="cat")
        self.add_state("action_ids", default=[], dist_reduce_fx="cat")
        self.add_state("pred_joints", default=[], dist_reduce_fx="cat")
        self.add_state("gt_joints", default=[], dist_reduce_fx="cat")
        self.last_per_joint: dict[str, float] = {}

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_info.num_keypoints

    def update(self, predictions: dict, batch: dict) -> None:
        """Add N predicted poses.

        Args:
            predictions: {"joints_cam": (N, K, 3) float predicted camera-frame joints in mm,
                absolute or root-relative}.
            batch: {"sample_id": (N,) int64 unique sample index, "joints_cam": (N, K, 3) float
                ground-truth camera-frame joints in mm, "action": (N,) int64 index into ``actions``}.
        """
        pred = self._joints(predictions["joints_cam"], "predictions['joints_cam']")
        gt = self._joints(batch["joints_cam"], "batch['joints_cam']")
        n = pred.shape[0]
        if gt.shape[0] != n:
            raise ValueError(f"batch['joints_cam'] has {gt.shape[0]} poses for {n} predicted poses")
        sample_ids = self._indices(batch["sample_id"], "batch['sample_id']", n)
        action_ids = self._indices(batch["action"], "batch['action']", n)
        bad = (action_ids < 0) | (action_ids >= len(self.actions))
        if bad.any():
            raise ValueError(
                f"batch['action'] holds {int(action_ids[bad][0])}, out of range for the "
                f"{len(self.actions)} actions {list(self.actions)}"
            )
        # Root-relative before the float32 cast, so absolute depths (~5 m) cost no precision.
        pred = pred - pred[:, self.root_index : self.root_index + 1]
        gt = gt - gt[:, self.root_index : self.root_index + 1]
        # Every state is a 1-D tensor of the metric dtype (float32 unless set_dtype changed it): under DDP,
        # torchmetrics gives a rank without samples an empty 1-D tensor of that dtype, and the gather needs
        # the same ndim and dtype on every rank. Ids and action indices are exact in float32 below 2**24.
        for name, values in (("sample ids", sample_ids), ("action indices", action_ids)):
            if n and not torch.equal(values.to(self.dtype).long(), values):
                raise ValueError(f"{name} up to {int(values.max())} are not exact in the metric dtype {self.dtype}")
        self.sample_ids.append(sample_ids.to(self.dtype))
        self.action_ids.append(action_ids.to(self.dtype))
        self.pred_joints.append(pred.to(self.dtype).reshape(-1))
        self.gt_joints.append(gt.to(self.dtype).reshape(-1))

    def _joints(self, value: Any, label: str) -> torch.Tensor:
        """(N, K, 3) tensor on the metric's device; ValueError naming the entry on a wrong shape."""
        joints = torch.as_tensor(value, device=self.device).detach()
        if joints.ndim != 3 or joints.shape[-1] != 3:
            raise ValueError(f"{label} must be (N, K, 3) camera-frame joints in mm, got shape {tuple(joints.shape)}")
        if joints.shape[1] != self.num_keypoints:
            raise ValueError(
                f"{label} has K={joints.shape[1]} joints but {type(self).__name__} was built for layout "
                f"{self.keypoint_info.name!r} with K={self.num_keypoints}"
            )
        if not joints.is_floating_point():
            joints = joints.to(self.dtype)
        return joints

    def _indices(self, value: Any, label: str, n: int) -> torch.Tensor:
        """(N,) int64 tensor on the metric's device; ValueError unless it has one entry per pose."""
        indices = torch.as_tensor(value, device=self.device).detach().reshape(-1)
        if indices.numel() != n:
            raise ValueError(f"{label} has {indices.numel()} entries for {n} predicted poses")
        if indices.is_floating_point() or indices.is_complex():
            raise ValueError(f"{label} must hold integers, got dtype {indices.dtype}")
        return indices.long()

    def compute(self) -> dict[str, float]:
        """{"MPJPE", "PA-MPJPE", "MPJPE/<action>", "PA-MPJPE/<action>"} in mm for the actions present
        (all zeros, with a warning, when nothing was added)."""
        data = self._gathered_arrays()
        if data is None:
            self.last_per_joint = {}
            rank_zero_warn(f"{type(self).__name__}.compute() without predictions; reporting zeros")
            return dict.fromkeys(MPJPE_KEYS, 0.0)
        sample_ids, action_ids, pred, gt = data
        _, first = np.unique(sample_ids, return_index=True)  # DDP padding repeats samples: keep the first copy
        action_ids, pred, gt = action_ids[first], pred[first], gt[first]
        eval_indices = list(self.eval_indices)
        errors = joint_errors(pred, gt)[:, eval_indices]  # (N, E)
        aligned = rigid_align(pred, gt, scale=ALIGNMENTS[self.alignment])  # official: aligned on all K joints
        pa_errors = joint_errors(aligned, gt)[:, eval_indices]
        self.last_per_joint = {name: float(v) for name, v in zip(self.eval_names, errors.mean(axis=0))}
        result = {"MPJPE": float(errors.mean()), "PA-MPJPE": float(pa_errors.mean())}
        for index, action in enumerate(self.actions):
            rows = action_ids == index
            if rows.any():
                result[f"MPJPE/{action}"] = float(errors[rows].mean())
                result[f"PA-MPJPE/{action}"] = float(pa_errors[rows].mean())
        return result

    def _gathered_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(sample ids (N,) int64, action indices (N,) int64, pred (N, K, 3), gt (N, K, 3) float64), or None
        when there are no rows."""
        if isinstance(self.sample_ids, list) and len(self.sample_ids) == 0:
            return None
        sample_ids = np.rint(dim_zero_cat(self.sample_ids).cpu().numpy()).astype(np.int64)
        if len(sample_ids) == 0:
            return None
        action_ids = np.rint(dim_zero_cat(self.action_ids).cpu().numpy()).astype(np.int64)
        shape = (len(sample_ids), self.num_keypoints, 3)
        pred = dim_zero_cat(self.pred_joints).cpu().numpy().astype(np.float64).reshape(shape)
        gt = dim_zero_cat(self.gt_joints).cpu().numpy().astype(np.float64).reshape(shape)
        return sample_ids, action_ids, pred, gt


class PAMPJPEMetric(MPJPEMetric):
    """`MPJPEMetric` whose headline is PA-MPJPE (Human3.6M protocol 1); the same keys are computed."""

    monitor: ClassVar[str] = "PA-MPJPE"
