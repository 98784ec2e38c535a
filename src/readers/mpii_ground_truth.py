"""MPII validation ground truth in the official ``gt_valid.mat`` layout (HRNet repository, ``annot/``).

The file holds, for N annotated people in the order of ``valid.json``:

    dataset_joints  (1, 16) joint names ('rank', 'rkne', ..., 'lwri')
    pos_gt_src      (16, 2, N) joint positions, 1-based MATLAB pixels
    jnt_missing     (16, N) 1 where the joint is not annotated
    headboxes_src   (2, 2, N) head box corners [[x1, y1], [x2, y2]]

`MPIIGroundTruth` keeps them person-first: positions (N, K, 2), missing (N, K), headboxes (N, 2, 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.layouts import MPII_SHORT_NAMES, mpii_joint_name
from src.readers.errors import AnnotationError, DatasetNotFoundError

#: Joint names of gt_valid.mat, in the channel order of the MPII-16 layout. Names read from a file
#: are brought to these spellings (`src.layouts.mpii_joint_name`: "Thrx" of the MPII tools -> "thor").
MPII_JOINT_NAMES = MPII_SHORT_NAMES


@dataclass(frozen=True)
class MPIIGroundTruth:
    """Validation ground truth of N people, K joints.

    Attributes:
        positions: (N, K, 2) float64, 1-based MATLAB pixels.
        missing: (N, K) bool, True where the joint is not annotated.
        headboxes: (N, 2, 2) float64 head box corners [[x1, y1], [x2, y2]].
        joint_names: K names of ``dataset_joints`` in the gt_valid.mat spelling (`MPII_JOINT_NAMES`).
    """

    positions: np.ndarray
    missing: np.ndarray
    headboxes: np.ndarray
    joint_names: tuple[str, ...] = MPII_JOINT_NAMES

    def __post_init__(self) -> None:
        n, k = self.missing.shape
        if self.positions.shape != (n, k, 2) or self.headboxes.shape != (n, 2, 2) or len(self.joint_names) != k:
            raise ValueError(
                f"inconsistent MPII ground truth: positions {self.positions.shape}, missing {self.missing.shape}, "
                f"headboxes {self.headboxes.shape}, {len(self.joint_names)} joint names"
            )

    def __len__(self) -> int:
        return len(self.missing)

    def head_sizes(self, sc_bias: float = 0.6) -> np.ndarray:
        """(N,) normaliser of PCKh: ``sc_bias`` times the diagonal of each head box (official SC_BIAS 0.6)."""
        return sc_bias * np.linalg.norm(self.headboxes[:, 1] - self.headboxes[:, 0], axis=-1)


def _field(mat: dict, key: str, path: Path, shape_hint: str) -> np.ndarray:
    if key not in mat:
        raise AnnotationError(f"{path}: missing variable '{key}' ({shape_hint}); is it the MPII gt_valid.mat?")
    return np.asarray(mat[key])


def read_mpii_ground_truth(path: str | Path) -> MPIIGroundTruth:
    """Read ``gt_valid.mat``; raise errors that name the file and the variable that is wrong.

    Joint names are returned in the gt_valid.mat spelling whatever the file uses (any case, the
    MPII tools' "thrx" for the thorax), so files written by either tool give the same result.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"MPII ground truth not found: {path}")
    try:
        mat = loadmat(str(path))
    except Exception as err:  # scipy raises several types for damaged or non-MAT files
        raise AnnotationError(f"{path}: not a readable MATLAB file ({err})") from err
    pos = _field(mat, "pos_gt_src", path, "16 x 2 x N joint positions").astype(np.float64)
    missing = _field(mat, "jnt_missing", path, "16 x N flags").astype(np.float64)
    boxes = _field(mat, "headboxes_src", path, "2 x 2 x N head boxes").astype(np.float64)
    if pos.ndim != 3 or pos.shape[1] != 2:
        raise AnnotationError(f"{path}: pos_gt_src has shape {pos.shape}, expected (K, 2, N)")
    k, _, n = pos.shape
    if missing.shape != (k, n):
        raise AnnotationError(f"{path}: jnt_missing has shape {missing.shape}, expected {(k, n)} to match pos_gt_src")
    if boxes.shape != (2, 2, n):
        raise AnnotationError(f"{path}: headboxes_src has shape {boxes.shape}, expected {(2, 2, n)}")
    names = MPII_JOINT_NAMES if k == len(MPII_JOINT_NAMES) else tuple(f"joint{i}" for i in range(k))
    if "dataset_joints" in mat:
        raw = np.asarray(mat["dataset_joints"]).ravel()
        names = tuple(mpii_joint_name(np.asarray(v).ravel()[0]) if np.asarray(v).size else "" for v in raw)
        if len(names) != k:
            raise AnnotationError(f"{path}: dataset_joints names {len(names)} joints, pos_gt_src {k}")
    return MPIIGroundTruth(
        positions=pos.transpose(2, 0, 1).copy(),
        missing=missing.T.astype(bool),
        headboxes=boxes.transpose(2, 0, 1).copy(),
        joint_names=names,
    )


def write_mpii_ground_truth(path: str | Path, gt: MPIIGroundTruth) -> Path:
    """Write ``gt`` as an official-layout ``gt_valid.mat`` (read back by `read_mpii_ground_truth`)."""
    from scipy.io import savemat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = np.empty((1, len(gt.joint_names)), dtype=object)
    for i, name in enumerate(gt.joint_names):
        names[0, i] = np.array([name])
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        savemat(
            f,
            {
                "dataset_joints": names,
                "pos_gt_src": np.ascontiguousarray(gt.positions.transpose(1, 2, 0), dtype=np.float64),
                "jnt_missing": np.ascontiguousarray(gt.missing.T, dtype=np.float64),
                "headboxes_src": np.ascontiguousarray(gt.headboxes.transpose(1, 2, 0), dtype=np.float64),
            },
        )
    tmp.replace(path)
    return path
