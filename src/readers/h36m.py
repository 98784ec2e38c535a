"""Human3.6M in the layout of the 3DMPPE PoseNet repository -> 3D person records.

Layout on disk (folders and subjects can be overridden)::

    ROOT/annotations/Human36M_subject{S}_data.json       COCO-style images and one person box per image
    ROOT/annotations/Human36M_subject{S}_camera.json     {cam_idx: {"R": 3x3, "t": 3, "f": 2, "c": 2}}
    ROOT/annotations/Human36M_subject{S}_joint_3d.json   {action_idx: {subaction_idx: {frame_idx: 17 x [x, y, z]}}}
    ROOT/images/s_XX_act_XX_subact_XX_ca_XX/s_XX_act_XX_subact_XX_ca_XX_XXXXXX.jpg

S is the subject number without padding; world joints are in mm, in the 17-joint order of
`H36M17`; ``X_cam = R X_world + t`` (conventions in `src.camera`). One record per kept image
(K keypoints of the model's layout)::

    {"sample_id": int, "image_id": int, "image_file": str, "bbox": (4,) float32 [x, y, w, h],
     "joints_img": (K, 3) float32 [u, v, Z mm], "joints_cam": (K, 3) float32 mm, "visible": (K,) float32,
     "root_depth": float mm, "f": (2,) float32, "c": (2,) float32, "subject": int,
     "action": int (index into ACTIONS), "subaction": int, "camera": int, "frame": int, "have_depth": 1.0}

As the official reader (PN ``data/Human36M/Human36M.py``): an image is kept when ``frame_idx %
step == 0`` (every 5th frame for training, every 64th for evaluation); the joints go world ->
camera -> pixel; a layout joint the file lacks but can derive ("thorax" = mean of the shoulders,
the official ``add_thorax``) is formed in 3D and then projected, so ``joints_img`` and
``joints_cam`` agree; the crop box is ``process_bbox`` of the annotation box, and an image whose
box is empty after clipping is skipped. With ``use_gt_info=False`` the validation boxes and root
depths come from a RootNet "bbox_root" file instead, boxes used as given. ``joints_img`` keeps the
absolute camera depth Z (the official code stores Z - Z_root there); ``root_depth`` is the
pelvis Z, so the relative depth is one subtraction away.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.camera import camera_to_pixel, world_to_camera
from src.geometry import process_bbox
from src.layouts import DERIVED_JOINTS, H36M17, ROOT_JOINT, KeypointInfo, get_keypoint_info
from src.readers.bbox_root import read_bbox_root_entries
from src.readers.errors import AnnotationError, DatasetNotFoundError, missing_mixed_2d
from src.readers.h36m_naming import ACTIONS, FIRST_ACTION, action_name, subject_files
from src.readers.json_files import read_json

log = logging.getLogger(__name__)

#: The 17 joints of the joint files, in file order.
JOINT_NAMES = H36M17.keypoint_names


SPLITS = ("train", "val")

#: Integer keys every kept image entry must have (besides the string "file_name").
IMAGE_INT_KEYS = ("id", "width", "height", "subject", "action_idx", "subaction_idx", "cam_idx", "frame_idx")


# --------------------------------------------------------------------------- reading and validating
def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _finite(value: Any, size: int) -> np.ndarray | None:
    """``value`` as a flat float64 array of ``size`` finite numbers, or None."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return arr if arr.size == size and bool(np.isfinite(arr).all()) else None


def describe_image(img: dict) -> str:
    """'subject S, action A (Name), subaction B, camera C, frame F (image id I, 'file')' of a validated image."""
    a = img["action_idx"]
    name = f" ({action_name(a)})" if FIRST_ACTION <= a < FIRST_ACTION + len(ACTIONS) else ""
    return (
        f"subject {img['subject']}, action {a}{name}, subaction {img['subaction_idx']}, camera {img['cam_idx']}, "
        f"frame {img['frame_idx']} (image id {img['id']}, {img['file_name']!r})"
    )


