"""RootNet's codec (3DMPPE, Moon et al. 2019): a person's root in absolute camera coordinates.

Targets of a crop (``data/dataset.py`` of the RootNet repository): the root joint's position in
the crop, scaled to the output grid (x / input_w * output_w, y likewise; official 256 -> 64), its
absolute camera depth Z in mm (0 for 2D-only samples, whose depth the loss ignores), a weight that
is the root's visibility times "inside the crop" (0 <= x < input_w, 0 <= y < input_h), and the
k-value of the un-augmented crop box, ``k = sqrt(bbox_real_x bbox_real_y f_x f_y / (w h))``
(`src.camera.k_value`), which the network reads as a second input (depth = gamma * k).

Decoding: the network already outputs (N, 3) [x, y on the output grid, depth in mm]; image pixels
are ``x / W_out * bbox_w + bbox_x`` (no half-pixel term) and the camera point is the pinhole
back-projection at that depth, ``X = (u - c_x) / f_x * Z`` (the official post-processing, e.g.
``data/MuPoTS/MuPoTS.py``). The official test has no flip test; the flip-back here mirrors x.

The baseline without a network is the k-value itself (gamma = 1): the root at the centre of the
crop box, at depth k.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from src.camera import BBOX_REAL_MM, k_value, pixel_to_camera
from src.codecs.crop_3d import Crop3DCodec, CropSample, as_float64


class RootDepth(Crop3DCodec):
    """Encode a crop's root (grid x, y and absolute depth) with its k-value; decode RootNet outputs.

    Args:
        input_size: (w, h) of the network input crop (official 256 x 256).
        output_size: (w, h) of the x, y grid (official 64 x 64).
        bbox_real: (w, h) in mm of the real-world box that k assumes (official 2000 x 2000 for
            Human3.6M, MuCo and MuPoTS).
    """

    target_keys: ClassVar[tuple[str, ...]] = ("coords", "coord_weight", "have_depth", "k_value")
    input_keys: ClassVar[tuple[str, ...]] = ("k_value",)
    prediction_key: ClassVar[str] = "root_cam"
    metric_key: ClassVar[str] = "root_metric"

    def __init__(
        self,
        *,
        input_size: Sequence[int] = (256, 256),
        output_size: Sequence[int] = (64, 64),
        bbox_real: Sequence[float] = BBOX_REAL_MM,
    ) -> None:
        if len(input_size) != 2 or len(output_size) != 2 or len(bbox_real) != 2:
            raise ValueError(
                f"input_size, output_size and bbox_real are (w, h) pairs, got {input_size}, {output_size}, {bbox_real}"
            )
        if min(*input_size, *output_size) < 1 or min(bbox_real) <= 0:
            raise ValueError(f"sizes must be positive, got {input_size}, {output_size}, {bbox_real}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.bbox_real = (float(bbox_real[0]), float(bbox_real[1]))

    # ------------------------------------------------------------------ encode
    def encode_crop(self, sample: CropSample) -> dict[str, np.ndarray]:
        """{"coords": (1, 3) [x, y grid, Z mm], "coord_weight": (1,), "have_depth": (), "k_value": ()}."""
        x, y = (float(v) for v in np.asarray(sample.joints_crop, np.float64)[sample.root])
        in_w, in_h = self.input_size
        inside = 0.0 <= x < in_w and 0.0 <= y < in_h
        weight = float(np.asarray(sample.visible, np.float32)[sample.root]) * float(inside)
        out_w, out_h = self.output_size
        depth = float(sample.root_depth) if sample.have_depth else 0.0
        return {
            "coords": np.array([[x / in_w * out_w, y / in_h * out_h, depth]], np.float32),
            "coord_weight": np.array([weight], np.float32),
            "have_depth": np.asarray(1.0 if sample.have_depth else 0.0, np.float32),
            "k_value": np.asarray(k_value(np.asarray(sample.bbox), np.asarray(sample.focal), self.bbox_real)),
        }

    def check_network(self, net: Any) -> None:
        if not hasattr(net, "root"):
            raise ValueError(
                f"{type(net).__name__} is not a RootNet (no root head): the RootDepth codec reads (N, 3) roots "
                "from a network called with the images and their k-values"
            )

    # ------------------------------------------------------------------ decode
    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """(N, 3) RootNet outputs -> (N, 1, 3) coordinates (float32, or float64 kept)."""
        if outputs.ndim != 2 or outputs.shape[1] != 3:
            raise ValueError(f"expected (N, 3) roots [x, y, depth], got shape {tuple(outputs.shape)}")
        coords = outputs if outputs.dtype == torch.float64 else outputs.float()
        return coords[:, None, :]

    def flip_back(self, coords: torch.Tensor, flip_index: Sequence[int]) -> torch.Tensor:
        """Roots predicted on mirrored crops: ``x <- W_out - 1 - x`` (one point: no joints to swap)."""
        del flip_index
        return torch.cat([self.output_size[0] - 1 - coords[..., :1], coords[..., 1:]], dim=-1)

    def to_camera(
        self,
        coords: np.ndarray | torch.Tensor,
        bbox: np.ndarray,
        root_depth: np.ndarray,
        f: np.ndarray,
        c: np.ndarray,
    ) -> np.ndarray:
        """Coordinates (N, 1, 3) -> camera-frame roots (N, 1, 3) mm at their predicted depth
        (``root_depth`` is not used: the depth is the prediction)."""
        del root_depth
        coords = as_float64(coords)
        uv = self.to_image(coords, bbox)
        uvz = np.concatenate([uv, coords[..., 2:3]], axis=-1)
        n = uvz.shape[0]
        f = np.broadcast_to(np.asarray(f, dtype=np.float64), (n, 2))
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), (n, 2))
        return np.stack([pixel_to_camera(uvz[i], f[i], c[i]) for i in range(n)]) if n else np.zeros(uvz.shape)

    def predictions(self, camera: np.ndarray, image: np.ndarray) -> dict[str, torch.Tensor]:
        """{"root_cam": (N, 3) camera-frame roots (mm), "root_2d": (N, 2) image pixels}."""
        return {
            "root_cam": torch.from_numpy(np.asarray(camera, np.float32).reshape(-1, 3)),
            "root_2d": torch.from_numpy(np.asarray(image, np.float32).reshape(-1, 2)),
        }

    def baseline(self, train_dataset: Any, batches: Iterable[dict]) -> Iterator[dict[str, torch.Tensor]]:
        """The k-value baseline (gamma = 1): the root at the centre of the crop box, at depth k."""
        del train_dataset
        out_w, out_h = self.output_size
        for batch in batches:
            k = as_float64(batch["k_value"]).reshape(-1)
            coords = np.zeros((len(k), 1, 3))
            coords[:, 0] = np.stack([np.full_like(k, out_w / 2), np.full_like(k, out_h / 2), k], axis=1)
            bbox = as_float64(batch["bbox"])
            camera = self.to_camera(coords, bbox, k, as_float64(batch["f"]), as_float64(batch["c"]))
            yield self.predictions(camera, self.to_image(coords, bbox))

    def __repr__(self) -> str:
        return f"RootDepth(input_size={self.input_size}, output_size={self.output_size}, bbox_real={self.bbox_real})"
