"""Human3.6M's naming on disk (3DMPPE layout): actions, per-subject annotation files, image folders
and file names. The reader and the synthetic writer both import it; it imports nothing of theirs.
"""

from __future__ import annotations

from pathlib import Path

#: Action names; an image's ``action_idx`` (2..16) names ``ACTIONS[action_idx - FIRST_ACTION]``.
ACTIONS = (
    "Directions",
    "Discussion",
    "Eating",
    "Greeting",
    "Phoning",
    "Posing",
    "Purchases",
    "Sitting",
    "SittingDown",
    "Smoking",
    "Photo",
    "Waiting",
    "Walking",
    "WalkDog",
    "WalkTogether",
)
FIRST_ACTION = 2

#: The three annotation files of one subject, by kind.
SUBJECT_FILES = {
    "data": "Human36M_subject{}_data.json",
    "camera": "Human36M_subject{}_camera.json",
    "joint": "Human36M_subject{}_joint_3d.json",
}


def subject_files(annotation_dir: str | Path, subject: int) -> dict[str, Path]:
    """``{"data": ..., "camera": ..., "joint": ...}``: the three files of ``subject`` in ``annotation_dir``."""
    return {kind: Path(annotation_dir) / name.format(int(subject)) for kind, name in SUBJECT_FILES.items()}


def sequence_dir(subject: int, action_idx: int, subaction_idx: int, cam_idx: int) -> str:
    """The image folder of one sequence and camera, e.g. ``s_01_act_02_subact_01_ca_01``."""
    return f"s_{subject:02d}_act_{action_idx:02d}_subact_{subaction_idx:02d}_ca_{cam_idx:02d}"


def image_file_name(subject: int, action_idx: int, subaction_idx: int, cam_idx: int, frame_idx: int) -> str:
    """The image path relative to ROOT/images (the file number is frame_idx + 1).

    E.g. ``s_01_act_02_subact_01_ca_01/s_01_act_02_subact_01_ca_01_000001.jpg`` for frame 0.
    """
    folder = sequence_dir(subject, action_idx, subaction_idx, cam_idx)
    return f"{folder}/{folder}_{frame_idx + 1:06d}.jpg"


def action_name(action_idx: int) -> str:
    """The name of ``action_idx`` (2..16); ValueError outside that range."""
    if not FIRST_ACTION <= action_idx < FIRST_ACTION + len(ACTIONS):
        raise ValueError(f"action_idx must be in {FIRST_ACTION}..{FIRST_ACTION + len(ACTIONS) - 1}, got {action_idx}")
    return ACTIONS[action_idx - FIRST_ACTION]
