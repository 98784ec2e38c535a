"""Identities across the frames of a video: each person gets a ``track_id`` that persists.

`Tracker` matches the people of each frame to the live tracks greedily, the most similar pair
first, by OKS of the keypoints (`src.metrics.oks.pairwise_oks`, with the layout's sigmas) or IoU
of the boxes (`src.geometry.box_iou`). A pair counts when its similarity reaches ``threshold``.
A track is compared with the last pose it was seen with, and lives on ``ttl`` frames without a
match, so a person hidden for up to ``ttl`` frames gets their id back; new ids count up from 0 and
are never reused. P people in the frame, T live tracks, K keypoints. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from src.geometry import box_iou, keypoint_boxes
from src.layouts import DEFAULT_OKS_SIGMA
from src.metrics.oks import pairwise_oks

SIMILARITIES = ("oks", "iou")
#: OKS tracking compares a person with a track by their boxes' IoU when they share fewer confident
#: joints than this (1: no joint in common; on the synthetic tracking video, falling back below 3 shared
#: joints gave an ID switch to a person who never crosses anyone, with the bottom-up detector's boxes).
MIN_SHARED_JOINTS = 1


def oks_similarity(
    keypoints_a: np.ndarray,
    keypoints_b: np.ndarray,
    boxes_a: np.ndarray,
    boxes_b: np.ndarray,
    sigmas: Sequence[float] | np.ndarray,
    *,
    keypoint_thr: float = 0.0,
) -> np.ndarray:
    """(N, M) OKS between two sets of poses (N, K, 3) and (M, K, 3) [x, y, score], over the joints
    scoring at least ``keypoint_thr`` (with finite coordinates) in both; each person's area is that
    of their box (N, 4) / (M, 4) [x, y, w, h]."""
    keypoints_a = np.asarray(keypoints_a, dtype=np.float64)
    keypoints_b = np.asarray(keypoints_b, dtype=np.float64)
    return pairwise_oks(
        np.nan_to_num(keypoints_a[..., :2]),
        np.nan_to_num(keypoints_b[..., :2]),
        _areas(boxes_a),
        _areas(boxes_b),
        sigmas,
        valid_a=_valid_joints(keypoints_a, keypoint_thr),
        valid_b=_valid_joints(keypoints_b, keypoint_thr),
    )


def _areas(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = np.clip(boxes[:, 2], 0.0, None) * np.clip(boxes[:, 3], 0.0, None)
    return np.nan_to_num(area, nan=0.0)


def _valid_joints(keypoints: np.ndarray, keypoint_thr: float) -> np.ndarray:
    valid = np.isfinite(keypoints[..., :2]).all(axis=-1)
    if keypoints.shape[-1] > 2:
        valid &= keypoints[..., 2] >= keypoint_thr
    return valid


def greedy_match(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) of an (N, M) similarity matrix, the most similar first: a pair is taken
    when neither side is taken yet and its similarity is at least ``threshold`` (ties: the lower
    row, then the lower column, first)."""
    similarity = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=-np.inf)
    rows, cols = np.nonzero(similarity >= threshold)
    order = np.argsort(-similarity[rows, cols], kind="stable")
    row_taken = np.zeros(similarity.shape[0], dtype=bool)
    col_taken = np.zeros(similarity.shape[1], dtype=bool)
    pairs = []
    for row, col in zip(rows[order].tolist(), cols[order].tolist()):
        if not row_taken[row] and not col_taken[col]:
            row_taken[row] = col_taken[col] = True
            pairs.append((row, col))
    return pairs


