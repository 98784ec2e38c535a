"""Keypoint layouts: names, flip pairs, skeleton, body halves, OKS sigmas, joint weights.

Every other module reads these facts from here (transforms for flipping, the codec and the
loss for joint weights, the metric for sigmas, drawing for the skeleton), so a layout is
defined exactly once. Indices are 0-based; K is the number of keypoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from src import layout_files
from src.keypoint_info import KeypointInfo

COCO17 = KeypointInfo(
    name="coco17",
    keypoint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    upper_body_ids=tuple(range(0, 11)),
    lower_body_ids=tuple(range(11, 17)),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
    joint_weights=(1.0,) * 7 + (1.2, 1.2, 1.5, 1.5) + (1.0, 1.0) + (1.2, 1.2, 1.5, 1.5),
)

MPII16 = KeypointInfo(
    name="mpii16",
    keypoint_names=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (7, 12),
        (12, 11),
        (11, 10),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    upper_body_ids=tuple(range(7, 16)),
    lower_body_ids=tuple(range(0, 7)),
    sigmas=(
        0.089,
        0.083,
        0.107,
        0.107,
        0.083,
        0.089,
        0.026,
        0.026,
        0.026,
        0.026,
        0.062,
        0.072,
        0.179,
        0.179,
        0.072,
        0.062,
    ),
    joint_weights=(1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5),
)

H36M17 = KeypointInfo(
    name="h36m17",
    keypoint_names=(
        "pelvis",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "torso",
        "neck",
        "nose",
        "head",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ),
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
    skeleton=(
        (0, 7),
        (7, 8),
        (8, 9),
        (9, 10),
        (8, 11),
        (11, 12),
        (12, 13),
        (8, 14),
        (14, 15),
        (15, 16),
        (0, 1),
        (1, 2),
        (2, 3),
        (0, 4),
        (4, 5),
        (5, 6),
    ),
    upper_body_ids=tuple(range(7, 17)),
    lower_body_ids=tuple(range(0, 7)),
    sigmas=None,
    joint_weights=(1.0,) * 17,
)

#: The 3DMPPE PoseNet layout of Human3.6M: the 17 joints plus "thorax" (the mean of the shoulders) at 17.
H36M18 = KeypointInfo(
    name="h36m18",
    keypoint_names=(*H36M17.keypoint_names, "thorax"),
    flip_pairs=H36M17.flip_pairs,
    skeleton=H36M17.skeleton,
    upper_body_ids=(*H36M17.upper_body_ids, 17),
    lower_body_ids=H36M17.lower_body_ids,
    sigmas=None,
    joint_weights=(1.0,) * 18,
)

#: MuCo-3DHP (3DMPPE's 21 joints, ``data/MuCo/MuCo.py``): the 17 MuPoTS-3D joints, then the hands
#: and toes. "head_center" is the 3DHP "head" joint, between the neck and the top of the head
#: (3DMPPE's "Head"; named apart from "head_top" so that layouts matched by name keep them apart).
MUCO21 = KeypointInfo(
    name="muco21",
    keypoint_names=(
        "head_top",
        "thorax",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "spine",
        "head_center",
        "right_hand",
        "left_hand",
        "right_toe",
        "left_toe",
    ),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (17, 18), (19, 20)),
    skeleton=(
        (0, 16),
        (16, 1),
        (1, 15),
        (15, 14),
        (14, 8),
        (14, 11),
        (8, 9),
        (9, 10),
        (10, 19),
        (11, 12),
        (12, 13),
        (13, 20),
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 17),
        (1, 5),
        (5, 6),
        (6, 7),
        (7, 18),
    ),
    upper_body_ids=(0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18),
    lower_body_ids=(8, 9, 10, 11, 12, 13, 14, 19, 20),
    sigmas=None,
    joint_weights=(1.0,) * 21,
)

#: MuPoTS-3D (``MuPoTS-3D.json``, the MATLAB kit's 17 joints): MuCo-3DHP's first 17 joints.
MUPOTS17 = KeypointInfo(
    name="mupots17",
    keypoint_names=MUCO21.keypoint_names[:17],
    flip_pairs=MUCO21.flip_pairs[:6],
    skeleton=tuple((a, b) for a, b in MUCO21.skeleton if a < 17 and b < 17),
    upper_body_ids=tuple(i for i in MUCO21.upper_body_ids if i < 17),
    lower_body_ids=tuple(i for i in MUCO21.lower_body_ids if i < 17),
    sigmas=None,
    joint_weights=(1.0,) * 17,
)

CROWDPOSE14 = KeypointInfo(
    name="crowdpose14",
    keypoint_names=(
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "head",
        "neck",
    ),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    # The skeleton in the CrowdPose files is COCO's (1-based ids up to 17); these are its 14 joints.
    skeleton=(
        (12, 13),
        (13, 0),
        (13, 1),
        (0, 2),
        (2, 4),
        (1, 3),
        (3, 5),
        (0, 6),
        (1, 7),
        (6, 7),
        (6, 8),
        (8, 10),
        (7, 9),
        (9, 11),
    ),
    upper_body_ids=(0, 1, 2, 3, 4, 5, 12, 13),
    lower_body_ids=(6, 7, 8, 9, 10, 11),
    # crowdposetools (cocoeval.computeOks): shoulders .79, elbows .72, wrists .62, hips 1.07,
    # knees .87, ankles .89, head and neck .79, all / 10
    sigmas=tuple(
        s / 10.0 for s in (0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89, 0.79, 0.79)
    ),
    joint_weights=(1.0,) * 14,
)

#: The OKS sigma of every joint of a layout that declares none: the mean of COCO's 17 (0.067).
DEFAULT_OKS_SIGMA = round(sum(COCO17.sigmas) / len(COCO17.sigmas), 3)  # type: ignore[arg-type]

#: The MPII-16 joints as the official ground truth (``gt_valid.mat``) spells them, in MPII16 order.
MPII_SHORT_NAMES = (
    "rank",
    "rkne",
    "rhip",
    "lhip",
    "lkne",
    "lank",
    "pelv",
    "thor",
    "neck",
    "head",
    "rwri",
    "relb",
    "rsho",
    "lsho",
    "lelb",
    "lwri",
)

#: Other spellings of those joints -> the gt_valid.mat one: the MPII annotation tools and the
#: Stacked Hourglass code write the thorax "Thrx", and the mpii16 layout uses long names.
MPII_NAME_ALIASES = {"thrx": "thor", **dict(zip(MPII16.keypoint_names, MPII_SHORT_NAMES))}


def mpii_joint_name(name: str) -> str:
    """The gt_valid.mat spelling of an MPII joint name in any case or known spelling ("Thrx" ->
    "thor", "head_top" -> "head"); other names come back lower-cased and stripped."""
    key = str(name).strip().lower()
    return MPII_NAME_ALIASES.get(key, key)


_REGISTRY = {info.name: info for info in (COCO17, MPII16, H36M17, H36M18, MUCO21, MUPOTS17, CROWDPOSE14)}

#: Joints that two layouts name differently but that datasets are matched on (3DMPPE maps MPII's
#: "Neck" and "Head", our "upper_neck" and "head_top", onto Human3.6M's "Neck" and "Head").
SAME_JOINT = {"upper_neck": "neck", "head_top": "head"}


def get_keypoint_info(layout: str | Mapping[str, Any] | KeypointInfo) -> KeypointInfo:
    """A layout from what a config gives: a built-in name ("coco17", ...), the name of a file in
    ``conf/layouts/`` ("coco_wholebody"), a path to a layout YAML file, or the mapping a checkpoint
    stores (`src.layout_files.layout_to_mapping`). Unknown names fail with the known ones."""
    if isinstance(layout, KeypointInfo):
        return layout
    if isinstance(layout, Mapping):
        return layout_files.layout_from_mapping(layout, origin="the stored layout")
    name = str(layout)
    if name in _REGISTRY:
        return _REGISTRY[name]
    path = layout_files.layout_path(name)
    if path is None:
        files = sorted(p.stem for p in layout_files.LAYOUT_DIR.glob("*.yaml"))
        raise KeyError(
            f"unknown keypoint layout {name!r}; built in: {sorted(_REGISTRY)}, in {layout_files.LAYOUT_DIR}: "
            f"{files}, or a path to a layout .yaml file"
        )
    return layout_files.load_layout_file(path)


def layout_spec(layout: str | Mapping[str, Any] | KeypointInfo) -> str | dict[str, Any]:
    """What a checkpoint stores for a layout: the name of a built-in one, else its whole content
    (so that the model predicts without the YAML file it was trained with)."""
    info = get_keypoint_info(layout)
    if _REGISTRY.get(info.name) == info:
        return info.name
    return layout_files.layout_to_mapping(info)


def joint_mapping(source: KeypointInfo, target: KeypointInfo) -> tuple[int, ...]:
    """For each keypoint of ``target``, the index of the same joint in ``source``, or -1.

    Joints are matched by name (as the 3DMPPE ``transform_joint_to_other_db``), with the
    synonyms of `SAME_JOINT`; a target joint that ``source`` does not annotate gets -1.
    """
    names = {SAME_JOINT.get(name, name): i for i, name in enumerate(source.keypoint_names)}
    return tuple(names.get(SAME_JOINT.get(name, name), -1) for name in target.keypoint_names)


#: Joints that a dataset may lack but that are the mean of two it has, visible when both are (3DMPPE's
#: ``add_thorax`` for Human3.6M; its MSCOCO readers add both to the COCO joints).
DERIVED_JOINTS: dict[str, tuple[str, str]] = {
    "thorax": ("left_shoulder", "right_shoulder"),
    "pelvis": ("left_hip", "right_hip"),
}


def joint_sources(source: KeypointInfo, target: KeypointInfo) -> tuple[tuple[int, ...], ...]:
    """For each keypoint of ``target``, the ``source`` indices it is the mean of: one index for the
    same joint (`joint_mapping`), two for a `DERIVED_JOINTS` joint that ``source`` lacks but can
    form, none when ``source`` has neither."""
    direct = joint_mapping(source, target)
    names = {name: i for i, name in enumerate(source.keypoint_names)}
    out = []
    for name, index in zip(target.keypoint_names, direct):
        parts = DERIVED_JOINTS.get(name, ())
        if index >= 0:
            out.append((index,))
        elif parts and all(p in names for p in parts):
            out.append(tuple(names[p] for p in parts))
        else:
            out.append(())
    return tuple(out)


#: The joint that 3D poses are relative to (3DMPPE: Pelvis).
ROOT_JOINT = "pelvis"


def root_index(info: KeypointInfo) -> int:
    """Index of `ROOT_JOINT` in a layout; the first joint in layouts without a pelvis."""
    return info.keypoint_names.index(ROOT_JOINT) if ROOT_JOINT in info.keypoint_names else 0
