"""MuPoTS-3D's ground truth as the 3DMPPE ``MuPoTS-3D.json`` holds it, image by image: the view that
the MuPoTS-3D reader and evaluation share.

The file (COCO style) lists ``images`` (id, file_name ``TS<k>/img_<frame>.jpg`` relative to
``MultiPersonTestSet/``, width, height, intrinsic [fx, fy, cx, cy]) and ``annotations`` (image_id,
keypoints_cam (17, 3) mm, keypoints_img (17, 2) pixels, keypoints_vis (17,), bbox [x, y, w, h],
is_valid). Annotations with ``is_valid`` 0 are left out, as the official reader does. Joints are
the 17 of `src.layouts.MUPOTS17`, the pelvis (index 14) the root. Pure numpy: metrics may import it.

Shapes: P valid people of an image, 17 joints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.layouts import MUPOTS17
from src.readers.coco_3d import ImageTable, PersonTable, read_images, read_people, split_lists
from src.readers.errors import AnnotationError
from src.readers.json_files import read_json

#: Joints per annotation in MuPoTS-3D.json.
NUM_JOINTS = MUPOTS17.num_keypoints

#: ``TS<k>/img_<frame>.jpg``: the sequence folder and the frame number of an image.
FILE_NAME = re.compile(r"TS(\d+)/img_(\d+)\.jpg")


@dataclass(frozen=True, eq=False)
class MuPoTSImage:
    """One image and its valid people.

    Attributes:
        image_id: the image's id in the file.
        file_name: ``TS<k>/img_<frame>.jpg``, relative to ``MultiPersonTestSet/``.
        sequence: the TS number k (1..20 in the full set).
        frame: the number in the file name.
        width, height: the image size in pixels.
        f, c: (2,) float64 focal lengths and principal point in pixels.
        joints_img: (P, 17, 2) float64 image joints in pixels.
        joints_cam: (P, 17, 3) float64 camera-frame joints in mm.
        visible: (P, 17) bool, ``keypoints_vis > 0``.
        bboxes: (P, 4) float64 annotation boxes [x, y, w, h] in pixels (not processed).
        annotation_index: (P,) int64 position of each person in the file's ``annotations``.
    """

    image_id: int
    file_name: str
    sequence: int
    frame: int
    width: int
    height: int
    f: np.ndarray
    c: np.ndarray
    joints_img: np.ndarray
    joints_cam: np.ndarray
    visible: np.ndarray
    bboxes: np.ndarray
    annotation_index: np.ndarray

    @property
    def num_people(self) -> int:
        return len(self.annotation_index)

    @property
    def name(self) -> str:
        """``TS<k>_img_<frame>``: the key of the official prediction files (folder, '_', file stem)."""
        return self.file_name[: -len(".jpg")].replace("/", "_")


@dataclass(frozen=True, eq=False)
class MuPoTSGroundTruth:
    """Every image of a MuPoTS-3D.json (with or without valid people), in file order.

    Attributes:
        path: the file read.
        images: the images, in file order.
        num_invalid: annotations left out because ``is_valid`` is 0.
    """

    path: Path
    images: tuple[MuPoTSImage, ...]
    num_invalid: int = 0
    _rows: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rows = {img.image_id: i for i, img in enumerate(self.images)}
        if len(rows) != len(self.images):
            raise ValueError(f"{self.path}: image ids repeat")
        object.__setattr__(self, "_rows", rows)

    def __len__(self) -> int:
        return len(self.images)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._rows

    def image_ids(self) -> list[int]:
        """The image ids, in file order."""
        return [img.image_id for img in self.images]

    def image(self, image_id: int) -> MuPoTSImage:
        """The image ``image_id``; KeyError naming the file when it has no such image."""
        row = self._rows.get(image_id)
        if row is None:
            raise KeyError(f"{self.path} has no image with id {image_id!r}")
        return self.images[row]

    @property
    def num_people(self) -> int:
        """The valid people of all images."""
        return sum(img.num_people for img in self.images)


def _sequence_frame(file_name: str, index: int, image_id: int, path: Path) -> tuple[int, int]:
    match = FILE_NAME.fullmatch(file_name)
    if match is None or int(match.group(1)) < 1:
        raise AnnotationError(
            f"{path}: image #{index} (id {image_id}) has 'file_name' {file_name!r}, expected "
            "'TS<k>/img_<frame>.jpg' with k >= 1"
        )
    return int(match.group(1)), int(match.group(2))


def _group(table: ImageTable, people: PersonTable, path: Path, invalid: int) -> MuPoTSGroundTruth:
    """Per-image views of the validated tables."""
    order = np.argsort(people.image_row, kind="stable")  # people of an image in file order
    starts = np.searchsorted(people.image_row[order], np.arange(len(table) + 1))
    images = []
    for row in range(len(table)):
        sequence, frame = _sequence_frame(table.file_names[row], row, int(table.ids[row]), path)
        mine = order[starts[row] : starts[row + 1]]
        images.append(
            MuPoTSImage(
                image_id=int(table.ids[row]),
                file_name=table.file_names[row],
                sequence=sequence,
                frame=frame,
                width=int(table.sizes[row, 0]),
                height=int(table.sizes[row, 1]),
                f=table.f[row],
                c=table.c[row],
                joints_img=people.joints_img[mine],
                joints_cam=people.joints_cam[mine],
                visible=people.visible[mine],
                bboxes=people.boxes[mine],
                annotation_index=people.annotation_index[mine],
            )
        )
    return MuPoTSGroundTruth(path=path, images=tuple(images), num_invalid=invalid)


def read_mupots_ground_truth(path: str | Path) -> MuPoTSGroundTruth:
    """Read ``MuPoTS-3D.json``; errors name the file and the image or annotation.

    Raises:
        DatasetNotFoundError: the file does not exist.
        AnnotationError: invalid JSON; an image without an integer id (or a repeated one), a
            ``TS<k>/img_<frame>.jpg`` file name, a positive integer size or an ``intrinsic`` of
            4 finite numbers with fx, fy > 0; an annotation whose image is not listed, whose
            ``is_valid`` is not 0 or 1, or, when valid, whose keypoints_cam, keypoints_img or
            keypoints_vis are not 17 joints of finite numbers, with a joint behind the camera,
            or whose bbox is not [x, y, w, h] with w, h >= 0 overlapping its image.
    """
    path = Path(path)
    images, annotations = split_lists(read_json(path, "MuPoTS-3D annotation file"), path)
    table = read_images(images, path, camera="intrinsic")
    people, invalid = read_people(
        annotations, path, table, num_joints=NUM_JOINTS, read_visible=True, valid_key="is_valid"
    )
    return _group(table, people, path, invalid)