def read_h36m_cameras(path: str | Path) -> dict[int, dict[str, np.ndarray]]:
    """Read a ``Human36M_subject{S}_camera.json`` file.

    Returns:
        ``{cam_idx: {"R": (3, 3), "t": (3,), "f": (2,), "c": (2,)}}`` float64 arrays.

    Raises:
        DatasetNotFoundError: the file does not exist.
        AnnotationError: invalid JSON, not an object, a key that is not a camera number, or a
            camera whose R, t, f or c is missing or not that many finite numbers.
    """
    path = Path(path)
    data = read_json(path, "Human3.6M camera file")
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object {{cam_idx: {{R, t, f, c}}}}, got a {type(data).__name__}")
    cameras = {}
    for key, cam in data.items():
        try:
            idx = int(key)
        except ValueError:
            raise AnnotationError(f"{path}: key {key!r} is not a camera number") from None
        if not isinstance(cam, dict):
            raise AnnotationError(f"{path}: camera {key} is a {type(cam).__name__}, expected {{R, t, f, c}}")
        parsed = {}
        for field, shape in (("R", (3, 3)), ("t", (3,)), ("f", (2,)), ("c", (2,))):
            arr = _finite(cam.get(field), math.prod(shape))
            if arr is None:
                expected = " x ".join(map(str, shape))
                raise AnnotationError(
                    f"{path}: camera {key} has {field!r} = {cam.get(field)!r}, expected {expected} finite numbers"
                )
            parsed[field] = arr.reshape(shape)
        cameras[idx] = parsed
    return cameras


def read_bbox_root(path: str | Path) -> dict[int, tuple[np.ndarray, float]]:
    """Read a RootNet "bbox_root" file: a list of ``{"image_id", "bbox": [x, y, w, h], "root_cam": [X, Y, Z]}``
    (`src.readers.bbox_root.read_bbox_root_entries`; the last entry of an image wins).

    Returns:
        ``{image_id: (bbox (4,) float64, root depth Z in mm)}``.

    Raises:
        DatasetNotFoundError: the file does not exist.
        AnnotationError: invalid JSON, not a list, an entry without an integer image_id, a bbox
            that is not 4 finite numbers with w, h > 0, or a root_cam that is not 3 finite numbers
            with Z > 0.
    """
    entries = read_bbox_root_entries(path, what="Human3.6M bbox_root file")
    return {entry.image_id: (entry.bbox, float(entry.root_cam[2])) for entry in entries}


def _image_lists(data: Any, path: Path) -> tuple[list, list]:
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object {{images, annotations}}, got a {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f"{path}: expected a list under {key!r}, got {type(data.get(key)).__name__}")
    return data["images"], data["annotations"]


def _frame_indices(images: list, path: Path) -> np.ndarray:
    """(M,) frame_idx of every image, read in one pass; the culprit is searched only on failure."""
    try:
        frames = np.asarray([img["frame_idx"] for img in images])
    except (KeyError, TypeError):
        frames = None
    if frames is not None and frames.shape == (len(images),) and (not len(images) or frames.dtype.kind in "iu"):
        return frames.astype(np.int64, copy=False)
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise AnnotationError(f"{path}: image #{i} is a {type(img).__name__}, expected an object")
        if not _is_int(img.get("frame_idx")):
            raise AnnotationError(f"{path}: image #{i} has 'frame_idx' {img.get('frame_idx')!r}, expected an integer")
    raise AnnotationError(f"{path}: the 'frame_idx' values do not form a list of integers")


def _check_image(img: dict, index: int, path: Path, subject: int) -> None:
    """A kept image entry has the integer keys, a file name, its file's subject, a known action, a size."""
    for key in IMAGE_INT_KEYS:
        if not _is_int(img.get(key)):
            raise AnnotationError(f"{path}: image #{index} has {key!r} = {img.get(key)!r}, expected an integer")
    if not isinstance(img.get("file_name"), str) or not img["file_name"]:
        raise AnnotationError(f"{path}: image #{index} has 'file_name' {img.get('file_name')!r}, expected a path")
    if img["subject"] != subject:
        raise AnnotationError(
            f"{path}: image #{index} ({describe_image(img)}) belongs to subject {img['subject']}, "
            f"but this is the file of subject {subject}"
        )
    if not FIRST_ACTION <= img["action_idx"] < FIRST_ACTION + len(ACTIONS):
        raise AnnotationError(
            f"{path}: image #{index} ({describe_image(img)}) has action_idx {img['action_idx']}, "
            f"expected {FIRST_ACTION}..{FIRST_ACTION + len(ACTIONS) - 1}"
        )
    if img["width"] <= 0 or img["height"] <= 0:
        raise AnnotationError(
            f"{path}: image #{index} ({describe_image(img)}) has size {img['width']} x {img['height']}"
        )


