"""PoseTrack18's annotation files, one COCO-style JSON per video, read into COCO-format content.

A video file of the official layout (``annotations/{train,val}/<video>.json``) lists every frame of
the video in ``images`` (``id``, ``file_name`` such as ``images/val/<video>/000000.jpg``,
``vid_id``, ``frame_id``, ``is_labeled``, and optionally ``ignore_regions_x`` / ``ignore_regions_y``:
the x and the y coordinates of polygons, one list per polygon), the people of the labelled frames in
``annotations`` (17 keypoints, ``bbox``, ``bbox_head``, ``track_id``, ``category_id``) and the
person category with its 17 joint names.

`read_video` turns one such file into the COCO-format content the COCO readers and the metric take:

* only the labelled frames (``is_labeled`` true) remain, as only they are annotated;
* every ignore region of a frame becomes a crowd annotation (``iscrowd`` 1, the polygon as its
  ``segmentation``, its bounds as ``bbox``, its area, no keypoints): the COCO way of marking areas
  where people are not annotated. Whole-image (bottom-up) models then mask the regions out of their
  loss, as they do COCO's crowds, and COCOeval does not count predictions there as false positives.
  Regions of fewer than three points enclose nothing and are left out;
* frames without ``width`` / ``height`` (the official files carry none) get the size of their image
  file, read from its header;
* a person whose ``keypoints`` list is empty gets K unlabelled joints, and an ``iscrowd`` written as
  false / true becomes 0 / 1.

Errors name the video file and the entry. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.readers.coco_json import read_coco_json, require_keys
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.images import jpeg_size, read_image

#: The joints of a PoseTrack18 person (the files' category lists 17, the ears never annotated).
NUM_JOINTS = 17
#: Bytes read from the start of an image file to find its size (JPEG headers, EXIF included, fit).
_HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class Video:
    """One video file read by `read_video`.

    Attributes:
        path: the annotation file.
        content: COCO-format dict ``{"images", "annotations", "categories"}`` of the labelled frames,
            ignore regions as crowd annotations; every image also has ``ignore_regions``, a list of
            (P, 2) float64 polygons in pixels.
        frames: image id -> (file name, labelled) of every frame the file lists.
    """

    path: Path
    content: dict
    frames: dict[int, tuple[str, bool]]


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and x == x and abs(x) != float("inf")


def _labelled(value: Any, path: Path, image_id: Any) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise AnnotationError(f"{path}: image {image_id!r} has 'is_labeled' {value!r}, expected true or false")


def ignore_polygons(image: dict, path: Path) -> list[np.ndarray]:
    """The (P, 2) polygons of an image's ``ignore_regions_x`` / ``ignore_regions_y``; AnnotationError
    naming the file and the image when the two lists do not pair up or hold other than numbers."""
    image_id = image.get("id")
    xs, ys = image.get("ignore_regions_x"), image.get("ignore_regions_y")
    if xs is None and ys is None:
        return []
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise AnnotationError(
            f"{path}: image {image_id!r} has ignore regions whose 'ignore_regions_x' and 'ignore_regions_y' "
            "are not two lists of the same length (one list of coordinates per polygon)"
        )
    polygons = []
    for r, (x, y) in enumerate(zip(xs, ys)):
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
            raise AnnotationError(
                f"{path}: image {image_id!r}, ignore region {r}: x and y must be lists of the same length"
            )
        if not all(_is_number(v) for v in x + y):
            raise AnnotationError(f"{path}: image {image_id!r}, ignore region {r} holds a value that is not a number")
        if len(x) >= 3:
            polygons.append(np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=1))
    return polygons


def polygon_area(polygon: np.ndarray) -> float:
    """Area of a (P, 2) polygon (shoelace formula; the absolute value, whichever the orientation)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def image_size(path: Path, ann_file: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its JPEG header when it has one, else decoded."""
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{ann_file}: image file not found: {path} (its size is needed, as the annotation gives no width "
            "and height)"
        )
    with open(path, "rb") as f:
        size = jpeg_size(f.read(_HEADER_BYTES))
    if size is None:
        height, width = read_image(path, color_rgb=False).shape[:2]
        return int(width), int(height)
    return int(size[1]), int(size[0])


def _crowd_annotation(image_id: int, index: int, polygon: np.ndarray, category_id: int, k: int) -> dict:
    """A COCO crowd annotation for one ignore region (id negative: never one of the people's ids,
    and never 0, which pycocotools' matching reads as "unmatched")."""
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    return {
        "id": -(image_id * 1000 + index + 1),
        "image_id": image_id,
        "category_id": category_id,
        "iscrowd": 1,
        "segmentation": [polygon.reshape(-1).tolist()],
        "bbox": [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])],
        "area": polygon_area(polygon),
        "num_keypoints": 0,
        "keypoints": [0] * (3 * k),
    }


