"""Multi-person tracking metrics of pose videos: CLEAR MOT (MOTA, ID switches), keypoint jitter
and COCO keypoint AP over the frames of a video.

CLEAR MOT (Bernardin and Stiefelhagen, 2008) with the rules of py-motmetrics'
``MOTAccumulator`` (its ``num_switches``, ``num_misses``, ``num_false_positives`` and ``mota``),
restated here so the project needs no extra package; per frame, with a similarity in [0, 1] (OKS
of the keypoints, `keypoint_oks`) and a least similarity ``threshold`` for a pair to count:

1. a ground-truth object still paired with the hypothesis it was last matched to (the same
   predicted id, similar enough) keeps it, whatever else is nearer;
2. the other objects and hypotheses are paired by the Hungarian assignment that maximises the
   summed similarity (`scipy.optimize.linear_sum_assignment`), pairs below the threshold dropped;
3. a pair whose object was last matched (in any earlier frame, however long ago) to another
   hypothesis is an ID switch: counted once, at the frame where the new pairing starts;
4. objects left over are misses (FN), hypotheses left over false positives (FP).

MOTA = 1 - (FN + FP + IDSW) / GT, GT the number of object instances over all frames; MOTP here is
the mean similarity of the matched pairs (py-motmetrics reports a mean distance instead).

Jitter is the mean length of the discrete second derivative |x[t+1] - 2 x[t] + x[t-1]| (pixels per
frame squared) over every joint present in three consecutive frames. Dimension letters: T frames,
G ground-truth people, P predicted people, K keypoints, D coordinates.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from src.metrics.oks import pairwise_oks


def keypoint_oks(
    gt_keypoints: np.ndarray,
    gt_labelled: np.ndarray,
    gt_areas: np.ndarray,
    predicted: np.ndarray,
    sigmas: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """(G, P) OKS of each ground-truth person against each prediction, as COCO's evaluation
    computes it: over the person's labelled joints ``gt_labelled`` (G, K) bool, scaled by the
    ground truth's area (G,) alone; a person without labelled joints has OKS 0 with everyone.

    Args:
        gt_keypoints: (G, K, 2|3) ground truth in pixels.
        predicted: (P, K, 2|3) predictions in pixels (scores unused).
    """
    gt_keypoints = np.asarray(gt_keypoints, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    labelled = np.asarray(gt_labelled, dtype=bool)
    areas = np.asarray(gt_areas, dtype=np.float64).reshape(-1)
    out = np.zeros((len(gt_keypoints), len(predicted)))
    if not len(predicted):
        return out
    for g in range(len(gt_keypoints)):
        # the same area on both sides: pairwise_oks averages the two
        out[g] = pairwise_oks(
            gt_keypoints[g : g + 1],
            np.nan_to_num(predicted),
            areas[g : g + 1],
            np.full(len(predicted), areas[g]),
            sigmas,
            valid_a=labelled[g : g + 1],
        )[0]
    return out


@dataclass
class FrameResult:
    """What CLEAR MOT found in one frame: matched (object id, hypothesis id, similarity) pairs, the
    missed object ids, the unmatched hypothesis ids and the object ids that switched here."""

    matches: list[tuple[int, int, float]] = field(default_factory=list)
    misses: list[int] = field(default_factory=list)
    false_positives: list[int] = field(default_factory=list)
    switches: list[int] = field(default_factory=list)


@dataclass
class MOTResult:
    """CLEAR MOT over a video (module docstring); ``switches_by_object``: object id -> switches."""

    frames: list[FrameResult]
    num_objects: int
    num_predictions: int
    threshold: float
    switches_by_object: dict[int, int]

    @property
    def num_matches(self) -> int:
        return sum(len(f.matches) for f in self.frames)

    @property
    def num_misses(self) -> int:
        return sum(len(f.misses) for f in self.frames)

    @property
    def num_false_positives(self) -> int:
        return sum(len(f.false_positives) for f in self.frames)

    @property
    def num_switches(self) -> int:
        return sum(len(f.switches) for f in self.frames)

    @property
    def mota(self) -> float:
        """1 - (FN + FP + IDSW) / GT (NaN without ground truth; may be negative)."""
        if not self.num_objects:
            return float("nan")
        return 1.0 - (self.num_misses + self.num_false_positives + self.num_switches) / self.num_objects

    @property
    def motp(self) -> float:
        """The mean similarity of the matched pairs (NaN without matches)."""
        sims = [s for f in self.frames for _, _, s in f.matches]
        return float(np.mean(sims)) if sims else float("nan")

    def summary(self) -> dict[str, Any]:
        """The counts and rates as plain numbers (for results files)."""
        return {
            "threshold": self.threshold,
            "frames": len(self.frames),
            "ground_truth": self.num_objects,
            "predictions": self.num_predictions,
            "matches": self.num_matches,
            "misses": self.num_misses,
            "false_positives": self.num_false_positives,
            "id_switches": self.num_switches,
            "mota": self.mota,
            "motp_similarity": self.motp,
            "id_switches_by_person": {str(k): v for k, v in sorted(self.switches_by_object.items())},
        }


def _ids(values: Sequence[int] | np.ndarray, what: str) -> list[int]:
    ids = [int(v) for v in np.asarray(values).reshape(-1)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{what} ids of one frame must be distinct, got {ids}")
    return ids


def clear_mot(
    frames: Iterable[tuple[Sequence[int] | np.ndarray, Sequence[int] | np.ndarray, np.ndarray]],
    threshold: float = 0.5,
) -> MOTResult:
    """CLEAR MOT of a video (module docstring).

    Args:
        frames: per frame in order, (object ids (G,), hypothesis ids (P,), similarity (G, P)),
            e.g. ground-truth person ids, predicted track ids and `keypoint_oks`; NaN similarity
            never matches.
        threshold: the least similarity of a matched pair.
    """
    last: dict[int, int] = {}  # object id -> hypothesis id of its latest match
    results: list[FrameResult] = []
    switches: dict[int, int] = {}
    num_objects = num_predictions = 0
    for object_ids, hypothesis_ids, similarity in frames:
        objects, hypotheses = _ids(object_ids, "object"), _ids(hypothesis_ids, "hypothesis")
        sim = np.asarray(similarity, dtype=np.float64).reshape(len(objects), len(hypotheses))
        allowed = np.nan_to_num(sim, nan=-np.inf) >= threshold
        num_objects += len(objects)
        num_predictions += len(hypotheses)
        frame = FrameResult()
        free_o, free_h = set(range(len(objects))), set(range(len(hypotheses)))
        column = {h: j for j, h in enumerate(hypotheses)}
        for i, o in enumerate(objects):  # rule 1: continued pairs
            j = column.get(last[o]) if o in last else None
            if j is not None and allowed[i, j]:
                frame.matches.append((o, hypotheses[j], float(sim[i, j])))
                free_o.discard(i)
                free_h.discard(j)
        rows, cols = sorted(free_o), sorted(free_h)
        if rows and cols:  # rule 2: Hungarian on the rest
            sub = sim[np.ix_(rows, cols)]
            cost = np.where(allowed[np.ix_(rows, cols)], 1.0 - np.nan_to_num(sub), 1e6)
            for r, c in zip(*linear_sum_assignment(cost)):
                i, j = rows[r], cols[c]
                if not allowed[i, j]:
                    continue
                o, h = objects[i], hypotheses[j]
                if o in last and last[o] != h:  # rule 3
                    frame.switches.append(o)
                    switches[o] = switches.get(o, 0) + 1
                frame.matches.append((o, h, float(sim[i, j])))
                free_o.discard(i)
                free_h.discard(j)
        for o, h, _ in frame.matches:
            last[o] = h
        frame.misses = [objects[i] for i in sorted(free_o)]  # rule 4
        frame.false_positives = [hypotheses[j] for j in sorted(free_h)]
        results.append(frame)
    return MOTResult(
        frames=results,
        num_objects=num_objects,
        num_predictions=num_predictions,
        threshold=float(threshold),
        switches_by_object=switches,
    )


def accelerations(positions: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """The lengths |x[t+1] - 2 x[t] + x[t-1]| of every joint present (``valid`` and finite) in three
    consecutive frames, as a flat array.

    Args:
        positions: (T, ..., D) trajectories, e.g. (T, G, K, 2) pixels.
        valid: (T, ...) bool, the entries that count (None: the finite ones).
    """
    x = np.asarray(positions, dtype=np.float64)
    ok = np.isfinite(x).all(axis=-1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if len(x) < 3:
        return np.zeros(0)
    triple = ok[2:] & ok[1:-1] & ok[:-2]
    second = np.nan_to_num(x[2:]) - 2.0 * np.nan_to_num(x[1:-1]) + np.nan_to_num(x[:-2])
    return np.linalg.norm(second, axis=-1)[triple]


def mean_acceleration(positions: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The jitter of trajectories: the mean of `accelerations` (NaN when no joint is present in
    three consecutive frames)."""
    values = accelerations(positions, valid)
    return float(values.mean()) if values.size else float("nan")


