"""COCO-style 3D person files of the 3DMPPE repositories (``MuCo-3DHP.json``, ``MuPoTS-3D.json``) as
validated numpy arrays.

Both files hold ``images`` (id, file_name, width, height and the camera: ``f`` [fx, fy] and ``c``
[cx, cy], or ``intrinsic`` [fx, fy, cx, cy]) and ``annotations`` (image_id, keypoints_cam (J, 3)
mm, keypoints_img (J, 2) pixels, keypoints_vis (J,), bbox [x, y, w, h] pixels). Every malformed
entry raises `AnnotationError` naming the file and the entry. Pure numpy: metrics may import it.

Shapes: M images, N people, J joints of the file, K joints of the model's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.geometry import process_bbox
from src.layouts import KeypointInfo, get_keypoint_info, joint_mapping
from src.readers.errors import AnnotationError

#: The camera keys of an image entry, by style: MuCo-3DHP has ``f`` and ``c``, MuPoTS-3D ``intrinsic``.
CAMERA_STYLES = ("f_c", "intrinsic")


def is_int(x: Any) -> bool:
    """An int that is not a bool (JSON ``true`` is no image id)."""
    return isinstance(x, int) and not isinstance(x, bool)


def finite(value: Any, size: int) -> np.ndarray | None:
    """``value`` as a flat float64 array of ``size`` finite numbers, or None."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return arr if arr.size == size and bool(np.isfinite(arr).all()) else None


def split_lists(data: Any, path: Path) -> tuple[list, list]:
    """The ``images`` and ``annotations`` lists of a parsed COCO-style file."""
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object {{images, annotations}}, got a {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f"{path}: expected a list under {key!r}, got {type(data.get(key)).__name__}")
    return data["images"], data["annotations"]


@dataclass(frozen=True, eq=False)
class ImageTable:
    """M validated image entries, in file order.

    Attributes:
        ids: (M,) int64 image ids.
        file_names: M paths relative to the image folder.
        sizes: (M, 2) float64 width, height in pixels.
        f, c: (M, 2) float64 focal lengths and principal points in pixels.
        rows: image id -> row.
    """

    ids: np.ndarray
    file_names: tuple[str, ...]
    sizes: np.ndarray
    f: np.ndarray
    c: np.ndarray
    rows: dict[int, int]

    def __len__(self) -> int:
        return len(self.file_names)

    def describe(self, row: int) -> str:
        """The words naming one row in messages: image id I ('file')."""
        return f"image id {int(self.ids[row])} ({self.file_names[row]!r})"


def _camera(img: dict, index: int, path: Path, style: str) -> tuple[np.ndarray, np.ndarray]:
    """(f (2,), c (2,)) of one image entry, validated."""
    where = f"{path}: image #{index} (id {img['id']}, {img['file_name']!r})"
    if style == "intrinsic":
        values = finite(img.get("intrinsic"), 4)
        if values is None or (values[:2] <= 0).any():
            raise AnnotationError(
                f"{where} has 'intrinsic' {img.get('intrinsic')!r}, expected [fx, fy, cx, cy] in pixels with fx, fy > 0"
            )
        return values[:2], values[2:]
    f, c = finite(img.get("f"), 2), finite(img.get("c"), 2)
    if f is None or (f <= 0).any():
        raise AnnotationError(f"{where} has 'f' {img.get('f')!r}, expected [fx, fy] in pixels with fx, fy > 0")
    if c is None:
        raise AnnotationError(f"{where} has 'c' {img.get('c')!r}, expected [cx, cy] in pixels")
    return f, c


