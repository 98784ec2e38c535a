"""A small PoseTrack18 dataset in the official layout, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from src.layouts import get_keypoint_info

WIDTH, HEIGHT = 96, 64
NAMES = list(get_keypoint_info("posetrack18").keypoint_names)

#: A standing person (x, y) with the head at the top, 17 joints; the ears stay unannotated.
PERSON = np.array(
    [
        [10, 6],
        [10, 10],
        [10, 2],
        [0, 0],
        [0, 0],
        [13, 12],
        [7, 12],
        [14, 18],
        [6, 18],
        [15, 24],
        [5, 24],
        [12, 26],
        [8, 26],
        [12, 34],
        [8, 34],
        [12, 42],
        [8, 42],
    ],
    dtype=np.float64,
)
#: A triangle in the right part of each frame: the ignore region of the labelled frames' first video.
IGNORE_X = [70, 94, 94]
IGNORE_Y = [2, 2, 40]


def person(dx: float, dy: float) -> list[float]:
    """Flat x, y, v of `PERSON` moved by (dx, dy); the ears [0, 0, 0]."""
    out = []
    for j, (x, y) in enumerate(PERSON):
        out += [0, 0, 0] if j in (3, 4) else [float(x + dx), float(y + dy), 1]
    return out


def video(split: str, index: int, *, sizes: bool, ignore: bool) -> tuple[str, dict]:
    """(file stem, content) of a three-frame video whose frames 0 and 2 are labelled, two people each."""
    name = f"{index:06d}_mpii_{'train' if split == 'train' else 'test'}"
    images, annotations = [], []
    for frame in range(3):
        image_id = int(f"1{index:06d}{frame:04d}")
        image = {
            "id": image_id,
            "file_name": f"images/{split}/{name}/{frame:06d}.jpg",
            "vid_id": f"{index:06d}",
            "frame_id": image_id,
            "nframes": 3,
            "is_labeled": frame != 1,
            "has_no_densepose": True,
        }
        if sizes:
            image.update(width=WIDTH, height=HEIGHT)
        if ignore and frame != 1:
            image.update(ignore_regions_x=[IGNORE_X], ignore_regions_y=[IGNORE_Y])
        images.append(image)
        if frame == 1:
            continue
        for p, (dx, dy) in enumerate([(4 + frame, 8), (34 + frame, 12)]):
            annotations.append(
                {
                    "id": image_id * 100 + p,
                    "image_id": image_id,
                    "category_id": 1,
                    "track_id": p,
                    "person_id": 100 * index + p,
                    "keypoints": person(dx, dy),
                    "bbox": [dx + 3.0, dy + 0.0, 14.0, 44.0],
                    "bbox_head": [dx + 7.0, dy + 1.0, 6.0, 10.0],
                    "scores": [],
                }
            )
    categories = [{"supercategory": "person", "id": 1, "name": "person", "keypoints": NAMES, "skeleton": []}]
    return name, {"images": images, "annotations": annotations, "categories": categories}


def write_posetrack18(root: Path) -> Path:
    """Two videos per split under ``root`` in the official layout, with their (noise) frames; the
    first video of each split has ignore regions, the second states no image sizes."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "annotations" / split).mkdir(parents=True)
        for index, (sizes, ignore) in enumerate([(True, True), (False, False)], start=1 if split == "train" else 5):
            name, content = video(split, index, sizes=sizes, ignore=ignore)
            (root / "annotations" / split / f"{name}.json").write_text(json.dumps(content))
            folder = root / "images" / split / name
            folder.mkdir(parents=True)
            for image in content["images"]:
                pixels = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
                cv2.imwrite(str(root / image["file_name"]), pixels)
    return root
