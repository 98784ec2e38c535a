"""RootNet's "bbox_root" output files: person boxes with camera-frame root positions, by image.

The 3DMPPE RootNet writes, and PoseNet reads, a JSON list with one entry per person::

    {"image_id": int, "bbox": [x, y, w, h], "root_cam": [X, Y, Z], "score": float, "ann_id": int}

``bbox`` is the crop box in pixels, already fitted and padded by ``process_bbox`` (so it is used
as given), ``root_cam`` the predicted root in camera coordinates (mm; metres in the 3DPW file),
``score`` the detector's score (only in the MuPoTS-3D file; 1.0 with ground-truth boxes) and
``ann_id`` the annotation a box came from (only in some files). Pure numpy: metrics may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.readers.coco_3d import finite, is_int
from src.readers.errors import AnnotationError
from src.readers.json_files import read_json


@dataclass(frozen=True, eq=False)
class BBoxRootEntry:
    """One person of a bbox_root file.

    Attributes:
        image_id: the image the person is in.
        bbox: (4,) float64 crop box [x, y, w, h] in pixels, w, h > 0.
        root_cam: (3,) float64 root position in camera coordinates, Z > 0.
        score: detection score (1.0 where the file has none).
        ann_id: the annotation id where the file gives one, else None.
    """

    image_id: int
    bbox: np.ndarray
    root_cam: np.ndarray
    score: float = 1.0
    ann_id: int | None = None


def read_bbox_root_entries(path: str | Path, *, what: str = "bbox_root file") -> list[BBoxRootEntry]:
    """The entries of a bbox_root file, in file order.

    Args:
        path: the JSON file.
        what: how messages name the file when it is missing (e.g. "MuPoTS-3D bbox_root file").

    Raises:
        DatasetNotFoundError: the file does not exist.
        AnnotationError: invalid JSON, not a list, or an entry (named by its number and image id)
            without an integer image_id, with a bbox that is not 4 finite numbers with w, h > 0, a
            root_cam that is not 3 finite numbers with Z > 0, a score that is not a finite number,
            or an ann_id that is not an integer.
    """
    path = Path(path)
    data = read_json(path, what)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a list of {{image_id, bbox, root_cam}}, got a {type(data).__name__}")
    entries = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not is_int(entry.get("image_id")):
            raise AnnotationError(f"{path}: entry #{i} has no integer 'image_id'")
        where = f"{path}: entry #{i} (image id {entry['image_id']})"
        bbox, root = finite(entry.get("bbox"), 4), finite(entry.get("root_cam"), 3)
        if bbox is None or bbox[2] <= 0 or bbox[3] <= 0:
            raise AnnotationError(f"{where} has 'bbox' {entry.get('bbox')!r}, expected [x, y, w, h] with w, h > 0")
        if root is None or root[2] <= 0:
            raise AnnotationError(
                f"{where} has 'root_cam' {entry.get('root_cam')!r}, expected [X, Y, Z] with Z > 0 (in front of "
                "the camera)"
            )
        score = entry.get("score", 1.0)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
            raise AnnotationError(f"{where} has 'score' {score!r}, expected a finite number")
        ann_id = entry.get("ann_id")
        if ann_id is not None and not is_int(ann_id):
            raise AnnotationError(f"{where} has 'ann_id' {ann_id!r}, expected an integer")
        entries.append(
            BBoxRootEntry(image_id=entry["image_id"], bbox=bbox, root_cam=root, score=float(score), ann_id=ann_id)
        )
    return entries
