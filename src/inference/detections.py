"""Person boxes of a dataset's images from a bottom-up model, written as COCO detection results,
so that a crop model can be evaluated on them (``python -m src.eval ... detector_ckpt=PATH``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from src.inference.predictor import Predictor
from src.readers.images import read_image

log = logging.getLogger(__name__)


def detect_people(
    predictor: Predictor, images: Sequence[tuple[int, Path]], *, batch_size: int = 8, progress: bool = True
) -> list[dict]:
    """COCO detection results ``{image_id, category_id, bbox, score}`` of the boxes that
    ``predictor.detect`` proposes (its detector's people, padded as the crop model expects)."""
    results = []
    for start in tqdm(range(0, len(images), batch_size), desc="person boxes", disable=not progress):
        chunk = images[start : start + batch_size]
        arrays = [read_image(path, color_rgb=True) for _, path in chunk]
        for (image_id, _), boxes in zip(chunk, predictor.detect(arrays)):
            for x, y, w, h, score in boxes.tolist():
                results.append({"image_id": image_id, "category_id": 1, "bbox": [x, y, w, h], "score": score})
    log.info("%d person boxes in %d images", len(results), len(images))
    return results