def read_images(images: list, path: Path, *, camera: str) -> ImageTable:
    """Validate the image entries: integer id (unique), file name, positive integer width and
    height, and the camera of ``camera`` style (`CAMERA_STYLES`)."""
    if camera not in CAMERA_STYLES:
        raise ValueError(f"camera must be one of {CAMERA_STYLES}, got {camera!r}")
    m = len(images)
    ids, sizes = np.zeros(m, np.int64), np.zeros((m, 2))
    focal, centre = np.zeros((m, 2)), np.zeros((m, 2))
    names: list[str] = []
    rows: dict[int, int] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise AnnotationError(f"{path}: image #{i} is a {type(img).__name__}, expected an object")
        if not is_int(img.get("id")):
            raise AnnotationError(f"{path}: image #{i} has 'id' {img.get('id')!r}, expected an integer")
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            raise AnnotationError(
                f"{path}: image #{i} (id {img['id']}) has 'file_name' {img.get('file_name')!r}, expected a path"
            )
        for key in ("width", "height"):
            size = img.get(key)
            if not (is_int(size) or (isinstance(size, float) and size.is_integer())) or size <= 0:
                raise AnnotationError(
                    f"{path}: image #{i} (id {img['id']}, {img['file_name']!r}) has {key!r} {img.get(key)!r}, "
                    "expected a positive integer"
                )
        if rows.setdefault(img["id"], i) != i:
            raise AnnotationError(
                f"{path}: image id {img['id']} is used twice (images #{rows[img['id']]} and #{i}, {img['file_name']!r})"
            )
        ids[i], sizes[i] = img["id"], (img["width"], img["height"])
        focal[i], centre[i] = _camera(img, i, path, camera)
        names.append(img["file_name"])
    return ImageTable(ids=ids, file_names=tuple(names), sizes=sizes, f=focal, c=centre, rows=rows)


@dataclass(frozen=True, eq=False)
class PersonTable:
    """N validated person annotations, in file order.

    Attributes:
        annotation_index: (N,) int64 position of each in the file's ``annotations`` list.
        image_row: (N,) int64 row of its image in the `ImageTable`.
        joints_cam: (N, J, 3) float64 camera-frame joints in mm (every Z > 0).
        joints_img: (N, J, 2) float64 image joints in pixels.
        visible: (N, J) bool ``keypoints_vis > 0``, or None where the file's flags were not read.
        boxes: (N, 4) float64 annotation boxes [x, y, w, h], w, h >= 0, overlapping the image.
    """

    annotation_index: np.ndarray
    image_row: np.ndarray
    joints_cam: np.ndarray
    joints_img: np.ndarray
    visible: np.ndarray | None
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.annotation_index)

    def take(self, index: np.ndarray) -> PersonTable:
        """The people at ``index`` (integer indices or a boolean mask), in that order."""
        return PersonTable(
            annotation_index=self.annotation_index[index],
            image_row=self.image_row[index],
            joints_cam=self.joints_cam[index],
            joints_img=self.joints_img[index],
            visible=None if self.visible is None else self.visible[index],
            boxes=self.boxes[index],
        )


class _Where:
    """Names one annotation in messages: 'FILE: annotation #j (image id I, 'file')'."""

    def __init__(self, path: Path, table: ImageTable, ann_index: np.ndarray, rows: np.ndarray) -> None:
        self.path, self.table, self.ann_index, self.rows = path, table, ann_index, rows

    def __call__(self, n: int) -> str:
        return f"{self.path}: annotation #{int(self.ann_index[n])} ({self.table.describe(int(self.rows[n]))})"


def _stack(values: list, shape: tuple[int, ...], key: str, expected: str, where: _Where) -> np.ndarray:
    """(N, *shape) float64 of N annotation values; on failure the first culprit is named.

    ``shape[0]`` is the file's joint count J; ``expected`` says what one joint is (e.g. "[X, Y, Z] mm").
    """
    n = len(values)
    if not n:
        return np.zeros((0, *shape))
    try:  # one conversion for all
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # ragged or non-numeric: the culprit is found below
        arr = None
    if arr is not None and arr.shape == (n, *shape):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(n, -1)).all(axis=1))
        if len(bad):
            raise AnnotationError(f"{where(int(bad[0]))} has NaN or infinite values in {key!r}")
        return arr
    j = shape[0]
    for i, value in enumerate(values):
        if not isinstance(value, list):
            raise AnnotationError(f"{where(i)} has {key!r} = {value!r}, expected {j} x {expected}")
        if len(value) != j:
            raise AnnotationError(f"{where(i)} has {len(value)} joints in {key!r}, expected {j} x {expected}")
        try:
            one = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            one = None
        if one is None or one.shape != shape:
            bad = next((k for k, p in enumerate(value) if np.shape(p) != shape[1:]), None)
            if bad is not None:
                raise AnnotationError(f"{where(i)} has {key!r} joint {bad} = {value[bad]!r}, expected {expected}")
            raise AnnotationError(f"{where(i)} has a non-numeric value in {key!r}")
    raise AnnotationError(f"{where.path}: the {key!r} values do not form an (N, {', '.join(map(str, shape))}) array")


