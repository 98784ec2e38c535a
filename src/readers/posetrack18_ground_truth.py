"""The PoseTrack18 validation ground truth as its two metrics take it.

* COCO keypoint AP: a COCO-format dataset of every labelled frame of the folder's videos, the ignore
  regions as crowd annotations (`src.readers.posetrack18_json`). The people carry no ``area`` in the
  files; their OKS scale is mmpose's for COCO-style files without one: 0.53 times the area of the
  box clipped to the image (x1 = clip(x, 0, W - 1), x2 = clip(x + w, 0, W - 1), the same in y), at
  least 1. ``num_keypoints`` is the count of joints with v > 0.
* The per-frame mAP of the PoseTrack evaluation (`src.metrics.posetrack18_map`): one
  `PoseTrackFrame` per labelled frame with at least one person, with the people's joints, head
  boxes (``bbox_head``, needed for every person of such a frame) and the frame's ignore regions.

No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.readers.coco_json import numeric_array, stacked_keypoints
from src.readers.errors import AnnotationError
from src.readers.posetrack18_json import NUM_JOINTS, read_split

#: mmpose's OKS scale of a COCO-style person without ``area``: this times its clipped box area.
OKS_AREA_FACTOR = 0.53


@dataclass(frozen=True)
class PoseTrackFrame:
    """One evaluated frame: G people, K joints.

    Attributes:
        image_id: the frame's image id.
        video: the stem of its video file.
        keypoints: (G, K, 3) x, y, v of its people.
        head_boxes: (G, 4) x, y, w, h of their heads.
        ignore_regions: its ignore regions, (P, 2) polygons in pixels.
    """

    image_id: int
    video: str
    keypoints: np.ndarray
    head_boxes: np.ndarray
    ignore_regions: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class PoseTrackGroundTruth:
    """``coco``: the COCO-format dataset for COCOeval; ``frames``: the frames of the mAP, in file order."""

    coco: dict
    frames: list[PoseTrackFrame]


def oks_area(box: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N,) mmpose's OKS scale of people without ``area`` from their (N, 4) x, y, w, h boxes."""
    x1 = np.clip(box[:, 0], 0, width - 1)
    y1 = np.clip(box[:, 1], 0, height - 1)
    x2 = np.clip(box[:, 0] + box[:, 2], 0, width - 1)
    y2 = np.clip(box[:, 1] + box[:, 3], 0, height - 1)
    return np.maximum((x2 - x1) * (y2 - y1) * OKS_AREA_FACTOR, 1.0)


def read_posetrack18_ground_truth(
    ann_dir: str | Path, *, image_root: str | Path, num_keypoints: int = NUM_JOINTS
) -> PoseTrackGroundTruth:
    """The ground truth of a folder of PoseTrack18 video files (module docstring).

    Raises:
        DatasetNotFoundError: the folder (or an image whose size is needed) does not exist.
        AnnotationError: malformed content, or a person of an evaluated frame without ``bbox`` or
            ``bbox_head``; the message names the video file and the annotation.
    """
    k = int(num_keypoints)
    fields = {"keypoints": k}
    images, annotations, frames = [], [], []
    categories: dict[int, dict] = {}
    for video in read_split(ann_dir, image_root=image_root, num_keypoints=k):
        path, content = video.path, video.content
        for category in content["categories"]:
            if isinstance(category, dict) and "keypoints" in category and "id" in category:
                categories.setdefault(int(category["id"]), category)
        sizes = {}
        for image in content["images"]:
            images.append({key: value for key, value in image.items() if key != "ignore_regions"})
            sizes[int(image["id"])] = (float(image["width"]), float(image["height"]))
        people = [a for a in content["annotations"] if not a.get("iscrowd", 0)]
        crowds = [a for a in content["annotations"] if a.get("iscrowd", 0)]
        ids = [a.get("id", f"#{i}") for i, a in enumerate(people)]
        for ann, ident in zip(people, ids):
            for key in ("bbox", "bbox_head"):
                if key not in ann:
                    raise AnnotationError(f"{path}: annotation {ident!r} is missing the key '{key}'")
        joints = stacked_keypoints(people, path, ids, fields)  # (N, K, 3)
        boxes = numeric_array([a["bbox"] for a in people], path, "bbox", ids, 4, "annotation")
        heads = numeric_array([a["bbox_head"] for a in people], path, "bbox_head", ids, 4, "annotation", pixels=True)
        image_of = np.array([int(a["image_id"]) for a in people], dtype=np.int64)
        for n, ann in enumerate(people):
            width, height = sizes[int(image_of[n])]
            area = float(oks_area(boxes[n : n + 1], width, height)[0])
            annotations.append(
                {
                    **ann,
                    "iscrowd": 0,
                    "keypoints": joints[n].reshape(-1).tolist(),
                    "num_keypoints": int(np.count_nonzero(joints[n, :, 2] > 0)),
                    "area": area,
                }
            )
        annotations += crowds
        for image in content["images"]:
            image_id = int(image["id"])
            rows = np.flatnonzero(image_of == image_id)
            if len(rows) == 0:
                continue  # the official evaluation leaves frames without people out
            frames.append(
                PoseTrackFrame(
                    image_id=image_id,
                    video=path.stem,
                    keypoints=joints[rows],
                    head_boxes=heads[rows],
                    ignore_regions=tuple(image["ignore_regions"]),
                )
            )
    if not categories:
        categories[1] = {"id": 1, "name": "person", "keypoints": [f"joint_{j}" for j in range(k)]}
    coco = {"images": images, "annotations": annotations, "categories": list(categories.values())}
    return PoseTrackGroundTruth(coco=coco, frames=frames)
