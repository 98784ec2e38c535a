"""SimCC coordinate-classification codec (Li et al. 2022), as mmpose 1.x's ``SimCCLabel`` (RTMPose,
SimCC-R50).

Each joint is two 1-D label vectors over sub-pixel bins: x over ``round(w * r)`` bins and y over
``round(h * r)`` bins, r = ``simcc_split_ratio`` bins per crop pixel.

* ``encode``: bin centre ``mu = round_half_even(kp * r)`` (numpy's ``around``: 20.5 -> 20,
  41.5 -> 42), then per axis
  - ``"gaussian"`` smoothing: ``exp(-(i - mu)^2 / 2 sigma^2)`` over all bins, peak exactly 1 (divided
    by sigma sqrt(2 pi) when ``normalize``); a labelled joint is dropped (weight 0, zero labels)
    only if ``mu - 3 sigma >= L`` or ``mu + 3 sigma + 1 < 0`` on either axis, so a joint slightly
    outside the crop keeps weight 1 and a label tail;
  - ``"standard"`` smoothing: a one-hot label ``1 - label_smooth_weight`` at mu and
    ``label_smooth_weight / (L - 1)`` elsewhere; dropped when mu is outside [0, L).
  Joints with visibility < 0.5 get zero labels but keep their visibility as weight (0.3 stays 0.3).
* ``decode``: first argmax per axis, score ``min(max_x, max_y)`` of the raw vectors (no softmax);
  where the score is <= 0 both bins become -1 *before* dividing by r (so -0.5 px for r = 2).
* Flip test: ``x[:, flip_index].flip(-1)``, ``y[:, flip_index]``, the raw logits averaged. Reversing
  the x bins mirrors x -> w - 1 / r - x, while mirroring the crop's pixels is x -> w - 1 - x: the
  flipped-back vector lies (r - 1) bins (0.5 px for r = 2) to the right, as in mmpose, which
  applies no shift (the default). The test-time option ``shift_simcc: true`` moves it (r - 1) bins
  back to the left (linear interpolation for a fractional amount, the last bin repeated), so that
  both vectors peak at the same x.

Shapes: N instances, K keypoints, Lx = round(w r), Ly = round(h r). Sizes are (w, h).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from src.codecs.base import TopDownCodec
from src.visualization.maps import marginals_overlay

SMOOTHING_TYPES = ("gaussian", "standard")


def shift_left(vectors: torch.Tensor, amount: float) -> torch.Tensor:
    """``vectors`` (..., L) moved ``amount`` >= 0 bins towards bin 0: out[i] = v(i + amount), linear
    between bins, the last bin repeated past the end."""
    if amount <= 0:
        return vectors
    whole, fraction = int(amount), amount - int(amount)
    length = vectors.shape[-1]
    padded = torch.cat([vectors, vectors[..., -1:].expand(*vectors.shape[:-1], whole + 1)], dim=-1)
    out = padded[..., whole : whole + length]
    if fraction:
        out = out * (1.0 - fraction) + padded[..., whole + 1 : whole + 1 + length] * fraction
    return out


class SimCCLabel(TopDownCodec):
    """Encode keypoints to SimCC label vectors and decode SimCC vectors to coordinates.

    Args:
        input_size: (w, h) of the network input crop in pixels.
        sigma: Gaussian standard deviation in bins, one number or (sigma_x, sigma_y) (RTMPose
            256x192: (4.9, 5.66); mmpose's default 6.0).
        simcc_split_ratio: bins per crop pixel r.
        smoothing_type: "gaussian" (mmpose's default) or "standard" (one-hot with label smoothing).
        label_smooth_weight: mass spread over the other bins by "standard" smoothing, in [0, 1];
            must be 0 with "gaussian" (as in mmpose).
        normalize: divide the Gaussian labels by sigma sqrt(2 pi). RTMPose sets it False; mmpose's
            class default (and so SimCC-R50's config) is True.
        use_dark: mmpose's DARK refinement of the 1-D vectors; not implemented (refused).
        decode_visibility: mmpose's softmax visibility output; not part of this contract (refused).
    """

    target_keys = ("keypoint_x_labels", "keypoint_y_labels", "target_weight")
    evaluation_defaults: dict[str, Any] = {"shift_simcc": False}
    outputs_name = "SimCC vectors"

    def __init__(
        self,
        *,
        input_size: tuple[int, int],
        sigma: float | Sequence[float] = 6.0,
        simcc_split_ratio: float = 2.0,
        smoothing_type: str = "gaussian",
        label_smooth_weight: float = 0.0,
        normalize: bool = False,
        use_dark: bool = False,
        decode_visibility: bool = False,
    ) -> None:
        name = type(self).__name__
        if smoothing_type not in SMOOTHING_TYPES:
            raise ValueError(f"{name}: smoothing_type must be one of {SMOOTHING_TYPES}, got {smoothing_type!r}")
        if not 0.0 <= label_smooth_weight <= 1.0:
            raise ValueError(f"{name}: label_smooth_weight must be in [0, 1], got {label_smooth_weight}")
        if smoothing_type == "gaussian" and label_smooth_weight > 0:
            raise ValueError(
                f"{name}: label_smooth_weight={label_smooth_weight} applies to smoothing_type='standard' only; "
                "Gaussian labels are already smooth (set label_smooth_weight: 0 or smoothing_type: standard)"
            )
        if use_dark:
            raise ValueError(
                f"{name}: use_dark=true (DARK refinement of the SimCC vectors) is not implemented; "
                "RTMPose and SimCC-R50 decode without it (use_dark: false)"
            )
        if decode_visibility:
            raise ValueError(
                f"{name}: decode_visibility=true (a softmax visibility beside the scores) is not implemented: "
                "decoding returns coordinates and scores only (decode_visibility: false)"
            )
        sigmas = np.asarray(sigma, np.float64).reshape(-1)
        if sigmas.size not in (1, 2) or not np.all(sigmas > 0):
            raise ValueError(f"{name}: sigma must be a positive number or a pair (sigma_x, sigma_y), got {sigma!r}")
        sigmas = np.broadcast_to(sigmas, (2,))
        if simcc_split_ratio <= 0:
            raise ValueError(f"{name}: simcc_split_ratio must be positive, got {simcc_split_ratio}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.sigma = (float(sigmas[0]), float(sigmas[1]))
        self.simcc_split_ratio = float(simcc_split_ratio)
        self.smoothing_type = smoothing_type
        self.label_smooth_weight = float(label_smooth_weight)
        self.normalize = bool(normalize)
        # (Lx, Ly) label lengths, rounded half to even as numpy's around
        self.label_size = tuple(int(np.around(s * self.simcc_split_ratio)) for s in self.input_size)

    # ------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Keypoints in crop pixels -> the sample's labels.

        Args:
            keypoints: (K, 2) x, y in input-crop pixels.
            visible: (K,) visibility (labelled where >= 0.5).

        Returns:
            {"keypoint_x_labels": (K, Lx) float32, "keypoint_y_labels": (K, Ly) float32,
            "target_weight": (K,) float32}.
        """
        points = np.asarray(keypoints, np.float32).reshape(-1, 2)
        weight = np.asarray(visible, np.float32).reshape(-1).copy()
        if len(weight) != len(points):
            raise ValueError(f"{type(self).__name__}.encode: {len(points)} keypoints but {len(weight)} visibilities")
        mu = np.around(points * np.float32(self.simcc_split_ratio)).astype(np.int64)  # (K, 2) half to even
        lengths = np.array(self.label_size)
        labelled = weight >= 0.5
        if self.smoothing_type == "gaussian":
            radius = 3 * np.array(self.sigma)
            outside = np.any((mu - radius >= lengths) | (mu + radius + 1 < 0), axis=1)
        else:
            outside = np.any((mu >= lengths) | (mu < 0), axis=1)
        weight[labelled & outside] = 0.0
        drawn = labelled & ~outside
        labels = [self._labels(mu[:, axis], drawn, axis) for axis in (0, 1)]
        return {"keypoint_x_labels": labels[0], "keypoint_y_labels": labels[1], "target_weight": weight}

    def _labels(self, mu: np.ndarray, drawn: np.ndarray, axis: int) -> np.ndarray:
        """(K, L) float32 labels along one axis for centres mu (K,); rows not ``drawn`` are zero."""
        length = self.label_size[axis]
        bins = np.arange(length, dtype=np.float32)[None, :]
        if self.smoothing_type == "gaussian":
            sigma = self.sigma[axis]
            labels = np.exp(-((bins - mu[:, None].astype(np.float32)) ** 2) / np.float32(2 * sigma**2))
            if self.normalize:
                labels = labels / np.float32(sigma * np.sqrt(2 * np.pi))
        else:
            rest = self.label_smooth_weight / (length - 1) if self.label_smooth_weight > 0 else 0.0
            labels = np.full((len(mu), length), rest, np.float32)
            hit = bins == mu[:, None]
            labels[hit] = np.float32(1.0 - self.label_smooth_weight)
        return np.where(drawn[:, None], labels, np.float32(0)).astype(np.float32)

    # ------------------------------------------------------------------ decode
    def decode(self, prediction: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """SimCC vectors (x (N, K, Lx), y (N, K, Ly)) -> keypoints (N, K, 2) float32 in input-crop
        pixels and scores (N, K) (mmpose's ``get_simcc_maximum`` / r)."""
        simcc_x, simcc_y = (torch.as_tensor(v).detach().float() for v in self._pair(prediction))
        max_x, bin_x = simcc_x.max(dim=-1)[0], simcc_x.argmax(dim=-1)  # argmax: first maximum
        max_y, bin_y = simcc_y.max(dim=-1)[0], simcc_y.argmax(dim=-1)
        scores = torch.where(max_x > max_y, max_y, max_x)
        coords = torch.stack([bin_x, bin_y], dim=-1).float()
        coords = torch.where((scores <= 0)[..., None], torch.full_like(coords, -1.0), coords)
        return coords / self.simcc_split_ratio, scores

    # ------------------------------------------------------------------ the rest of the contract
    def loss_targets(self, batch: Mapping[str, Any]) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        return (batch["keypoint_x_labels"], batch["keypoint_y_labels"]), batch["target_weight"]

    def output_shapes(self, num_keypoints: int) -> tuple[tuple[int, int], tuple[int, int]]:
        k = int(num_keypoints)
        return ((k, self.label_size[0]), (k, self.label_size[1]))

    def prediction(self, outputs: Any) -> Any:
        """The two vectors as a tuple (exported networks return a list); anything else is returned as
        is, so that `check_outputs` names what the network gave."""
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else outputs

    def flip_back(
        self, prediction: Any, flip_index: Sequence[int], options: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """mmpose's ``flip_vectors``: joints swapped, x bins reversed, y untouched; with the option
        ``shift_simcc`` the x vectors then move (r - 1) bins left (see the module docstring)."""
        simcc_x, simcc_y = self._pair(prediction)
        index = torch.as_tensor(list(flip_index), dtype=torch.long, device=simcc_x.device)
        flipped_x = simcc_x.index_select(-2, index).flip(-1)
        if options.get("shift_simcc", self.evaluation_defaults["shift_simcc"]):
            flipped_x = shift_left(flipped_x, self.simcc_split_ratio - 1.0)
        return flipped_x, simcc_y.index_select(-2, index)

    def picture(self, crop_bgr: np.ndarray, maps: Any) -> np.ndarray:
        """One crop's vectors (x (K, Lx), y (K, Ly)) drawn as the outer product of each joint's pair."""
        simcc_x, simcc_y = self._pair(maps)
        return marginals_overlay(crop_bgr, simcc_x, simcc_y)

    def _pair(self, prediction: Any) -> tuple[Any, Any]:
        if not isinstance(prediction, (list, tuple)) or len(prediction) != 2:
            got = type(prediction).__name__ if not isinstance(prediction, (list, tuple)) else f"{len(prediction)} items"
            raise ValueError(f"{self!r} decodes a pair of SimCC vectors (x, y), got {got}")
        return prediction[0], prediction[1]

    def __repr__(self) -> str:
        return (
            f"SimCCLabel(input_size={self.input_size}, sigma={self.sigma}, simcc_split_ratio={self.simcc_split_ratio}, "
            f"smoothing_type={self.smoothing_type!r}, label_smooth_weight={self.label_smooth_weight}, "
            f"normalize={self.normalize})"
        )


__all__ = ["SMOOTHING_TYPES", "SimCCLabel"]
