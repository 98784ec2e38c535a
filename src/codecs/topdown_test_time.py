"""Test-time steps shared by the top-down task, evaluation and prediction, for any codec of the
top-down contract (`src.codecs.base`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from src.codecs.base import Prediction, TopDownCodec


@torch.no_grad()
def topdown_prediction(
    net: Callable[[torch.Tensor], Any],
    images: torch.Tensor,
    codec: TopDownCodec,
    *,
    flip_index: Sequence[int],
    options: Mapping[str, Any],
) -> Prediction:
    """The codec's prediction for crops (N, 3, h, w), merged with the prediction on the mirrored
    crops when ``options["flip_test"]`` (mapped back by the codec's `flip_back`, then `average`)."""
    prediction = codec.prediction(net(images))
    if options.get("flip_test", False):
        flipped = codec.prediction(net(torch.flip(images, dims=[3])))
        prediction = codec.average(prediction, codec.flip_back(flipped, flip_index, options))
    return prediction


def decode_batch(codec: TopDownCodec, prediction: Prediction, batch: Mapping[str, Any]):
    """A batch's prediction -> keypoints (N, K, 3) float32 [x, y, score] in image pixels."""
    return codec.decode_to_image(prediction, batch["center"], batch["scale"])
