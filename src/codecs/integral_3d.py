"""Integral (soft-argmax) 3D codec of 3DMPPE PoseNet: targets, decoding and back-projection.

Coordinate frames, with the official sizes in brackets:

* crop (input) pixels: the network input of ``input_size`` (w, h) [256 x 256], made from the
  person box ``bbox = (x, y, w, h)`` (image pixels, with the aspect ratio of the input) by
  ``src.geometry.get_affine_transform(center, scale, rot, input_size)`` with ``center`` the box
  centre and ``scale = w / 200``. Without rotation the box maps exactly onto the crop.
* output coordinates ``(x, y, z)``: x, y in output pixels of ``output_size`` (w, h) [64 x 64],
  a pure scaling of crop pixels by output / input; z in depth bins 0..D-1 [D = 64], where the
  root-relative depth ``Z_joint - Z_root`` in [-bbox_3d_depth / 2, +bbox_3d_depth / 2) mm
  [+-1000 mm] maps linearly onto [0, D). All three are 0-based voxel indices.
* image pixels and camera depth: ``x_img = x / W_out * bbox_w + bbox_x`` (same for y, no
  half-pixel term), ``Z = (z / D * 2 - 1) * bbox_3d_depth / 2 + Z_root``; then
  ``src.camera.pixel_to_camera`` with the camera's f, c gives millimetres in the camera frame.

The network output (B, K * D, H, W) holds joint k's depth bin z in channel ``k * D + z``.

Shapes: B samples, K joints, D depth bins, H x W output grid. Sizes are (w, h).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from src.camera import pixel_to_camera
from src.codecs.crop_3d import Crop3DCodec, CropSample, as_float64


class Integral3D(Crop3DCodec):
    """Encode 3D joints to soft-argmax targets and decode 3D heatmaps to coordinates (the 3D crop
    codec contract of `src.codecs.crop_3d`: J = K joints, root-relative depth).

    Args:
        input_size: (w, h) of the network input crop in pixels.
        output_size: (w, h) of the head's output grid.
        depth_dim: D depth bins per joint.
        bbox_3d_depth: depth range in mm covered by the D bins, centred on the root joint.
    """

    prediction_key: ClassVar[str] = "joints_cam"

    def __init__(
        self,
        *,
        input_size: Sequence[int] = (256, 256),
        output_size: Sequence[int] = (64, 64),
        depth_dim: int = 64,
        bbox_3d_depth: float = 2000.0,
    ) -> None:
        if len(input_size) != 2 or len(output_size) != 2:
            raise ValueError(f"input_size and output_size are (w, h) pairs, got {input_size} and {output_size}")
        if min(*input_size, *output_size) < 1 or depth_dim < 1:
            raise ValueError(
                f"sizes must be positive, got input_size {input_size}, output_size {output_size}, depth_dim {depth_dim}"
            )
        if bbox_3d_depth <= 0:
            raise ValueError(f"bbox_3d_depth must be positive, got {bbox_3d_depth}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.depth_dim = int(depth_dim)
        self.bbox_3d_depth = float(bbox_3d_depth)

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        keypoints: np.ndarray,
        depth: np.ndarray | None,
        visible: np.ndarray,
        *,
        have_depth: bool = True,
    ) -> dict[str, np.ndarray]:
        """The codec protocol: joints in crop pixels and root-relative depth -> training targets.

        A joint's weight is its visibility, zeroed (as the official loader does) when it leaves
        the crop (x < 0, x >= input_w, y < 0, y >= input_h, tested in crop pixels) or when its
        normalised depth ``(depth / (bbox_3d_depth / 2) + 1) / 2`` is outside [0, 1); only then are
        the coordinates scaled to the output grid and the depth bins.

        Args:
            keypoints: (K, 2) x, y in crop (input) pixels.
            depth: (K,) root-relative depth ``Z_joint - Z_root`` in mm. Ignored (taken as zeros,
                the middle bin) when ``have_depth`` is False, and may then be None.
            visible: (K,) visibility (its values are kept where the joint is in range).
            have_depth: False for 2D-only samples (e.g. MPII): the loss then ignores z.

        Returns:
            {"coords": (K, 3) float32 x, y output pixels and z depth bins,
                "coord_weight": (K,) float32, "have_depth": () float32 1.0 or 0.0}.

        Raises:
            ValueError: the arrays do not describe the same K joints.
        """
        xy = np.asarray(keypoints, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"keypoints must be (K, 2) crop pixels, got shape {xy.shape}")
        num_k = xy.shape[0]
        weight = np.asarray(visible, dtype=np.float32).reshape(-1).copy()
        if have_depth:
            if depth is None:
                raise ValueError("depth is required when have_depth is True")
            z = np.asarray(depth, dtype=np.float64).reshape(-1)
        else:
            z = np.zeros(num_k, dtype=np.float64)
        if weight.shape[0] != num_k or z.shape[0] != num_k:
            raise ValueError(
                f"keypoints ({num_k} joints), depth ({z.shape[0]}) and visible ({weight.shape[0]}) disagree"
            )

        z_unit = (z / (self.bbox_3d_depth / 2) + 1.0) / 2.0  # [0, 1) inside the depth range
        in_w, in_h = self.input_size
        inside = (
            (xy[:, 0] >= 0) & (xy[:, 0] < in_w) & (xy[:, 1] >= 0) & (xy[:, 1] < in_h) & (z_unit >= 0) & (z_unit < 1)
        )
        weight *= inside.astype(np.float32)

        out_w, out_h = self.output_size
        coords = np.stack([xy[:, 0] / in_w * out_w, xy[:, 1] / in_h * out_h, z_unit * self.depth_dim], axis=1).astype(
            np.float32
        )
        return {
            "coords": coords,
            "coord_weight": weight,
            "have_depth": np.asarray(1.0 if have_depth else 0.0, dtype=np.float32),
        }

    def encode_crop(self, sample: CropSample) -> dict[str, np.ndarray]:
        """The contract's encoding: `encode` of the crop's joints and root-relative depths."""
        return self.encode(
            sample.joints_crop, sample.depth_relative, sample.visible, have_depth=bool(sample.have_depth)
        )

    def check_network(self, net: Any) -> None:
        depth_dim = getattr(net, "depth_dim", self.depth_dim)
        if depth_dim != self.depth_dim:
            raise ValueError(
                f"net.depth_dim={depth_dim} but codec.depth_dim={self.depth_dim}: the codec must read the "
                "volumes the network writes"
            )

    # ------------------------------------------------------------------ decode
    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Soft-argmax: expected voxel index of each joint's softmax-normalised volume.

        The softmax runs over all D * H * W voxels of a joint; the expectations use 0-based
        indices, computed from the marginals (sum over z, then over the other axis of the
        (H, W) map; sum over H, W for z). Differentiable; runs in float32 (float64 inputs stay
        float64) with autocast disabled.

        Args:
            outputs: (B, K * D, H, W) raw head output, channel ``k * D + z``.

        Returns:
            (B, K, 3) x, y in output pixels and z in depth bins.

        Raises:
            ValueError: the channels are not a multiple of D or the grid is not ``output_size``.
        """
        if outputs.ndim != 4:
            raise ValueError(f"expected (B, K * D, H, W) outputs, got shape {tuple(outputs.shape)}")
        b, channels, h, w = outputs.shape
        d = self.depth_dim
        if channels % d != 0:
            raise ValueError(f"{channels} output channels are not a multiple of depth_dim {d}")
        if (w, h) != self.output_size:
            raise ValueError(f"output grid (w, h) = {(w, h)} differs from the codec's output_size {self.output_size}")
        k = channels // d
        with torch.autocast(device_type=outputs.device.type, enabled=False):
            logits = outputs if outputs.dtype == torch.float64 else outputs.float()
            prob = torch.softmax(logits.reshape(b, k, d * h * w), dim=-1).reshape(b, k, d, h, w)
            plane = prob.sum(dim=2)  # (B, K, H, W)
            marginal_x = plane.sum(dim=2)  # (B, K, W)
            marginal_y = plane.sum(dim=3)  # (B, K, H)
            marginal_z = prob.sum(dim=(3, 4))  # (B, K, D)
            x = marginal_x @ torch.arange(w, dtype=prob.dtype, device=prob.device)
            y = marginal_y @ torch.arange(h, dtype=prob.dtype, device=prob.device)
            z = marginal_z @ torch.arange(d, dtype=prob.dtype, device=prob.device)
            return torch.stack([x, y, z], dim=-1)

    def flip_back(self, coords: torch.Tensor, flip_index: Sequence[int]) -> torch.Tensor:
        """Coordinates predicted on the horizontally mirrored crop -> those of the original crop.

        ``x <- W_out - 1 - x`` and left / right joints swapped; the official flip test averages
        the result with the prediction on the original crop.

        Args:
            coords: (B, K, 3) decoded on the mirrored crop.
            flip_index: (K,) permutation with flipped[k] = original[flip_index[k]]
                (`KeypointInfo.flip_index`).

        Returns:
            (B, K, 3) a new tensor.
        """
        if len(flip_index) != coords.shape[1]:
            raise ValueError(f"flip_index has {len(flip_index)} entries for {coords.shape[1]} joints")
        index = torch.as_tensor(list(flip_index), dtype=torch.long, device=coords.device)
        mirrored = torch.cat([self.output_size[0] - 1 - coords[..., :1], coords[..., 1:]], dim=-1)
        return mirrored.index_select(1, index)

    # ------------------------------------------------------------------ back-projection
    def to_depth(self, coords: np.ndarray | torch.Tensor, root_depth: np.ndarray) -> np.ndarray:
        """Depth bins -> camera depth Z in mm.

        Args:
            coords: (B, K, 3) decoded coordinates.
            root_depth: (B,) root joint depth Z_root in mm (ground truth or RootNet).

        Returns:
            (B, K) float64 Z in mm.
        """
        coords = as_float64(coords)
        root = np.asarray(root_depth, dtype=np.float64).reshape(-1, 1)
        return (coords[..., 2] / self.depth_dim * 2 - 1) * (self.bbox_3d_depth / 2) + root

    def to_camera(
        self,
        coords: np.ndarray | torch.Tensor,
        bbox: np.ndarray,
        root_depth: np.ndarray,
        f: np.ndarray,
        c: np.ndarray,
    ) -> np.ndarray:
        """Output coordinates -> camera-frame joints in mm (`to_image`, `to_depth`, then pinhole).

        Args:
            coords: (B, K, 3) decoded coordinates.
            bbox: (B, 4) crop boxes x, y, w, h in image pixels.
            root_depth: (B,) root depth in mm.
            f: (B, 2) focal lengths fx, fy in pixels ((2,) is shared by all samples).
            c: (B, 2) principal points cx, cy in pixels ((2,) is shared).

        Returns:
            (B, K, 3) float64 camera-frame x, y, z in mm.
        """
        uvz = np.concatenate([self.to_image(coords, bbox), self.to_depth(coords, root_depth)[..., None]], axis=-1)
        batch = uvz.shape[0]
        f = np.broadcast_to(np.asarray(f, dtype=np.float64), (batch, 2))
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), (batch, 2))
        if batch == 0:
            return np.zeros(uvz.shape, dtype=np.float64)
        return np.stack([pixel_to_camera(uvz[i], f[i], c[i]) for i in range(batch)])

    def predictions(self, camera: np.ndarray, image: np.ndarray) -> dict[str, torch.Tensor]:
        """{"joints_cam": (N, K, 3) camera-frame joints (mm), "keypoints_2d": (N, K, 2) image pixels}."""
        return {
            "joints_cam": torch.from_numpy(np.asarray(camera, np.float32)),
            "keypoints_2d": torch.from_numpy(np.asarray(image, np.float32)),
        }

    def baseline(self, train_dataset: Any, batches: Iterable[dict]) -> Iterator[dict[str, torch.Tensor]]:
        """The mean-pose baseline: every crop predicted as the mean root-relative camera-frame pose
        of the 3D training records (no image seen), placed at the crop's root (its ground-truth
        camera root, so only the pose differs); its 2D joints are that pose projected."""
        cam = train_dataset.camera_joints_3d()
        if not len(cam):
            raise ValueError("the mean-pose baseline needs 3D training records; the training split has none")
        root = train_dataset.root_joint
        mean = (cam - cam[:, root : root + 1]).mean(axis=0)  # (K, 3) root-relative
        for batch in batches:
            gt = as_float64(batch["joints_cam"])
            joints = mean[None] + gt[:, root : root + 1]
            f, c = as_float64(batch["f"]), as_float64(batch["c"])
            with np.errstate(divide="ignore", invalid="ignore"):
                image = joints[..., :2] / joints[..., 2:3] * f[:, None] + c[:, None]
            yield self.predictions(joints, np.nan_to_num(image))

    def __repr__(self) -> str:
        return (
            f"Integral3D(input_size={self.input_size}, output_size={self.output_size}, "
            f"depth_dim={self.depth_dim}, bbox_3d_depth={self.bbox_3d_depth})"
        )