def read_people(
    annotations: list,
    path: Path,
    table: ImageTable,
    *,
    num_joints: int,
    read_visible: bool,
    valid_key: str | None = None,
) -> tuple[PersonTable, int]:
    """Validate the person annotations of a file whose images are ``table``.

    Args:
        annotations: the file's ``annotations`` list.
        path: the file (messages).
        table: its validated images; every annotation's ``image_id`` must be one of them.
        num_joints: J, the joint count every annotation must have (MuCo-3DHP 21, MuPoTS-3D 17).
        read_visible: read and validate ``keypoints_vis`` (else `PersonTable.visible` is None).
        valid_key: a 0/1 flag (MuPoTS-3D: ``is_valid``); annotations with 0 are skipped unread.

    Returns:
        The people and the number of annotations skipped by ``valid_key``.
    """
    kept: list[int] = []
    rows: list[int] = []
    skipped = 0
    for j, ann in enumerate(annotations):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if not is_int(image_id):
            raise AnnotationError(f"{path}: annotation #{j} has no integer 'image_id'")
        row = table.rows.get(image_id)
        if row is None:
            raise AnnotationError(f"{path}: annotation #{j} has image id {image_id}, which 'images' does not list")
        if valid_key is not None:
            flag = ann.get(valid_key)
            if not isinstance(flag, (int, float)) or flag not in (0, 1):  # bools, 0 / 1 and 0.0 / 1.0
                raise AnnotationError(
                    f"{path}: annotation #{j} ({table.describe(row)}) has {valid_key!r} {flag!r}, expected 0 or 1"
                )
            if not flag:
                skipped += 1
                continue
        kept.append(j)
        rows.append(row)
    ann_index, image_row = np.asarray(kept, np.int64), np.asarray(rows, np.int64)
    where = _Where(path, table, ann_index, image_row)
    chosen = [annotations[j] for j in kept]
    jn = int(num_joints)
    joints_cam = _stack([a.get("keypoints_cam") for a in chosen], (jn, 3), "keypoints_cam", "[X, Y, Z] mm", where)
    behind = np.flatnonzero((joints_cam[:, :, 2] <= 0).any(axis=1))
    if len(behind):
        n = int(behind[0])
        k = int(np.flatnonzero(joints_cam[n, :, 2] <= 0)[0])
        raise AnnotationError(
            f"{where(n)} has joint {k} behind the camera in 'keypoints_cam' (Z = {joints_cam[n, k, 2]:g} mm; "
            "camera-frame joints have Z > 0)"
        )
    joints_img = _stack([a.get("keypoints_img") for a in chosen], (jn, 2), "keypoints_img", "[u, v] pixels", where)
    visible = None
    if read_visible:
        flags = [_flat_flags(a.get("keypoints_vis")) for a in chosen]
        visible = _stack(flags, (jn,), "keypoints_vis", "flags", where) > 0
    boxes = _boxes([a.get("bbox") for a in chosen], where)
    _check_inside(boxes, table.sizes[image_row], where)
    people = PersonTable(
        annotation_index=ann_index,
        image_row=image_row,
        joints_cam=joints_cam,
        joints_img=joints_img,
        visible=visible,
        boxes=boxes,
    )
    return people, skipped


def _flat_flags(value: Any) -> Any:
    """``keypoints_vis`` as J flags: the files hold (J,) or (J, 1)."""
    if isinstance(value, list) and all(isinstance(v, list) and len(v) == 1 for v in value):
        return [v[0] for v in value]
    return value


