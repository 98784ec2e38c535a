"""MuPoTS-3D's 3DPCK and AUC as a DDP-safe torchmetrics Metric (the official evaluation's rules).

Each crop's prediction (camera-frame joints in mm and image joints in pixels) is collected with
its image id; `compute` groups the predictions by image, reads every annotated person of the
ground truth file (`src.readers.mupots_ground_truth`), and scores each sequence with the rules of
the MATLAB kit (`src.metrics.mupots_pck`: greedy 2D matching in ground-truth order, bone lengths
mapped to the ground truth, 14 scored joints, 150 mm, AUC over 0:5:150 mm), then averages over
the sequences. Keys (percent): ``3DPCK_rel`` (all annotated people, root-relative; the headline),
``3DPCK_rel_matched`` (matched people only), ``3DPCK_abs`` (absolute, as the predictions' roots
place them), ``AUC_rel``, and per sequence ``3DPCK_rel/TS<k>``, ``3DPCK_abs/TS<k>``.

The model's joints are mapped to the 17 of MuPoTS-3D by name (a 21-joint MuCo model keeps its
first 17, as 3DMPPE's ``eval_joint``). Every annotated frame of the file is scored, as the kit
requires a prediction entry for each: a frame without predicted people counts its people as
missed.

Dimension letters: N crops, K joints of the model's layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat, rank_zero_warn

from src.layouts import MUPOTS17, KeypointInfo, joint_mapping
from src.metrics.mupots_pck import mupots_scores
from src.readers.mupots_ground_truth import read_mupots_ground_truth

__all__ = ["MUPOTS_KEYS", "MuPoTSMetric"]

#: Overall keys of `MuPoTSMetric.compute`.
MUPOTS_KEYS = ("3DPCK_rel", "3DPCK_rel_matched", "3DPCK_abs", "AUC_rel")

#: The torchmetrics options the metric passes on (a reader's other metric inputs are not for it).
_METRIC_OPTIONS = ("process_group", "dist_sync_on_step", "sync_on_compute", "compute_on_cpu")


class MuPoTSMetric(Metric):
    """3DPCK_rel (headline), 3DPCK_rel_matched, 3DPCK_abs and AUC_rel over a validation epoch.

    Args:
        keypoint_info: the model's layout; it must hold the 17 MuPoTS-3D joints (by name).
        gt_file: the ``MuPoTS-3D.json`` the crops come from (a MuPoTS reader's ``metric_inputs``).
        **kwargs: torchmetrics options; the reader's other metric inputs are ignored.
    """

    monitor: ClassVar[str] = "3DPCK_rel"
    mode: ClassVar[str] = "max"
    submission_options: ClassVar[tuple[str, ...]] = ()

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, *, keypoint_info: KeypointInfo, gt_file: str | Path, **kwargs: Any) -> None:
        super().__init__(**{k: v for k, v in kwargs.items() if k in _METRIC_OPTIONS})
        self.keypoint_info = keypoint_info
        index = joint_mapping(keypoint_info, MUPOTS17)
        missing = [name for name, i in zip(MUPOTS17.keypoint_names, index) if i < 0]
        if missing:
            raise ValueError(
                f"MuPoTS-3D scores the joints {missing}, which the model's layout {keypoint_info.name!r} lacks"
            )
        self.joint_index = list(index)
        self.ground_truth = read_mupots_ground_truth(gt_file)
        k = keypoint_info.num_keypoints
        self._width = 2 + 5 * k  # sample id, image id, K x (x, y, z), K x (u, v)
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, predictions: Mapping[str, Any], batch: Mapping[str, Any]) -> None:
        """Add N crops.

        Args:
            predictions: {"joints_cam": (N, K, 3) camera-frame joints in mm (absolute: at the crop's
                root depth), "keypoints_2d": (N, K, 2) image joints in pixels}.
            batch: {"sample_id": (N,) int, "image_id": (N,) int}.
        """
        cam = torch.as_tensor(predictions["joints_cam"]).detach().double().cpu()
        img = torch.as_tensor(predictions["keypoints_2d"]).detach().double().cpu()
        k = self.keypoint_info.num_keypoints
        n = cam.shape[0]
        if cam.shape != (n, k, 3) or img.shape != (n, k, 2):
            raise ValueError(
                f"predictions hold joints_cam {tuple(cam.shape)} and keypoints_2d {tuple(img.shape)}; expected "
                f"({n}, {k}, 3) and ({n}, {k}, 2) for layout {self.keypoint_info.name!r}"
            )
        ids = [torch.as_tensor(batch[key]).detach().double().cpu().reshape(-1) for key in ("sample_id", "image_id")]
        if any(v.numel() != n for v in ids):
            raise ValueError(f"batch['sample_id'] / batch['image_id'] must list the {n} crops")
        rows = torch.cat([torch.stack(ids, dim=1), cam.reshape(n, -1), img.reshape(n, -1)], dim=1)
        if n and not torch.equal(rows[:, :2].to(self.dtype).double(), rows[:, :2]):
            raise ValueError(f"ids up to {int(rows[:, :2].max())} are not exact in the metric dtype {self.dtype}")
        self.rows.append(rows.to(device=self.device, dtype=self.dtype).reshape(-1))

    def _predictions_by_image(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{image id: ((P, 17, 3) mm, (P, 17, 2) px)} of the gathered crops (DDP repeats dropped)."""
        if isinstance(self.rows, list) and not self.rows:
            return {}
        data = dim_zero_cat(self.rows).cpu().numpy().astype(np.float64).reshape(-1, self._width)
        _, first = np.unique(np.rint(data[:, 0]).astype(np.int64), return_index=True)
        data = data[np.sort(first)]
        k = self.keypoint_info.num_keypoints
        cam = data[:, 2 : 2 + 3 * k].reshape(-1, k, 3)[:, self.joint_index]
        img = data[:, 2 + 3 * k :].reshape(-1, k, 2)[:, self.joint_index]
        image_ids = np.rint(data[:, 1]).astype(np.int64)
        unknown = sorted(set(image_ids.tolist()) - set(self.ground_truth.image_ids()))
        if unknown:
            raise ValueError(
                f"{len(unknown)} predicted image ids are not in {self.ground_truth.path} (first: {unknown[0]}); "
                "were the predictions made on another file?"
            )
        return {int(i): (cam[image_ids == i], img[image_ids == i]) for i in np.unique(image_ids)}

    def compute(self) -> dict[str, float]:
        """The keys of the module docstring, in percent (zeros, with a warning, without predictions)."""
        predicted = self._predictions_by_image()
        if not predicted:
            rank_zero_warn(f"{type(self).__name__}.compute() without predictions; reporting zeros")
            return dict.fromkeys(MUPOTS_KEYS, 0.0)
        sequences: dict[str, list[dict[str, np.ndarray]]] = {}
        empty = (np.zeros((0, 17, 3)), np.zeros((0, 17, 2)))
        for image_id in self.ground_truth.image_ids():
            image = self.ground_truth.image(image_id)
            if not image.num_people:
                continue
            pred_3d, pred_2d = predicted.get(image_id, empty)
            sequences.setdefault(f"TS{image.sequence}", []).append(
                {"gt_3d": image.joints_cam, "gt_2d": image.joints_img, "pred_3d": pred_3d, "pred_2d": pred_2d}
            )
        ordered = dict(sorted(sequences.items(), key=lambda item: int(item[0][2:])))
        rel = mupots_scores(ordered, relative=True)
        rel_matched = mupots_scores(ordered, relative=True, matched_only=True)
        absolute = mupots_scores(ordered, relative=False)
        result = {
            "3DPCK_rel": rel["PCK"],
            "3DPCK_rel_matched": rel_matched["PCK"],
            "3DPCK_abs": absolute["PCK"],
            "AUC_rel": rel["AUC"],
        }
        for name, values in rel["per_sequence"].items():
            result[f"3DPCK_rel/{name}"] = values["PCK"]
        for name, values in absolute["per_sequence"].items():
            result[f"3DPCK_abs/{name}"] = values["PCK"]
        return result
