"""MPII PCKh as a DDP-safe torchmetrics Metric (official HRNet lib/dataset/mpii.py `evaluate`).

Dimension letters: N people (samples), K keypoints.

`PCKhMetric.compute`: gather -> drop DDP padding duplicates (first copy of each sample id) ->
0-based predictions + 1 -> `mpii_pckh` against the rows of gt_valid.mat that were predicted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat, rank_zero_warn

from src.layouts import KeypointInfo
from src.metrics.pck import MPII_PCKH_GROUPS, mpii_pckh, mpii_pckh_per_joint
from src.readers.mpii_ground_truth import MPIIGroundTruth, read_mpii_ground_truth

__all__ = ["PCKH_KEYS", "PCKhMetric"]

#: Keys returned by `PCKhMetric.compute` (and `mpii_pckh`), in the order of the official table.
PCKH_KEYS = ("PCKh", "PCKh@0.1", *(f"PCKh/{group}" for group in MPII_PCKH_GROUPS))


class PCKhMetric(Metric):
    """MPII PCKh over a validation epoch, DDP-safe.

    Each `update` appends N predicted people with their sample ids (the index of the sample in
    valid.json, which is its column in gt_valid.mat). Prediction channel j is scored against
    ground-truth joint j: the MPII-16 layout has the channel order of gt_valid.mat.

    Args:
        gt_file: official ``gt_valid.mat`` (read on the first `compute`, then cached); its joint
            names may use any known spelling, e.g. the MPII tools' "thrx" for the thorax.
        keypoint_info: the model's keypoint layout (``get_keypoint_info("mpii16")``); its keypoint
            count must match the predictions and the file.
        threshold: PCKh threshold of "PCKh" and the group values (official 0.5).
        low_threshold: threshold of "PCKh@0.1".
        official_low_column: report the official "Mean@0.1" column as "PCKh@0.1", which is really
            threshold 0.11 (see `mpii_pckh`).
        **kwargs: passed to torchmetrics.Metric (e.g. process_group, dist_sync_on_step).

    After `compute`, `last_per_joint` maps each gt joint name, spelled as in the HRNet gt_valid.mat
    (pelvis and thorax included), to its PCKh at `threshold` (NaN for a joint with no annotated
    entry among the predicted samples).
    """

    monitor: ClassVar[str] = "PCKh"
    mode: ClassVar[str] = "max"
    submission_options: ClassVar[tuple[str, ...]] = ()

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        *,
        gt_file: str | Path,
        keypoint_info: KeypointInfo,
        threshold: float = 0.5,
        low_threshold: float = 0.1,
        official_low_column: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gt_file = str(gt_file)
        self.keypoint_info = keypoint_info
        self.threshold = float(threshold)
        self.low_threshold = float(low_threshold)
        self.official_low_column = bool(official_low_column)
        # List states: under DDP "cat" gathers uneven per-rank sizes correctly.
        self.add_state("sample_ids", default=[], dist_reduce_fx="cat")
        self.add_state("keypoints", default=[], dist_reduce_fx="cat")
        self._gt: MPIIGroundTruth | None = None  # cache, not a metric state
        self._warned_partial = False
        self.last_per_joint: dict[str, float] = {}

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_info.num_keypoints

    def update(self, predictions: dict, batch: dict) -> None:
        """Add N predicted people.

        Args:
            predictions: {"keypoints": (N, K, 2 or 3) float, 0-based image pixels; a third
                column (score) is ignored}.
            batch: {"sample_id": (N,) int64 index of each sample in valid.json}.
        """
        keypoints = torch.as_tensor(predictions["keypoints"], device=self.device).detach()
        if keypoints.ndim != 3 or keypoints.shape[-1] not in (2, 3):
            raise ValueError(f"predictions['keypoints'] must be (N, K, 2 or 3), got shape {tuple(keypoints.shape)}")
        n, k = keypoints.shape[:2]
        if k != self.num_keypoints:
            raise ValueError(
                f"predictions have K={k} keypoints but PCKhMetric was built for layout "
                f"{self.keypoint_info.name!r} with K={self.num_keypoints} (MPII ground truth {self.gt_file})"
            )
        sample_ids = torch.as_tensor(batch["sample_id"], device=self.device).detach().reshape(-1)
        if sample_ids.numel() != n:
            raise ValueError(f"batch['sample_id'] has {sample_ids.numel()} entries for {n} predicted people")
        # Both states are 1-D tensors of the metric dtype (float32 unless set_dtype changed it): under DDP,
        # torchmetrics gives a rank without samples an empty 1-D tensor of that dtype, and the gather
        # needs the same ndim and dtype on every rank. Sample ids are exact in float32 below 2**24.
        ids = sample_ids.to(self.dtype)
        if not torch.equal(ids.long(), sample_ids.long()):
            raise ValueError(f"sample ids up to {int(sample_ids.max())} are not exact in the metric dtype {self.dtype}")
        self.sample_ids.append(ids)
        self.keypoints.append(keypoints[..., :2].to(self.dtype).reshape(-1))

    def compute(self) -> dict[str, float]:
        """`mpii_pckh` of the predicted samples (all zeros, with a warning, when nothing was added)."""
        data = self._gathered_arrays()
        if data is None:
            self.last_per_joint = {}
            rank_zero_warn("PCKhMetric.compute() without predictions; reporting zeros")
            return dict.fromkeys(PCKH_KEYS, 0.0)
        sample_ids, keypoints = data
        gt = self._get_gt()
        _, first = np.unique(sample_ids, return_index=True)  # DDP padding repeats samples: keep the first copy
        sample_ids, keypoints = sample_ids[first], keypoints[first]
        bad = (sample_ids < 0) | (sample_ids >= len(gt))
        if bad.any():
            raise ValueError(
                f"sample id {int(sample_ids[bad][0])} out of range for the {len(gt)} people in {self.gt_file}; "
                "sample ids must index valid.json, whose order gt_valid.mat follows"
            )
        if len(sample_ids) < len(gt) and not self._warned_partial:
            self._warned_partial = True
            rank_zero_warn(
                f"PCKhMetric evaluates {len(sample_ids)} of the {len(gt)} people in {self.gt_file} "
                "(a partial validation, e.g. limit_val_batches)"
            )
        pred = keypoints + 1.0  # official: 0-based predictions -> 1-based MATLAB pixels of gt_valid.mat
        positions, missing, headboxes = gt.positions[sample_ids], gt.missing[sample_ids], gt.headboxes[sample_ids]
        per_joint, _ = mpii_pckh_per_joint(pred, positions, missing, headboxes, threshold=self.threshold)
        self.last_per_joint = {name: float(v) for name, v in zip(gt.joint_names, per_joint)}
        return mpii_pckh(
            pred,
            positions,
            missing,
            headboxes,
            joint_names=gt.joint_names,
            threshold=self.threshold,
            low_threshold=self.low_threshold,
            official_low_column=self.official_low_column,
        )

    def _gathered_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sample ids (N,) int64, keypoints (N, K, 2)) as numpy arrays, or None when there are no rows."""
        if isinstance(self.sample_ids, list) and len(self.sample_ids) == 0:
            return None
        sample_ids = np.rint(dim_zero_cat(self.sample_ids).cpu().numpy()).astype(np.int64)
        if len(sample_ids) == 0:
            return None
        keypoints = dim_zero_cat(self.keypoints).cpu().numpy()  # flat (N * K * 2,)
        return sample_ids, keypoints.reshape(len(sample_ids), -1, 2)

    def _get_gt(self) -> MPIIGroundTruth:
        """Read gt_valid.mat once; ValueError when its joint count differs from the model's layout."""
        if self._gt is None:
            gt = read_mpii_ground_truth(self.gt_file)
            k_gt = len(gt.joint_names)
            if k_gt != self.num_keypoints:
                raise ValueError(
                    f"keypoint layout {self.keypoint_info.name!r} has K={self.num_keypoints} keypoints but the "
                    f"MPII ground truth {self.gt_file} has K={k_gt} joints ({', '.join(gt.joint_names)}); "
                    "evaluate an MPII-16 model (keypoint_info mpii16) with PCKh"
                )
            self._gt = gt
        return self._gt
