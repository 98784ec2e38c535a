"""The top-down codec contract: everything a top-down task knows about its targets and outputs.

A codec is configured once (the model config) and handed to both the dataset and the task. For
its family it owns:

* the crop geometry (`crop_transform`, `crop_to_image`): which affine cuts the input crop out of
  the image, and its inverse for decoded keypoints;
* the targets (`encode`, declared by ``target_keys``) and their weights, and the loss's view of
  a batch (`loss_targets`);
* the network's outputs: their shapes (`check_outputs`, at task construction), which of them
  decoding reads (`prediction`: the last stack of a multi-stack network, both SimCC vectors);
* the flip test (`flip_back`, `average`) and its test-time options (``evaluation_defaults``,
  ``refine_modes``);
* decoding (`decode` to input-crop pixels, `decode_to_image`) and a training accuracy;
* pictures of a target or an output over the crop (`picture`).

Shapes: N instances, K keypoints; crops are (h, w) = ``input_size`` (w, h). A *prediction* is
whatever the codec's networks output for N crops (a tensor, or a tuple of tensors); a *target*
has the same structure, so the oracle decodes targets with the decoder of predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from src.geometry import PIXEL_STD, get_affine_transform

Prediction = Any  # torch.Tensor | tuple[torch.Tensor, ...]


def as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def average_predictions(a: Prediction, b: Prediction) -> Prediction:
    """The element-wise mean of two predictions of the same structure (tensors or tuples)."""
    if isinstance(a, (tuple, list)):
        return tuple(average_predictions(x, y) for x, y in zip(a, b))
    return 0.5 * (a + b)


def describe_shapes(outputs: Any) -> str:
    """'(1, 17, 64, 48)' or '[(1, 17, 384), (1, 17, 512)]' for error messages."""
    if isinstance(outputs, (tuple, list)):
        return "[" + ", ".join(describe_shapes(o) for o in outputs) + "]"
    return str(tuple(outputs.shape))


class TopDownCodec:
    """Base of the top-down codecs; subclasses implement the abstract methods below.

    Subclasses set ``input_size`` (w, h) in their constructor.
    """

    #: Keys `encode` adds to a sample; ``target_weight`` (K,) is always one of them.
    target_keys: ClassVar[tuple[str, ...]] = ()
    #: Test-time options this codec adds to the task's ``evaluation`` options, with their defaults
    #: (they may be changed at test time, e.g. ``python -m src.eval ... shift_heatmap=false``).
    evaluation_defaults: ClassVar[dict[str, Any]] = {}
    #: Sub-pixel refinements `set_refine` accepts; () when the codec has none.
    refine_modes: ClassVar[tuple[str, ...]] = ()
    #: Name of the family in messages ("heatmaps", "SimCC vectors").
    outputs_name: ClassVar[str] = "outputs"

    input_size: tuple[int, int]

    # ------------------------------------------------------------------ crop geometry
    def crop_transform(self, center: np.ndarray, scale: np.ndarray, rotation: float) -> np.ndarray:
        """(2, 3) affine from image pixels to input-crop pixels (the official three-point warp)."""
        return get_affine_transform(center, scale, rotation, self.input_size)

    def crop_to_image(self, coords: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Input-crop pixels (N, K, 2) -> image pixels (N, K, 2) float64, the inverse of
        `crop_transform` at rotation 0: ``x / input_size * box + center - box / 2`` with
        ``box = scale * 200``."""
        box = as_numpy(scales).astype(np.float64).reshape(-1, 1, 2) * PIXEL_STD
        centers = as_numpy(centers).astype(np.float64).reshape(-1, 1, 2)
        size = np.asarray(self.input_size, np.float64)
        return np.asarray(coords, np.float64) / size * box + centers - 0.5 * box

    # ------------------------------------------------------------------ targets
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Keypoints (K, 2) in input-crop pixels and visibility (K,) -> the sample's targets
        (``target_keys``), as numpy arrays."""
        raise NotImplementedError

    def loss_targets(self, batch: Mapping[str, Any]) -> tuple[Prediction, torch.Tensor]:
        """(targets shaped as a prediction, target weights (N, K)) of a batch: the loss is called
        as ``loss(outputs, targets, weights)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ network outputs
    def output_shapes(self, num_keypoints: int) -> Any:
        """Expected shapes of one crop's prediction (without the batch dimension): a tuple of
        ints, or a tuple of such tuples for several tensors."""
        raise NotImplementedError

    def prediction(self, outputs: Any) -> Prediction:
        """The part of the network's outputs that is decoded (all of it unless overridden)."""
        return outputs

    def check_outputs(self, outputs: Any, num_keypoints: int, network: str) -> None:
        """Refuse a network whose prediction does not have the shapes this codec decodes."""
        prediction = self.prediction(outputs)
        expected = self.output_shapes(num_keypoints)
        got = _shapes_without_batch(prediction)
        if got != expected:
            raise ValueError(
                f"{network} outputs {describe_shapes(prediction)} but {self!r} expects {self.outputs_name} "
                f"of shape {_with_batch(expected)} (N crops): make the codec's sizes match the network's outputs"
            )

    # ------------------------------------------------------------------ test time
    def flip_back(self, prediction: Prediction, flip_index: Sequence[int], options: Mapping[str, Any]) -> Prediction:
        """A prediction on mirrored crops, mapped back to the unmirrored crops (joints swapped by
        ``flip_index``); ``options`` are the task's evaluation options (this codec's included)."""
        raise NotImplementedError

    def average(self, a: Prediction, b: Prediction) -> Prediction:
        """How the flip test merges the prediction and the flipped-back one (their mean)."""
        return average_predictions(a, b)

    def set_refine(self, refine: Any) -> None:
        if refine not in self.refine_modes:
            have = f"one of {list(self.refine_modes)}" if self.refine_modes else "none (it has no refinement)"
            raise ValueError(f"refine for {type(self).__name__} must be {have}, got {refine!r}")
        self.refine = refine

    # ------------------------------------------------------------------ decoding
    def decode(self, prediction: Prediction) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction -> keypoints (N, K, 2) float32 in input-crop pixels and scores (N, K)."""
        raise NotImplementedError

    def decode_to_image(
        self, prediction: Prediction, centers: np.ndarray | torch.Tensor, scales: np.ndarray | torch.Tensor
    ) -> np.ndarray:
        """Prediction -> keypoints (N, K, 3) float32 [x, y, score] in image pixels.

        centers, scales: (N, 2) crop boxes as the dataset made them (scale in units of 200 px).
        """
        coords, scores = self.decode(prediction)
        image = self.crop_to_image(as_numpy(coords), as_numpy(centers), as_numpy(scales))
        return np.concatenate([image, as_numpy(scores)[..., None]], axis=-1).astype(np.float32)

    def accuracy(self, prediction: Prediction, batch: Mapping[str, Any]) -> torch.Tensor:
        """Training monitor: the fraction of target joints decoded within a tenth of the crop's
        side, per axis (an 0.5 threshold on coordinates divided by ``input_size / 10``)."""
        targets, weights = self.loss_targets(batch)
        pred, _ = self.decode(_detached(prediction))
        gt, _ = self.decode(_detached(targets))
        norm = torch.tensor(self.input_size, dtype=torch.float32, device=pred.device) / 10.0
        dist = torch.linalg.vector_norm((pred - gt.to(pred.device)) / norm, dim=-1)
        valid = weights.reshape(dist.shape).to(dist.device) > 0
        if not bool(valid.any()):
            return torch.zeros((), device=dist.device)
        return ((dist < 0.5) & valid).sum().float() / valid.sum()

    # ------------------------------------------------------------------ pictures
    def picture(self, crop_bgr: np.ndarray, maps: Prediction) -> np.ndarray:
        """One crop's prediction (or target, same structure, no batch dimension) drawn over the
        (h, w, 3) BGR crop: a uint8 BGR image of the crop's size."""
        raise NotImplementedError

    def one(self, prediction: Prediction, index: int) -> Prediction:
        """Instance ``index`` of a batched prediction (for `picture`)."""
        if isinstance(prediction, (tuple, list)):
            return tuple(p[index] for p in prediction)
        return prediction[index]


def _detached(prediction: Prediction) -> Prediction:
    if isinstance(prediction, (tuple, list)):
        return tuple(p.detach().float() for p in prediction)
    return prediction.detach().float()


def _shapes_without_batch(prediction: Any) -> Any:
    if isinstance(prediction, (tuple, list)):
        return tuple(_shapes_without_batch(p) for p in prediction)
    return tuple(int(s) for s in prediction.shape[1:])


def _with_batch(shapes: Any) -> str:
    if shapes and isinstance(shapes[0], tuple):
        return "[" + ", ".join(_with_batch(s) for s in shapes) + "]"
    return "(N, " + ", ".join(str(s) for s in shapes) + ")"
