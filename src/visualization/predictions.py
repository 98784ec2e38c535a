"""Pictures of predicted skeletons on the original validation images."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from src.layouts import KeypointInfo
from src.visualization.skeletons import draw_keypoint_info, save_image_grid


def save_prediction_picture(
    path: str | Path,
    image_files: Mapping[int, str],
    predictions: Mapping[int, np.ndarray],
    *,
    keypoint_info: KeypointInfo,
    ncols: int = 4,
    max_side: int = 480,
    score_thr: float = 0.2,
) -> Path:
    """Draw predicted keypoints, (K, 3) or (P, K, 3) per sample id, on their images and tile them.

    ``image_files`` maps sample ids to image paths; the predictions of all samples of one image
    go onto that image. Images larger than ``max_side``
    are shrunk so the picture stays small.
    """
    per_image: dict[str, list[np.ndarray]] = defaultdict(list)
    for sample_id, keypoints in predictions.items():
        kpts = np.asarray(keypoints, dtype=np.float32)
        per_image[image_files[int(sample_id)]].append(kpts.reshape(-1, *kpts.shape[-2:]))
    tiles = []
    for image_file, instances in sorted(per_image.items()):
        image = cv2.imread(image_file, cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read validation image {image_file}")
        drawn = draw_keypoint_info(image, np.concatenate(instances), keypoint_info, score_thr=score_thr)
        factor = max_side / max(drawn.shape[:2])
        if factor < 1:
            drawn = cv2.resize(drawn, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        tiles.append(drawn)
    if not tiles:
        raise ValueError("no predictions to draw")
    return save_image_grid(tiles, path, ncols=ncols)
