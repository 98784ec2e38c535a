"""RootNet's metrics as DDP-safe torchmetrics Metrics: MRPE (Human3.6M) and AP_root (MuPoTS-3D).

`RootMetric` collects each crop's predicted camera-frame root and reports, over the crops that
have a ground-truth root (a crop of an annotated person; detections read from a bbox_root file
have none), the mean root position error MRPE and its x, y, z parts in mm, overall and per action
(`src.metrics.root_error.mrpe`, as the official Human3.6M evaluation). `MuPoTSRootMetric` adds
MuPoTS-3D's AP_root at 25 cm over the whole validation set (`src.metrics.root_error.ap_root`,
with the official ranking quirks), whose ground truth is every valid person of the annotation
file, cropped or not, and makes it the headline.

Dimension letters: N crops, K joints of the model's layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat, rank_zero_warn

from src.layouts import KeypointInfo, root_index
from src.metrics.root_error import AP_ROOT_THRESHOLD_MM, ap_root, mrpe

__all__ = ["MRPE_KEYS", "MuPoTSRootMetric", "RootMetric"]

#: Overall keys of `RootMetric.compute`; with actions it adds "MRPE/<action>".
MRPE_KEYS = ("MRPE", "MRPE_x", "MRPE_y", "MRPE_z")

#: The torchmetrics options a root metric passes on (a reader's other metric inputs are not for it).
_METRIC_OPTIONS = ("process_group", "dist_sync_on_step", "sync_on_compute", "compute_on_cpu")

#: Columns of the one row state per crop.
_ID_COLUMNS = (("sample_id", 0.0), ("image_id", 0.0), ("action", -1.0), ("score", 1.0))
_COLUMNS = ("sample_id", "image_id", "action", "score", "pred_x", "pred_y", "pred_z", "gt_x", "gt_y", "gt_z")


class RootMetric(Metric):
    """MRPE (and its x, y, z parts) in mm over a validation epoch, overall and per action, DDP-safe.

    Args:
        keypoint_info: the model's layout (its pelvis is the root of the ground-truth joints).
        actions: action names (Human3.6M); ``batch["action"]`` indexes them (-1: none). None or
            empty: no per-action keys.
        **kwargs: passed to torchmetrics.Metric; other metric inputs of a reader are ignored.
    """

    monitor: ClassVar[str] = "MRPE"
    mode: ClassVar[str] = "min"
    submission_options: ClassVar[tuple[str, ...]] = ()

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, *, keypoint_info: KeypointInfo, actions: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**{k: v for k, v in kwargs.items() if k in _METRIC_OPTIONS})
        self.keypoint_info = keypoint_info
        self.root = root_index(keypoint_info)
        self.actions = tuple(str(a) for a in (actions or ()))
        # One row per crop, flattened into a 1-D tensor of the metric dtype (float32 unless set_dtype
        # changes it): under DDP a rank without crops contributes an empty tensor of that dtype, and
        # the gather needs one dtype everywhere. Ids are exact below 2**24; a root 10 m away is
        # stored to 1 micrometre.
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, predictions: Mapping[str, Any], batch: Mapping[str, Any]) -> None:
        """Add N crops.

        Args:
            predictions: {"root_cam": (N, 3) predicted camera-frame roots in mm}.
            batch: {"sample_id", "image_id": (N,) int, "joints_cam": (N, K, 3) ground truth in mm
                (all zeros for a crop without ground truth), optional "action" (N,) int and
                "score" (N,) float}.
        """
        pred = torch.as_tensor(predictions["root_cam"]).detach().double().cpu().reshape(-1, 3)
        n = pred.shape[0]
        gt = torch.as_tensor(batch["joints_cam"]).detach().double().cpu()
        if gt.ndim != 3 or gt.shape[0] != n or gt.shape[1] != self.keypoint_info.num_keypoints:
            raise ValueError(
                f"batch['joints_cam'] has shape {tuple(gt.shape)}; expected ({n}, "
                f"{self.keypoint_info.num_keypoints}, 3) for {n} predicted roots"
            )

        def column(key: str, default: float) -> torch.Tensor:
            if key not in batch:
                return torch.full((n,), default, dtype=torch.float64)
            values = torch.as_tensor(batch[key]).detach().double().cpu().reshape(-1)
            if values.numel() != n:
                raise ValueError(f"batch[{key!r}] has {values.numel()} entries for {n} predicted roots")
            return values

        rows = torch.cat(
            [
                torch.stack([column(key, default) for key, default in _ID_COLUMNS], dim=1),
                pred,
                gt[:, self.root],
            ],
            dim=1,
        )
        ids = rows[:, :3]
        if n and not torch.equal(ids.to(self.dtype).double(), ids):
            raise ValueError(f"ids up to {int(ids.max())} are not exact in the metric dtype {self.dtype}")
        self.rows.append(rows.to(device=self.device, dtype=self.dtype).reshape(-1))

    def _table(self) -> dict[str, np.ndarray] | None:
        """The gathered rows by column, one per sample id (DDP padding repeats some), or None."""
        if isinstance(self.rows, list) and not self.rows:
            return None
        data = dim_zero_cat(self.rows).cpu().numpy().astype(np.float64).reshape(-1, len(_COLUMNS))
        if not len(data):
            return None
        _, first = np.unique(np.rint(data[:, 0]).astype(np.int64), return_index=True)
        data = data[np.sort(first)]
        return {name: data[:, i] for i, name in enumerate(_COLUMNS)}

    def compute(self) -> dict[str, float]:
        """{"MRPE", "MRPE_x", "MRPE_y", "MRPE_z", "MRPE/<action>"} in mm over the crops with ground truth."""
        table = self._table()
        if table is None:
            rank_zero_warn(f"{type(self).__name__}.compute() without predictions; reporting zeros")
            return dict.fromkeys(MRPE_KEYS, 0.0)
        return self._mrpe(table)

    def _mrpe(self, table: dict[str, np.ndarray]) -> dict[str, float]:
        pred = np.stack([table["pred_x"], table["pred_y"], table["pred_z"]], axis=1)
        gt = np.stack([table["gt_x"], table["gt_y"], table["gt_z"]], axis=1)
        known = gt[:, 2] > 0  # a person in front of the camera; detections without ground truth are zeros
        if not known.any():
            return {}
        result = mrpe(pred[known], gt[known])
        actions = np.rint(table["action"]).astype(np.int64)
        for index, name in enumerate(self.actions):
            rows = known & (actions == index)
            if rows.any():
                result[f"MRPE/{name}"] = mrpe(pred[rows], gt[rows])["MRPE"]
        return result


class MuPoTSRootMetric(RootMetric):
    """`RootMetric` plus MuPoTS-3D's AP_root (headline "AP_root25", in percent as published).

    Args:
        keypoint_info: the model's layout.
        ground_truth_roots: {image_id: (G, 3) camera-frame roots (mm) of the image's valid people}
            for every evaluated image (a MuPoTS reader's ``metric_inputs``).
        threshold: the distance below which a root is right (official 250 mm).
        **kwargs: see `RootMetric`.
    """

    monitor: ClassVar[str] = "AP_root25"
    mode: ClassVar[str] = "max"
    higher_is_better = True

    def __init__(
        self,
        *,
        keypoint_info: KeypointInfo,
        ground_truth_roots: Mapping[int, np.ndarray],
        threshold: float = AP_ROOT_THRESHOLD_MM,
        **kwargs: Any,
    ) -> None:
        super().__init__(keypoint_info=keypoint_info, **kwargs)
        self.ground_truth_roots = {
            int(k): np.asarray(v, np.float64).reshape(-1, 3) for k, v in ground_truth_roots.items()
        }
        if not any(len(v) for v in self.ground_truth_roots.values()):
            raise ValueError("MuPoTSRootMetric needs annotated roots; ground_truth_roots holds none")
        self.threshold = float(threshold)

    def compute(self) -> dict[str, float]:
        """`RootMetric.compute` plus "AP_root25" (percent) over every image of the ground truth."""
        table = self._table()
        if table is None:
            rank_zero_warn(f"{type(self).__name__}.compute() without predictions; reporting zeros")
            return {self.monitor: 0.0, **dict.fromkeys(MRPE_KEYS, 0.0)}
        image_ids = np.rint(table["image_id"]).astype(np.int64)
        unknown = sorted(set(image_ids.tolist()) - set(self.ground_truth_roots))
        if unknown:
            raise ValueError(
                f"{len(unknown)} predicted image ids are not in the ground truth (first: {unknown[0]}); "
                "were the predictions made on another split?"
            )
        pred = np.stack([table["pred_x"], table["pred_y"], table["pred_z"]], axis=1)
        order = sorted(self.ground_truth_roots)
        per_image = {i: np.flatnonzero(image_ids == i) for i in order}
        ap = ap_root(
            [pred[per_image[i]] for i in order],
            [table["score"][per_image[i]] for i in order],
            [self.ground_truth_roots[i] for i in order],
            threshold=self.threshold,
        )
        return {self.monitor: 100.0 * ap, **self._mrpe(table)}