def _kept_images(images: list, path: Path, subject: int, step: int) -> list[dict]:
    """The image entries with frame_idx % step == 0, in file order, validated."""
    kept = np.flatnonzero(_frame_indices(images, path) % step == 0).tolist()
    for i in kept:
        _check_image(images[i], i, path, subject)
    out = [images[i] for i in kept]
    ids: dict[int, int] = {}
    for n, img in enumerate(out):
        if ids.setdefault(img["id"], n) != n:
            raise AnnotationError(f"{path}: image id {img['id']} is used twice ({describe_image(img)})")
    return out


def _annotation_boxes(annotations: list, images: list[dict], path: Path) -> np.ndarray:
    """(N, 4) float64 annotation boxes [x, y, w, h] of the N ``images`` (exactly one annotation each)."""
    wanted = {img["id"]: n for n, img in enumerate(images)}
    found: list[Any] = [None] * len(images)
    for j, ann in enumerate(annotations):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if not _is_int(image_id):
            raise AnnotationError(f"{path}: annotation #{j} has no integer 'image_id'")
        n = wanted.get(image_id)
        if n is None:
            continue
        if found[n] is not None:
            raise AnnotationError(
                f"{path}: image {describe_image(images[n])} has more than one annotation (#{found[n][0]} and #{j}); "
                "Human3.6M has one person per image"
            )
        found[n] = (j, ann.get("bbox"))
    missing = next((n for n, item in enumerate(found) if item is None), None)
    if missing is not None:
        raise AnnotationError(f"{path}: no annotation for the image {describe_image(images[missing])}")
    try:  # one conversion for all; the culprit is searched only on failure
        boxes = np.asarray([item[1] for item in found], dtype=np.float64).reshape(len(found), 4)
    except (TypeError, ValueError):
        boxes = np.full((len(found), 4), np.nan)
    if np.isfinite(boxes).all():
        return boxes
    n = next(n for n, item in enumerate(found) if _finite(item[1], 4) is None)
    raise AnnotationError(
        f"{path}: annotation #{found[n][0]} of {describe_image(images[n])} has 'bbox' {found[n][1]!r}, "
        "expected [x, y, w, h]"
    )


def _missing_joint_key(joints: dict, img: dict) -> str:
    a, s = str(img["action_idx"]), str(img["subaction_idx"])
    if not isinstance(joints.get(a), dict):
        return f"action {a}"
    if not isinstance(joints[a].get(s), dict):
        return f"subaction {s} of action {a}"
    return f"frame {img['frame_idx']} of action {a}, subaction {s}"