def matched_trajectories(
    result: MOTResult,
    predictions: Sequence[Mapping[int, np.ndarray]],
    object_ids: Sequence[int],
    num_keypoints: int,
) -> np.ndarray:
    """(T, G, K, 2) the predicted keypoints matched to each ground-truth object in each frame (NaN
    where the object is unmatched): the trajectory a viewer sees on each true person.

    Args:
        result: `clear_mot`'s result over the T frames.
        predictions: per frame, hypothesis id -> (K, 2|3) keypoints.
        object_ids: the G object ids, in the order of the output's second axis.
    """
    if len(predictions) != len(result.frames):
        raise ValueError(f"{len(predictions)} frames of predictions for {len(result.frames)} frames of matches")
    row = {int(o): g for g, o in enumerate(object_ids)}
    out = np.full((len(result.frames), len(row), int(num_keypoints), 2), np.nan)
    for t, (frame, found) in enumerate(zip(result.frames, predictions)):
        for o, h, _ in frame.matches:
            if o in row:
                out[t, row[o]] = np.asarray(found[h], dtype=np.float64)[:, :2]
    return out


def video_keypoint_ap(
    dataset: Mapping[str, Any], results: Sequence[Mapping[str, Any]], sigmas: Sequence[float]
) -> dict[str, float]:
    """COCO keypoint AP (the 10 stats of `src.metrics.coco_eval.coco_keypoint_eval`) of ``results``
    (COCO keypoint results with ``image_id``) against a COCO dataset given as a dict (images,
    annotations with area, categories), e.g. a video's frames as images."""
    from pycocotools.coco import COCO

    from src.metrics.coco_eval import coco_keypoint_eval

    gt = COCO()
    gt.dataset = {k: list(v) if isinstance(v, list) else v for k, v in dict(dataset).items()}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    entries = [
        {"image_id": int(r["image_id"]), "category_id": int(r.get("category_id", 1)), **_result_fields(r)}
        for r in results
    ]
    return coco_keypoint_eval(gt, entries, sigmas)[0]


def _result_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    return {"keypoints": [float(v) for v in result["keypoints"]], "score": float(result["score"])}
