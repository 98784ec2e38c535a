"""The contract of the 3D crop codecs (3DMPPE PoseNet's `Integral3D`, RootNet's `RootDepth`).

The 3D paradigm has one task (`src.tasks.pose3d.Pose3DModule`) and one dataset
(`src.datasets.pose3d.Pose3DDataset`); what a model predicts lives in its codec, which owns:

* the targets of a crop (`encode_crop`, keys ``target_keys``), always holding ``coords`` (J, 3),
  ``coord_weight`` (J,) and ``have_depth`` () for the 3DMPPE L1 loss (`src.losses.IntegralL1Loss`),
  plus whatever the network reads besides the image (`network_inputs`: RootNet's k-value);
* decoding the network's outputs to coordinates (`decode`, (N, J, 3)), and their flip-back for the
  flip test (`flip_back`);
* the way back to the image (`to_image`) and to the camera (`to_camera`), and what a metric
  receives (`predictions`): root-relative joints (PoseNet) or absolute roots (RootNet);
* a baseline without a network (`baseline`: the mean pose, the k-value).

Beyond the top-down contract (`src.codecs.base`), a 3D codec adds the camera (intrinsics and a root
depth per crop) and extra network inputs; it has no rescoring or heatmap pictures. J is the number
of predicted points per crop: K joints, or 1 root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from src.geometry import CropSample

__all__ = ["Crop3DCodec", "CropSample", "as_float64"]


def as_float64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


class Crop3DCodec:
    """Base of the 3D crop codecs; subclasses implement the methods that raise below."""

    #: Keys `encode_crop` adds to an item.
    target_keys: ClassVar[tuple[str, ...]] = ("coords", "coord_weight", "have_depth")
    #: Keys of a batch the network reads after the image (`network_inputs`).
    input_keys: ClassVar[tuple[str, ...]] = ()
    #: The prediction key of the metric this codec feeds ("joints_cam" or "root_cam").
    prediction_key: ClassVar[str] = ""
    #: Which of the data config's metrics that is: ``metric`` (the pose metric) or ``root_metric``.
    metric_key: ClassVar[str] = "metric"

    input_size: tuple[int, int]
    output_size: tuple[int, int]

    def encode_crop(self, sample: CropSample) -> dict[str, np.ndarray]:
        """The targets of one crop (``target_keys``), as numpy arrays."""
        raise NotImplementedError

    def network_inputs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        """What the network reads besides the images, from a batch (``input_keys``, in order)."""
        return tuple(batch[key] for key in self.input_keys)

    def check_network(self, net: Any) -> None:
        """Refuse a network whose outputs this codec cannot read (called when the task is built)."""

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Network outputs -> coordinates (N, J, 3) [x, y output pixels, depth]."""
        raise NotImplementedError

    def flip_back(self, coords: torch.Tensor, flip_index: Sequence[int]) -> torch.Tensor:
        """Coordinates predicted on mirrored crops -> those of the original crops."""
        raise NotImplementedError

    def to_image(self, coords: np.ndarray | torch.Tensor, bbox: np.ndarray) -> np.ndarray:
        """Coordinates (N, J, >=2) -> image pixels (N, J, 2) float64: ``x / W_out * bbox_w + bbox_x``
        (no half-pixel term, as 3DMPPE)."""
        coords = as_float64(coords)
        bbox = np.asarray(bbox, dtype=np.float64).reshape(-1, 4)
        size = np.asarray(self.output_size, dtype=np.float64)
        return coords[..., :2] / size * bbox[:, None, 2:4] + bbox[:, None, 0:2]

    def to_camera(
        self,
        coords: np.ndarray | torch.Tensor,
        bbox: np.ndarray,
        root_depth: np.ndarray,
        f: np.ndarray,
        c: np.ndarray,
    ) -> np.ndarray:
        """Coordinates (N, J, 3) -> camera-frame points (N, J, 3) float64 in mm."""
        raise NotImplementedError

    def predictions(self, camera: np.ndarray, image: np.ndarray) -> dict[str, torch.Tensor]:
        """What the metric receives from camera-frame points (N, J, 3) and image points (N, J, 2)."""
        raise NotImplementedError

    def baseline(self, train_dataset: Any, batches: Iterable[dict]) -> Iterable[dict[str, torch.Tensor]]:
        """Per batch, the predictions of the baseline that a trained network must beat."""
        raise NotImplementedError