class Tracker:
    """Gives the people of consecutive frames persistent ids.

    Args:
        similarity: ``"oks"`` (keypoints; needs ``sigmas``) or ``"iou"`` (boxes).
        threshold: the least similarity of a match, in [0, 1].
        ttl: frames a track survives without a match (0: it must be matched in the next frame).
        sigmas: (K,) OKS sigmas of the keypoint layout (`tracking_sigmas` picks them).
        keypoint_thr: OKS counts the joints scoring at least this in both poses.
    """

    def __init__(
        self,
        *,
        similarity: str = "oks",
        threshold: float = 0.3,
        ttl: int = 30,
        sigmas: Sequence[float] | np.ndarray | None = None,
        keypoint_thr: float = 0.3,
    ) -> None:
        if similarity not in SIMILARITIES:
            raise ValueError(f"tracking similarity must be one of {list(SIMILARITIES)}, got {similarity!r}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"tracking threshold must lie in [0, 1] (a similarity), got {threshold}")
        if int(ttl) != ttl or int(ttl) < 0:
            raise ValueError(f"tracking ttl must be a whole number of frames >= 0, got {ttl}")
        if similarity == "oks":
            if sigmas is None:
                raise ValueError("OKS tracking needs the layout's sigmas (tracking_sigmas(keypoint_info))")
            sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
            if not (np.isfinite(sigmas).all() and (sigmas > 0).all()):
                raise ValueError(f"OKS sigmas must be positive, got {sigmas.tolist()}")
        self.similarity = similarity
        self.threshold = float(threshold)
        self.ttl = int(ttl)
        self.sigmas = sigmas
        self.keypoint_thr = float(keypoint_thr)
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again from 0."""
        self.next_id = 0
        self.frame = -1
        self._ids = np.zeros(0, dtype=np.int64)  # (T,)
        self._keypoints: np.ndarray | None = None  # (T, K, 3) the last matched pose of each track
        self._boxes = np.zeros((0, 4))  # (T, 4)
        self._last_seen = np.zeros(0, dtype=np.int64)  # (T,) frame of the last match

    @property
    def live_ids(self) -> np.ndarray:
        """The ids of the tracks alive now, (T,)."""
        return self._ids.copy()

    def update(self, keypoints: np.ndarray, boxes: np.ndarray | None = None, *, frame: int | None = None) -> np.ndarray:
        """The track ids (P,) int64 of one frame's people.

        Args:
            keypoints: (P, K, 3) [x, y, score] in pixels.
            boxes: (P, 4) [x, y, w, h] person boxes (None: the keypoints' extent). IoU compares
                boxes; OKS takes each person's area from them.
            frame: the frame's index, larger than the last one (None: the next frame); a gap in
                the indices counts as frames in which nobody was seen.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.ndim != 3 or keypoints.shape[-1] < 2:
            raise ValueError(f"keypoints must be (P, K, 2|3), got shape {keypoints.shape}")
        if boxes is None:
            boxes = keypoint_boxes(keypoints if keypoints.shape[-1] == 3 else _with_scores(keypoints))
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) != len(keypoints):
            raise ValueError(f"{len(boxes)} boxes for {len(keypoints)} people")
        if keypoints.shape[-1] == 2:
            keypoints = _with_scores(keypoints)
        if self._keypoints is not None and keypoints.shape[1] != self._keypoints.shape[1]:
            raise ValueError(f"{keypoints.shape[1]} keypoints per person after {self._keypoints.shape[1]}")
        if self.similarity == "oks" and len(self.sigmas) != keypoints.shape[1]:
            raise ValueError(f"{len(self.sigmas)} OKS sigmas for {keypoints.shape[1]} keypoints")
        frame = self.frame + 1 if frame is None else int(frame)
        if frame <= self.frame:
            raise ValueError(f"frames must come in order: frame {frame} after frame {self.frame}")
        self.frame = frame

        alive = frame - self._last_seen - 1 <= self.ttl  # frames missed so far within the ttl
        self._keep(alive)
        ids = np.full(len(keypoints), -1, dtype=np.int64)
        if len(self._ids) and len(keypoints):
            for person, track in greedy_match(self._similarity(keypoints, boxes), self.threshold):
                ids[person] = self._ids[track]
                self._keypoints[track] = keypoints[person]
                self._boxes[track] = boxes[person]
                self._last_seen[track] = frame
        new = np.flatnonzero(ids < 0)
        if len(new):
            ids[new] = np.arange(self.next_id, self.next_id + len(new))
            self.next_id += len(new)
            self._ids = np.concatenate([self._ids, ids[new]])
            old = self._keypoints if self._keypoints is not None else np.zeros((0, *keypoints.shape[1:]))
            self._keypoints = np.concatenate([old, keypoints[new]])
            self._boxes = np.concatenate([self._boxes, boxes[new]])
            self._last_seen = np.concatenate([self._last_seen, np.full(len(new), frame, dtype=np.int64)])
        return ids

    def _keep(self, alive: np.ndarray) -> None:
        if alive.all():
            return
        self._ids, self._boxes, self._last_seen = self._ids[alive], self._boxes[alive], self._last_seen[alive]
        if self._keypoints is not None:
            self._keypoints = self._keypoints[alive]

    def _similarity(self, keypoints: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(P, T) similarity of the frame's people with the live tracks. With OKS, a pair without a
        confident joint in common (`MIN_SHARED_JOINTS`: a person leaving the frame on one side of
        their body and coming back on the other) is compared by the IoU of the boxes instead: OKS
        over no common joint would be 0 whatever the distance."""
        iou = box_iou(boxes, self._boxes)
        if self.similarity == "iou":
            return iou
        oks = oks_similarity(
            keypoints, self._keypoints, boxes, self._boxes, self.sigmas, keypoint_thr=self.keypoint_thr
        )
        current = _valid_joints(np.asarray(keypoints, dtype=np.float64), self.keypoint_thr)
        previous = _valid_joints(np.asarray(self._keypoints, dtype=np.float64), self.keypoint_thr)
        shared = current.astype(np.int64) @ previous.T.astype(np.int64)
        return np.where(shared >= MIN_SHARED_JOINTS, oks, iou)


def _with_scores(keypoints: np.ndarray) -> np.ndarray:
    """(P, K, 2) -> (P, K, 3) with every score 1."""
    return np.concatenate([keypoints, np.ones((*keypoints.shape[:2], 1))], axis=-1)


def tracking_sigmas(keypoint_info: object) -> tuple[float, ...]:
    """OKS sigmas for tracking people of a layout: its own, or `DEFAULT_OKS_SIGMA` for every joint
    of a layout that declares none (tracking only compares poses with each other, so the shared
    value serves, unlike for AP)."""
    sigmas = getattr(keypoint_info, "sigmas", None)
    if sigmas is not None:
        return tuple(float(s) for s in sigmas)
    return (DEFAULT_OKS_SIGMA,) * int(keypoint_info.num_keypoints)