def _world_joints(joints: Any, images: list[dict], path: Path) -> np.ndarray:
    """(N, 17, 3) float64 world joints of the N ``images`` from a joint file's content."""
    if not isinstance(joints, dict):
        raise AnnotationError(
            f"{path}: expected an object {{action_idx: {{subaction_idx: {{frame_idx: joints}}}}}}, "
            f"got a {type(joints).__name__}"
        )
    rows = []
    for img in images:
        try:
            rows.append(joints[str(img["action_idx"])][str(img["subaction_idx"])][str(img["frame_idx"])])
        except (KeyError, TypeError):
            raise AnnotationError(
                f"{path}: no joints for {describe_image(img)}: the file has no {_missing_joint_key(joints, img)}"
            ) from None
    k = len(JOINT_NAMES)
    if not rows:
        return np.zeros((0, k, 3))
    try:
        world = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):  # ragged: the culprit is found below
        world = None
    if world is None or world.shape != (len(rows), k, 3):
        for img, row in zip(images, rows):
            if not isinstance(row, list) or len(row) != k:
                got = f"{len(row)} joints" if isinstance(row, list) else repr(row)
                raise AnnotationError(
                    f"{path}: the joints of {describe_image(img)} are {got}, expected {k} x [x, y, z]"
                )
            j = next((j for j, p in enumerate(row) if not isinstance(p, list) or len(p) != 3), None)
            if j is not None:
                raise AnnotationError(
                    f"{path}: joint {j} ({JOINT_NAMES[j]}) of {describe_image(img)} is {row[j]!r}, expected [x, y, z]"
                )
            try:
                np.asarray(row, dtype=np.float64)
            except (TypeError, ValueError):
                raise AnnotationError(f"{path}: the joints of {describe_image(img)} hold a non-numeric value") from None
        raise AnnotationError(f"{path}: the joints do not form an (N, {k}, 3) array")
    bad = np.flatnonzero(~np.isfinite(world).all(axis=(1, 2)))
    if len(bad):
        raise AnnotationError(f"{path}: the joints of {describe_image(images[bad[0]])} hold NaN or infinite values")
    return world


def _layout_weights(keypoint_info: KeypointInfo) -> np.ndarray:
    """(K, 17) matrix W with layout joints = W @ file joints: a copy, or the mean for derived joints."""
    index = {name: i for i, name in enumerate(JOINT_NAMES)}
    weights = np.zeros((keypoint_info.num_keypoints, len(JOINT_NAMES)))
    for k, name in enumerate(keypoint_info.keypoint_names):
        sources = (name,) if name in index else DERIVED_JOINTS.get(name)
        if sources is None:
            raise ValueError(
                f"keypoint layout {keypoint_info.name!r} has the joint {name!r}, which Human3.6M neither has "
                f"({', '.join(JOINT_NAMES)}) nor derives ({', '.join(DERIVED_JOINTS)})"
            )
        weights[k, [index[s] for s in sources]] = 1.0 / len(sources)
    return weights


# --------------------------------------------------------------------------- the missing-data message
def _layout_message(root: Path, what: str, missing: list[str], subjects: dict[str, Sequence[int]]) -> str:
    """The one message of a missing Human3.6M dataset: what is missing, the layout, how to get it."""
    shown_root = f"{root}" + ("" if root.is_absolute() else f" (= {os.path.abspath(root)})")
    chosen = "; ".join(f"{split} {', '.join(map(str, s))}" for split, s in subjects.items())
    return "\n".join(
        [
            f"Human3.6M {what} data not found. Missing: " + "; ".join(dict.fromkeys(missing)) + ".",
            "",
            f"Expected layout under ROOT = {shown_root} (subjects S: {chosen}):",
            "  ROOT/annotations/Human36M_subject{S}_data.json       images and person boxes",
            "  ROOT/annotations/Human36M_subject{S}_camera.json     cameras R, t (mm), f, c (pixels)",
            "  ROOT/annotations/Human36M_subject{S}_joint_3d.json   world joints (mm), 17 per frame",
            "  ROOT/images/s_XX_act_XX_subact_XX_ca_XX/s_XX_act_XX_subact_XX_ca_XX_XXXXXX.jpg",
            "",
            "Get it:",
            "  Human3.6M is distributed by its authors under a licence: register on the Human3.6M website",
            "    and accept it. The 3DMPPE PoseNet repository (3DMPPE_POSENET_RELEASE) links the pre-processed",
            "    annotations and images in its data section; unpack them so that annotations/ and images/",
            "    lie in ROOT as above (a root holding only some subjects works for those subjects).",
            "",
            "Point to another location with e.g. data.root=/path/to/human36m; choose subjects with",
            "data.train_subjects=[1,5,6,7,8] data.val_subjects=[9,11] (frame steps: data.train_frame_step=5",
            "data.val_frame_step=64), folders with data.reader.annotations=... data.reader.images=..., and",
            "RootNet boxes and root depths with data.reader.use_gt_info=false data.reader.bbox_root_file=...",
            "No data at hand? data=synthetic_h36m writes a small dataset in this layout offline.",
        ]
    )


