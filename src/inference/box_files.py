"""Person boxes from a detection-results JSON (COCO format) for models of person crops.

A list of ``{"bbox": [x, y, w, h], "score": s, "category_id": 1, KEY}`` where KEY says which
image: ``file_name`` (the path relative to the input folder, or just the file's name) or, for a
video, ``frame`` (0-based index). Entries are read by that key, so their order does not matter
(frames out of order, or a frame's boxes in several places, as when files are concatenated); an
entry repeated exactly (same image, box and score) counts once, with a warning. Entries of other
categories than 1 (person) are left out; ``results.json`` of `src.predict` has this form too.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from src.readers.json_files import read_json

log = logging.getLogger(__name__)


class PersonBoxes:
    """Boxes (B, 5) [x, y, w, h, score] per image name or frame index."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        entries = read_json(self.path, "person boxes file")
        if not isinstance(entries, list):
            raise ValueError(f"{self.path}: expected a JSON list of person boxes, got {type(entries).__name__}")
        self.by_key: dict[object, list[list[float]]] = defaultdict(list)
        seen: set[tuple] = set()
        repeated = 0
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError(f"{self.path}: entry {i} is not an object")
            if entry.get("category_id", 1) != 1:
                continue
            key = self._key(entry, i)
            try:
                box = [float(v) for v in entry["bbox"]] + [float(entry.get("score", 1.0))]
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{self.path}: entry {i} needs bbox [x, y, w, h] and optionally a score") from err
            if len(box) != 5 or not all(math.isfinite(v) for v in box):
                raise ValueError(f"{self.path}: entry {i} has bbox {entry['bbox']!r}; expected 4 finite numbers")
            if (key, *box) in seen:
                repeated += 1
                continue
            seen.add((key, *box))
            self.by_key[key].append(box)
        if repeated:
            log.warning(
                "%s: %d entries repeat another exactly (same image, box and score); each counted once",
                self.path,
                repeated,
            )
        if not self.by_key:
            raise ValueError(f"{self.path}: no person boxes in it")

    def _key(self, entry: dict, i: int) -> object:
        if "file_name" in entry:
            return str(entry["file_name"])
        if "frame" in entry and isinstance(entry["frame"], int):
            return int(entry["frame"])
        raise ValueError(f"{self.path}: entry {i} names no image: give file_name (images) or frame (videos)")

    def for_frame(self, name: str, index: int, *, video: bool) -> np.ndarray:
        """The boxes of one image (by relative path, then by file name) or video frame."""
        if video:
            boxes = self.by_key.get(index, [])
        else:
            boxes = self.by_key.get(name) or self.by_key.get(Path(name).name, [])
        return np.asarray(boxes, np.float32).reshape(-1, 5)