def read_video(path: str | Path, *, image_root: str | Path, num_keypoints: int = NUM_JOINTS) -> Video:
    """One PoseTrack18 video file as COCO-format content of its labelled frames (module docstring).

    Args:
        path: the video's annotation file.
        image_root: the folder the files' ``file_name`` entries are relative to (the dataset root
            in the official layout), for the sizes of frames that state none.
        num_keypoints: K, the joints given to empty keypoint lists and to the crowd annotations.

    Raises:
        DatasetNotFoundError: the file, or an image whose size is needed, does not exist.
        AnnotationError: malformed content (the message names the file and the entry).
    """
    path, image_root = Path(path), Path(image_root)
    data = read_coco_json(path)
    images, anns = data["images"], data["annotations"]
    for key, value in (("images", images), ("annotations", anns)):
        if not isinstance(value, list):
            raise AnnotationError(f"{path}: '{key}' must be a list, got {type(value).__name__}")
    k = int(num_keypoints)
    categories = [c for c in data.get("categories") or [] if isinstance(c, dict) and "keypoints" in c]
    person = int(categories[0]["id"]) if categories and "id" in categories[0] else 1

    frames: dict[int, tuple[str, bool]] = {}
    kept_images, crowds = [], []
    for i, image in enumerate(images):
        require_keys(image, ("id", "file_name", "is_labeled"), path, "image", i)
        try:
            image_id = int(image["id"])
        except (TypeError, ValueError) as err:
            raise AnnotationError(f"{path}: image #{i} has a non-numeric id {image['id']!r}") from err
        if image_id in frames:
            raise AnnotationError(f"{path}: image id {image_id} is listed twice")
        labelled = _labelled(image["is_labeled"], path, image_id)
        frames[image_id] = (str(image["file_name"]), labelled)
        if not labelled:
            continue
        polygons = ignore_polygons(image, path)
        entry = {key: value for key, value in image.items() if not key.startswith("ignore_regions")}
        entry["id"] = image_id
        entry["ignore_regions"] = polygons
        if "width" not in image or "height" not in image:
            entry["width"], entry["height"] = image_size(image_root / str(image["file_name"]), path)
        kept_images.append(entry)
        crowds += [_crowd_annotation(image_id, r, p, person, k) for r, p in enumerate(polygons)]

    people = []
    for i, ann in enumerate(anns):
        require_keys(ann, ("image_id",), path, "annotation", i)
        image_id = ann["image_id"]
        if image_id not in frames:
            raise AnnotationError(
                f"{path}: annotation {ann.get('id', f'#{i}')!r} refers to image_id {image_id!r}, which is not in "
                "'images'"
            )
        if not frames[image_id][1]:
            continue  # a person on a frame that is not labelled: not a sample
        if ann.get("keypoints") == []:
            ann = {**ann, "keypoints": [0] * (3 * k)}
        if isinstance(ann.get("iscrowd"), bool):  # some copies write false / true
            ann = {**ann, "iscrowd": int(ann["iscrowd"])}
        people.append(ann)
    content = {"images": kept_images, "annotations": people + crowds, "categories": data.get("categories") or []}
    return Video(path=path, content=content, frames=frames)


def video_files(ann_dir: str | Path) -> list[Path]:
    """The video files (``*.json``) of a split's folder, sorted by name; DatasetNotFoundError when the
    folder is missing or holds none."""
    ann_dir = Path(ann_dir)
    if not ann_dir.is_dir():
        raise DatasetNotFoundError(f"PoseTrack18 annotation folder not found: {ann_dir}/")
    files = sorted(p for p in ann_dir.iterdir() if p.suffix == ".json" and p.is_file())
    if not files:
        raise DatasetNotFoundError(f"{ann_dir}/ holds no video annotation files (*.json)")
    return files


def read_split(ann_dir: str | Path, *, image_root: str | Path, num_keypoints: int = NUM_JOINTS) -> list[Video]:
    """Every video of a split's folder (`read_video`), checked for image ids shared by two files."""
    files = video_files(ann_dir)
    videos = [read_video(p, image_root=image_root, num_keypoints=num_keypoints) for p in files]
    owner: dict[int, Path] = {}
    for video in videos:
        for image_id in video.frames:
            if image_id in owner:
                raise AnnotationError(f"{video.path}: image id {image_id} is also used in {owner[image_id]}")
            owner[image_id] = video.path
    return videos


def frame_table(videos: Sequence[Video]) -> dict:
    """COCO-format content listing every frame of the videos (labelled ones with their sizes, the
    others with size 0) and no annotation: what person detections are matched against by image id
    (detection records use the file names only)."""
    sizes = {
        int(image["id"]): (image["width"], image["height"]) for video in videos for image in video.content["images"]
    }
    images = []
    for video in videos:
        for image_id, (name, _) in video.frames.items():
            width, height = sizes.get(image_id, (0, 0))
            images.append({"id": image_id, "file_name": name, "width": width, "height": height})
    categories = videos[0].content["categories"] if videos else []
    return {"images": images, "annotations": [], "categories": categories}


def labelled_image_ids(videos: Sequence[Video]) -> set[int]:
    """Ids of the labelled frames of the videos."""
    return {int(image["id"]) for video in videos for image in video.content["images"]}