def _boxes(values: list, where: _Where) -> np.ndarray:
    """(N, 4) float64 boxes [x, y, w, h] with w, h >= 0."""
    n = len(values)
    try:
        boxes = np.asarray(values, dtype=np.float64).reshape(n, 4)
    except (TypeError, ValueError):
        boxes = None
    if boxes is None or not np.isfinite(boxes).all() or (boxes[:, 2:] < 0).any():
        i = next(i for i, v in enumerate(values) if (b := finite(v, 4)) is None or (b[2:] < 0).any())
        raise AnnotationError(f"{where(i)} has 'bbox' {values[i]!r}, expected [x, y, w, h] pixels with w, h >= 0")
    return boxes


def _check_inside(boxes: np.ndarray, sizes: np.ndarray, where: _Where) -> None:
    """AnnotationError for the first box that does not overlap its image at all."""
    if not len(boxes):
        return
    x, y, w, h = boxes.T
    outside = (x >= sizes[:, 0]) | (y >= sizes[:, 1]) | (x + w <= 0) | (y + h <= 0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise AnnotationError(
            f"{where(i)} has 'bbox' {boxes[i].tolist()}, entirely outside its "
            f"{int(sizes[i, 0])} x {int(sizes[i, 1])} image"
        )


def crop_boxes(boxes: np.ndarray, sizes: np.ndarray, aspect_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The official crop boxes of N people: `process_bbox`, and (N,) bool ``keep``, False where the
    official code drops the box or the result has no area (a box of one pixel)."""
    crops, keep = process_bbox(boxes, sizes[:, 0], sizes[:, 1], aspect_ratio)
    keep &= np.nan_to_num(crops[:, 2] * crops[:, 3]) > 0
    return crops, keep


def layout_index(
    keypoint_info: KeypointInfo, file_layout: str, dataset: str, *, allow_missing: bool = False
) -> np.ndarray:
    """(K,) int64: for each joint of the model's layout, its index among the file's joints
    (``file_layout``, e.g. "muco21"), matched by name (`src.layouts.joint_mapping`); -1 for a joint
    the file lacks when ``allow_missing`` (evaluation data: such joints have no ground truth).

    Raises:
        ValueError: the layout has a joint that the file does not have (without ``allow_missing``).
    """
    source = get_keypoint_info(file_layout)
    index = np.asarray(joint_mapping(source, keypoint_info), dtype=np.int64)
    missing = [name for name, i in zip(keypoint_info.keypoint_names, index) if i < 0]
    if missing and not allow_missing:
        raise ValueError(
            f"keypoint layout {keypoint_info.name!r} has the joints {missing}, which {dataset} does not have "
            f"(it has {', '.join(source.keypoint_names)})"
        )
    return index


def check_aspect_ratio(aspect_ratio: float) -> float:
    """``aspect_ratio`` as a float, or ValueError unless it is > 0."""
    if not aspect_ratio > 0:
        raise ValueError(f"aspect_ratio must be > 0 (input width / height), got {aspect_ratio}")
    return float(aspect_ratio)


def layout_joints(
    people: PersonTable, index: np.ndarray, visible_from_file: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(joints_img (N, K, 3) [u, v, Z mm], joints_cam (N, K, 3) mm, visible (N, K)) float32 in the
    model's layout (``index`` from `layout_index`); every joint visible unless ``visible_from_file``;
    a joint the file lacks (index -1) is zeros and not visible."""
    have = index >= 0
    safe = np.where(have, index, 0)
    cam = people.joints_cam[:, safe] * have[None, :, None]
    img = np.concatenate([people.joints_img[:, safe] * have[None, :, None], cam[:, :, 2:]], axis=2)
    if visible_from_file:
        if people.visible is None:
            raise ValueError("the file's visibility flags were not read")
        visible = people.visible[:, safe].astype(np.float32)
    else:
        visible = np.ones(cam.shape[:2], np.float32)
    visible *= have[None, :]
    return img.astype(np.float32), cam.astype(np.float32), visible


VISIBILITY = ("all", "file")


def check_visibility(visibility: str) -> str:
    """``visibility`` if it is one of `VISIBILITY`, else ValueError."""
    if visibility not in VISIBILITY:
        raise ValueError(
            f"visibility must be 'all' (every joint visible, PoseNet) or 'file' (keypoints_vis, RootNet), "
            f"got {visibility!r}"
        )
    return visibility
