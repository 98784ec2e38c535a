"""Codec oracles: ground truth pushed through a model's targets and decoding, without a network.

The COCO AP of an oracle is the accuracy ceiling of a codec and input size, and an end-to-end
check of the geometry (crops or resizing, encoding, decoding, projection back to the image).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from src.codecs.associative_embedding import AssociativeEmbedding
from src.codecs.base import TopDownCodec
from src.codecs.bottomup_targets import HeatmapGenerator
from src.codecs.bottomup_test_time import final_keypoints, multi_scale_size
from src.codecs.topdown_test_time import decode_batch
from src.geometry import affine_transform_points, get_affine_transform

#: Tag spacing between people in the oracle's tag maps: above the grouping's tag threshold (1.0).
TAG_SPACING = 2.0


def topdown_oracle(codec: TopDownCodec, batches: Iterable[dict]) -> Iterator[tuple[dict, np.ndarray]]:
    """For each top-down batch: its targets (of any codec) decoded to image keypoints (N, K, 3)."""
    for batch in batches:
        targets, _ = codec.loss_targets(batch)
        yield batch, decode_batch(codec, targets, batch)


def render_people(joints: np.ndarray, size: tuple[int, int], *, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (K, h, w) and tag maps (K, h, w, 1) of people (M, K, 3) in heatmap pixels.

    Heatmaps are the official per-person Gaussians merged by maximum; each pixel's tag is
    ``TAG_SPACING * m`` of the person m whose Gaussian is largest there.
    """
    w, h = size
    k = joints.shape[1]
    generator = HeatmapGenerator(output_size=max(w, h), num_joints=k, sigma=sigma)
    heat = np.zeros((k, h, w), np.float32)
    tags = np.zeros((k, h, w), np.float32)
    for m, person in enumerate(joints):
        hm = generator(person[None])[:, :h, :w]
        closer = hm > heat
        heat[closer] = hm[closer]
        tags[closer] = TAG_SPACING * m
    return heat, tags[..., None]


def bottomup_oracle(
    codec: AssociativeEmbedding, image_joints: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """One image's people (M, K, 3) [x, y, v] -> grouped keypoints (P, K, 3) in image px, scores (P,).

    The image is mapped to the single-scale test resolution exactly as at inference (short side
    to ``codec.input_size``, long side to a multiple of 64); there the ground truth becomes heatmaps
    and tags, which go through the codec's grouping (NMS, top-k, matching, adjust, refine) and the
    inverse mapping.
    """
    size, center, scale = multi_scale_size(width, height, codec.input_size, 1.0, 1.0)
    joints = np.array(image_joints, dtype=np.float32).reshape(-1, codec.num_joints, 3)
    if len(joints):
        trans = get_affine_transform(center, scale, 0.0, size)
        joints[..., :2] = affine_transform_points(joints[..., :2], trans)
    heat, tags = render_people(joints, size, sigma=codec.sigma)
    people, scores = codec.decode(torch.from_numpy(heat)[None], torch.from_numpy(tags)[None])
    return final_keypoints(people, center, scale, size)[..., :3], scores