# --------------------------------------------------------------------------- reader protocol
class Human36MReader:
    """The Human3.6M source of the data module (3DMPPE layout): checks files, reads 3D person records.

    Args:
        root: dataset root; the paths below are resolved against it unless absolute.
        train_subjects, val_subjects: the subjects of each split (protocol 2: 1, 5, 6, 7, 8 / 9, 11).
        train_frame_step, val_frame_step: keep the frames with frame_idx % step == 0.
        annotations: the folder of the per-subject JSON files.
        images: the image folder.
        use_gt_info: validation boxes and root depths from the ground truth (True) or from
            ``bbox_root_file`` (False; the official RootNet setting).
        bbox_root_file: the RootNet "bbox_root" JSON; needed when ``use_gt_info`` is False.
        check_images: check that every kept image exists when reading a split.
        extra_2d: another reader (e.g. an `MPIIReader`) whose training records are mixed in.
        mix_2d: whether ``extra_2d`` is used.

    Raises:
        ValueError: no subjects, a frame step < 1, or ``use_gt_info`` False without a bbox_root file.
    """

    name = "h36m"
    keypoint_layout = "h36m17"

    def __init__(
        self,
        *,
        root: str | Path,
        train_subjects: Sequence[int] = (1, 5, 6, 7, 8),
        val_subjects: Sequence[int] = (9, 11),
        train_frame_step: int = 5,
        val_frame_step: int = 64,
        annotations: str = "annotations",
        images: str = "images",
        use_gt_info: bool = True,
        bbox_root_file: str | None = None,
        check_images: bool = True,
        extra_2d: Any = None,
        mix_2d: bool = True,
    ) -> None:
        self.root = Path(os.path.abspath(Path(root).expanduser()))
        self.subjects = {"train": tuple(int(s) for s in train_subjects), "val": tuple(int(s) for s in val_subjects)}
        self.frame_steps = {"train": int(train_frame_step), "val": int(val_frame_step)}
        for split in SPLITS:
            if not self.subjects[split]:
                raise ValueError(f"{split}_subjects is empty; name at least one Human3.6M subject")
            if self.frame_steps[split] < 1:
                raise ValueError(f"{split}_frame_step must be >= 1, got {self.frame_steps[split]}")
        self.annotation_dir = self._resolve(annotations)
        self.image_dir = self._resolve(images)
        self.use_gt_info = bool(use_gt_info)
        if not self.use_gt_info and not bbox_root_file:
            raise ValueError("use_gt_info=False needs bbox_root_file (RootNet boxes and root depths, by image id)")
        self.bbox_root_file = self._resolve(bbox_root_file) if bbox_root_file else None
        self.check_images = bool(check_images)
        self.extra_2d = extra_2d
        self.mix_2d = bool(mix_2d)

    def _resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    def _split(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; Human3.6M readers know {SPLITS}")
        return split

    @property
    def _mixing(self) -> bool:
        return self.mix_2d and self.extra_2d is not None

    def _gt_boxes(self, split: str) -> bool:
        """Boxes and root depths from the ground truth (training always; validation when use_gt_info)."""
        return split == "train" or self.use_gt_info

    def _missing(self, split: str) -> list[str]:
        """What of ``split``'s files is not on disk (empty when complete)."""
        missing = []
        if not self.root.is_dir():
            missing.append(f"dataset root {self.root}/")
        subjects = self.subjects[split]
        if not self.annotation_dir.is_dir():
            names = ", ".join(map(str, subjects))
            missing.append(f"annotation folder {self.annotation_dir}/ (the files of subjects {names})")
        else:
            for subject in subjects:
                for kind, path in subject_files(self.annotation_dir, subject).items():
                    if not path.is_file():
                        missing.append(f"subject {subject} {kind} file {path}")
        if not self.image_dir.is_dir():
            missing.append(f"image folder {self.image_dir}/")
        if not self._gt_boxes(split) and not self.bbox_root_file.is_file():
            missing.append(f"bbox_root file {self.bbox_root_file}")
        return missing

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Check the files of ``splits``' subjects and, when "train" is one of them, of the mixed-in
        2D source (its training split); one message lists all that is missing. An evaluation passes
        ("val",) and needs neither the training subjects nor the 2D source."""
        missing = [item for split in splits for item in self._missing(self._split(split))]
        extra = (
            missing_mixed_2d(self.extra_2d, dataset="Human3.6M", example_root="/path/to/mpii")
            if self._mixing and "train" in splits
            else None
        )
        if not missing and extra is None:
            return
        subjects = {split: self.subjects[split] for split in splits}
        parts = [_layout_message(self.root, "/".join(splits), missing, subjects)] if missing else []
        if extra is not None:
            parts.append(extra)
        raise DatasetNotFoundError("\n\n".join(parts))

    def check(self, split: str) -> None:
        """Check the files of ``split``'s subjects; raise DatasetNotFoundError with the layout."""
        missing = self._missing(self._split(split))
        if missing:
            raise DatasetNotFoundError(_layout_message(self.root, split, missing, {split: self.subjects[split]}))

    def load_records(
        self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool
    ) -> list[dict]:
        """3D person records of ``split`` (format in the module docstring), subjects in the order given.

        Only the files of ``split``'s subjects are opened.

        Args:
            split: "train" or "val".
            keypoint_info: the model's layout; its joints are mapped from the file's by name.
            aspect_ratio: the model's input width / height (the crop boxes are fitted to it).
            training: unused; the records are the same either way, as in the official reader.

        Raises:
            DatasetNotFoundError: a file of the split or (with ``check_images``) an image is missing.
            AnnotationError: malformed content; the message names the file and the image.
            ValueError: the layout has a joint that Human3.6M neither has nor derives.
        """
        del training
        split = self._split(split)
        if not aspect_ratio > 0:
            raise ValueError(f"aspect_ratio must be > 0 (input width / height), got {aspect_ratio}")
        weights = _layout_weights(keypoint_info)
        self.check(split)
        bbox_root = None if self._gt_boxes(split) else read_bbox_root(self.bbox_root_file)
        records: list[dict] = []
        skipped = total = 0
        for subject in self.subjects[split]:
            subject_records, n_skipped, n_total = self._subject_records(
                subject, self.frame_steps[split], weights, float(aspect_ratio), bbox_root
            )
            records += subject_records
            skipped, total = skipped + n_skipped, total + n_total
        for i, record in enumerate(records):
            record["sample_id"] = i
        if skipped:
            log.warning(
                "Human3.6M %s: %d of %d samples skipped, their boxes are empty after clipping to the image",
                split,
                skipped,
                total,
            )
        return records

    def _subject_records(
        self,
        subject: int,
        step: int,
        weights: np.ndarray,
        aspect_ratio: float,
        bbox_root: dict[int, tuple[np.ndarray, float]] | None,
    ) -> tuple[list[dict], int, int]:
        """(records without sample_id, skipped count, kept-frame count) of one subject."""
        files = subject_files(self.annotation_dir, subject)
        images, annotations = _image_lists(read_json(files["data"], "Human3.6M data file"), files["data"])
        images = _kept_images(images, files["data"], subject, step)
        total = len(images)
        if bbox_root is None:
            boxes, keep = process_bbox(
                _annotation_boxes(annotations, images, files["data"]),
                np.array([img["width"] for img in images], dtype=np.float64),
                np.array([img["height"] for img in images], dtype=np.float64),
                aspect_ratio,
            )
            images, boxes = [img for img, k in zip(images, keep) if k], boxes[keep]
        del annotations
        cameras = read_h36m_cameras(files["camera"])
        world = _world_joints(read_json(files["joint"], "Human3.6M joint file"), images, files["joint"])
        if self.check_images:
            self._check_image_files(images, files["data"])

        n = len(images)
        cam_idx = np.array([img["cam_idx"] for img in images], dtype=np.int64)
        file_cam = np.zeros((n, len(JOINT_NAMES), 3))
        focal, centre = np.zeros((n, 2)), np.zeros((n, 2))
        joints_img = np.zeros((n, weights.shape[0], 3))
        joints_cam = np.zeros((n, weights.shape[0], 3))
        for cam in np.unique(cam_idx).tolist():  # one vectorised transform per camera
            rows = np.flatnonzero(cam_idx == cam)
            if cam not in cameras:
                raise AnnotationError(
                    f"{files['camera']}: no camera {cam} for {describe_image(images[rows[0]])} "
                    f"(the file has cameras {sorted(cameras)})"
                )
            par = cameras[cam]
            file_cam[rows] = world_to_camera(world[rows], par["R"], par["t"])
            joints_cam[rows] = np.einsum("kj,njd->nkd", weights, file_cam[rows])
            joints_img[rows] = camera_to_pixel(joints_cam[rows], par["f"], par["c"])
            focal[rows], centre[rows] = par["f"], par["c"]
        behind = np.flatnonzero((file_cam[..., 2] <= 0).any(axis=1))
        if len(behind):
            raise AnnotationError(
                f"{files['camera']}: joints of {describe_image(images[behind[0]])} lie behind camera "
                f"{cam_idx[behind[0]]} (Z <= 0); are R, t the world-to-camera transform in mm?"
            )

        if bbox_root is None:
            root_depth = file_cam[:, JOINT_NAMES.index(ROOT_JOINT), 2]
        else:
            boxes, root_depth = np.zeros((n, 4)), np.zeros(n)
            for i, img in enumerate(images):
                if img["id"] not in bbox_root:
                    raise AnnotationError(
                        f"{self.bbox_root_file}: no entry for image id {img['id']} ({describe_image(img)})"
                    )
                boxes[i], root_depth[i] = bbox_root[img["id"]]

        boxes32, img32, cam32 = boxes.astype(np.float32), joints_img.astype(np.float32), joints_cam.astype(np.float32)
        f32, c32 = focal.astype(np.float32), centre.astype(np.float32)
        prefix, k = str(self.image_dir) + os.sep, weights.shape[0]
        records = [
            {
                "image_id": img["id"],
                "image_file": prefix + img["file_name"],
                "bbox": boxes32[i],
                "joints_img": img32[i],
                "joints_cam": cam32[i],
                "visible": np.ones(k, dtype=np.float32),
                "root_depth": float(root_depth[i]),
                "f": f32[i],
                "c": c32[i],
                "subject": subject,
                "action": img["action_idx"] - FIRST_ACTION,
                "subaction": img["subaction_idx"],
                "camera": img["cam_idx"],
                "frame": img["frame_idx"],
                "have_depth": 1.0,
            }
            for i, img in enumerate(images)
        ]
        return records, total - n, total

    def _check_image_files(self, images: list[dict], data_file: Path) -> None:
        """Raise DatasetNotFoundError for the first image that is not on disk (one stat each)."""
        prefix = str(self.image_dir) + os.sep
        for img in images:
            if not os.path.exists(prefix + img["file_name"]):
                raise DatasetNotFoundError(
                    f"Human3.6M image {prefix + img['file_name']} not found ({describe_image(img)}, listed in "
                    f"{data_file}); is {self.image_dir}/ complete for subject {img['subject']}?"
                )

    def metric_inputs(self) -> dict:
        """What the MPJPE metric needs from this source: ``{"actions": the action names}``."""
        return {"actions": list(ACTIONS)}

    def extra_records(self, split: str, *, aspect_ratio: float) -> tuple[list[dict], str | None]:
        """The mixed-in 2D training records and their keypoint layout name, or ``([], None)``.

        Records come from ``extra_2d`` for the "train" split when ``mix_2d`` is set and there is
        an ``extra_2d`` reader; it names its layout in its ``keypoint_layout`` attribute.
        """
        if self._split(split) != "train" or not self._mixing:
            return [], None
        layout = getattr(self.extra_2d, "keypoint_layout", None)
        if layout is None:
            raise ValueError(
                f"extra_2d reader {type(self.extra_2d).__name__} has no 'keypoint_layout' attribute "
                "(the name of its keypoint layout, e.g. 'mpii16')"
            )
        records = self.extra_2d.load_records(
            "train", keypoint_info=get_keypoint_info(layout), aspect_ratio=aspect_ratio, training=True
        )
        return records, layout
