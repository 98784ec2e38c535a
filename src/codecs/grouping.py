"""Associative-embedding grouping of HigherHRNet (bottom-up pose): heatmaps + tags -> people.

`HeatmapParser.parse` follows the official HigherHRNet parser step by step:

1. **NMS**: a pixel survives if it equals the max over its ``nms_kernel`` x ``nms_kernel``
   window (max-pool, stride 1, padding ``nms_padding``); other pixels become 0.
2. **top-k**: per joint type, the ``max_num_people`` largest NMS values with their integer
   (x, y) and tag vectors.
3. **match_by_tag**: joint types are visited in ``joint_order``; candidates with value
   <= ``detection_threshold`` are dropped. While nobody exists, every candidate opens a person.
   Afterwards, the first ``max_num_people`` persons (creation order) are compared with the
   candidates: person tag = mean of the tags it has collected, D = L2 distance, cost =
   round(D) * 100 - value (``use_detection_val``) or D, padded with 1e10 columns when there are
   more candidates than persons, solved by the Hungarian method. A candidate joins its assigned
   person if that is a real person and the raw D < ``tag_threshold``; otherwise it opens a new
   person. Persons are keyed by the first component of their opening tag (the official dict
   key): a new person whose key already exists overwrites that person's joint and restarts
   its tag list, as in the official code.
4. **adjust**: each detected joint moves 0.25 px towards the larger of its two horizontal
   (vertical) neighbours on the heatmap (strict '>', ties go to -0.25, neighbours clamped at
   the border), then +0.5 on both axes.
5. **score** = mean of the K joint values (missing joints count 0), taken before refine.
6. **refine**: for each person, mean tag of its detected joints (read from the tag maps at the
   integer part of their coordinates); for each joint type, M = heatmap - round(||tag - mean||),
   position = first argmax of M, value = heatmap there, coords + 0.5 and the quarter offset
   (same tie rule). Only missing joints (value 0) are filled, and only when the value is > 0.

Speed (the official pure-Python loops and dense passes are this model's evaluation bottleneck):
NMS + top-k, the matching around scipy's Hungarian solver and refine are compiled kernels
(`grouping_kernels`, numba). The candidate pass reads each heatmap once, evaluates NMS only at
pixels above the detection threshold and keeps the maximum of every run of 16 pixels of a row.
Refine finds each arg-max exactly without a full distance map per person: since round(.) >= 0,
M <= heatmap, and M <= a run's maximum minus round(distance from the mean tag to the box of the
run's tags). The (person, missing joint) pairs of a joint first visit its strong runs by
decreasing maximum and stop as soon as nothing left can reach their best M; the few pairs left
scan the map by blocks (by decreasing maximum, stopping at the first that cannot beat them), tiles
and runs, skipping what these bounds rule out. Adjust, the mean tags and refine's write-back are
compiled too, so `parse` spends little time in Python. The candidate pass and refine work per
joint type, so on large enough inputs they split the joint types over ``threads`` (the kernels
release the GIL); the results do not depend on the number of threads.
Inputs are assumed free of NaN (the official arg-max would return the first NaN).

Deviations: ties in the Hungarian step are resolved by ``scipy.optimize.linear_sum_assignment``
(official: the ``munkres`` package), and top-k ties by the lower flat index (official:
``torch.topk`` order); both only matter for exactly equal costs / values.

Shapes: K joints, H x W heatmap, L tag dimensions (1, or 2 with flip test: original and
flipped tags), M = ``max_num_people`` candidates per joint, P people.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from src.codecs import grouping_kernels as kernels

#: Official COCO visiting order: head, shoulders, hips, then elbows, wrists, knees, ankles.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)

#: Padding cost of the official matching (columns for "no person").
_PAD_COST = 1e10
#: Refine first visits the runs of pixels above this value (or the detection threshold if lower),
#: strongest first; the pairs they cannot settle scan the map (speed only).
_STRONG = 0.05
#: Work below which a kernel runs in one thread whatever ``threads`` says (below it, handing the
#: work to a pool thread costs more than it saves): heatmap pixels of the candidate pass, pairs of refine.
_THREAD_MIN_PIXELS = 1 << 19
_THREAD_MIN_PAIRS = 24
#: Pools of worker threads per (process, size); a forked child builds its own.
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    key = (os.getpid(), threads)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads - 1, thread_name_prefix="grouping")
    return _POOLS[key]


def _run_split(fn: Callable, items: list, threads: int) -> list:
    """[fn(item) for item in items], the first in this thread and the others in the pool (the
    kernels release the GIL)."""
    if len(items) == 1:
        return [fn(items[0])]
    futures = [_pool(threads).submit(fn, item) for item in items[1:]]
    first = fn(items[0])
    return [first] + [f.result() for f in futures]


def _joint_groups(weights: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` contiguous joint ranges [j0, j1) with about equal total weight (each
    non-empty; ranges without weight are dropped)."""
    k = len(weights)
    cum = np.cumsum(weights, dtype=np.float64)
    total = cum[-1] if k else 0.0
    bounds = [0]
    for q in range(1, parts):
        cut = int(np.searchsorted(cum, total * q / parts, side="left")) + 1
        bounds.append(min(max(cut, bounds[-1] + 1), k))
    bounds.append(k)
    groups = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return [g for g in groups if weights[g[0] : g[1]].sum() > 0] or [(0, k)]


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def _max_filter(det: np.ndarray, pad: int) -> np.ndarray:
    """Max over (2 pad + 1)^2 windows of (K, H, W) maps (= max-pool stride 1, -inf padding).

    Edge replication instead of -inf padding gives the same maxima: the replicated pixel is
    itself inside the window.
    """
    _, h, w = det.shape
    size = 2 * pad + 1
    padded = np.pad(det, ((0, 0), (pad, pad), (0, 0)), mode="edge")
    rows = padded[:, 0:h].copy()
    for i in range(1, size):
        np.maximum(rows, padded[:, i : i + h], out=rows)
    padded = np.pad(rows, ((0, 0), (0, 0), (pad, pad)), mode="edge")
    out = padded[:, :, 0:w].copy()
    for i in range(1, size):
        np.maximum(out, padded[:, :, i : i + w], out=out)
    return out


def _quarter_offset(det: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """+-0.25 towards the larger neighbour (strict '>', clamped neighbours), per axis.

    det (K, H, W); joint, x, y (n,) int64 -> (dx (n,), dy (n,)) float64 in {-0.25, +0.25}.
    """
    _, h, w = det.shape
    right = det[joint, y, np.minimum(x + 1, w - 1)]
    left = det[joint, y, np.maximum(x - 1, 0)]
    down = det[joint, np.minimum(y + 1, h - 1), x]
    up = det[joint, np.maximum(y - 1, 0), x]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


def _round_distance(tags: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Official refine term np.round(||tag - mean||) in float32, bit-identical to
    ``np.round(((tag - mean) ** 2).sum(axis=-1) ** 0.5)`` (the sum over L is taken left to right,
    as numpy does for such short axes, without its slow length-L inner loops).

    tags (..., L) float32, mean broadcastable to tags -> (...) float32.
    """
    diff = tags - mean
    total = diff[..., 0] * diff[..., 0]
    for i in range(1, diff.shape[-1]):
        total += diff[..., i] * diff[..., i]
    return np.round(np.sqrt(total, out=total), out=total)


class HeatmapParser:
    """Official HigherHRNet grouping (NMS, top-k, tag matching, adjust, refine), vectorised.

    Args:
        num_joints: K.
        max_num_people: candidates per joint (top-k) and persons considered when matching.
        detection_threshold: candidates with value <= this are dropped (official test 0.1).
        tag_threshold: a candidate joins a person only if the tag distance is below this.
        use_detection_val: matching cost round(D) * 100 - value instead of D.
        ignore_too_much: skip a joint type once ``max_num_people`` persons exist.
        nms_kernel, nms_padding: NMS window (odd kernel, padding = kernel // 2).
        adjust, refine: defaults of `parse` (official test: both True).
        joint_order: visiting order of the joint types; default COCO order for 17 joints,
            else 0..K-1.
        threads: threads of the candidate pass and of refine, each taking a range of joint types
            (results are the same for any number); None: ``torch.get_num_threads()`` at each
            call, at most 4. Small inputs use one.
    """

    def __init__(
        self,
        *,
        num_joints: int = 17,
        max_num_people: int = 30,
        detection_threshold: float = 0.1,
        tag_threshold: float = 1.0,
        use_detection_val: bool = True,
        ignore_too_much: bool = False,
        nms_kernel: int = 5,
        nms_padding: int = 2,
        adjust: bool = True,
        refine: bool = True,
        joint_order: Sequence[int] | None = None,
        threads: int | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        if nms_kernel % 2 != 1 or nms_padding != nms_kernel // 2:
            raise ValueError(f"NMS needs an odd kernel and padding kernel // 2, got {nms_kernel}, {nms_padding}")
        if joint_order is None:
            joint_order = COCO_JOINT_ORDER if num_joints == 17 else tuple(range(num_joints))
        if sorted(joint_order) != list(range(num_joints)):
            raise ValueError(f"joint_order must be a permutation of 0..{num_joints - 1}, got {joint_order}")
        self.num_joints = num_joints
        self.max_num_people = max_num_people
        self.detection_threshold = float(detection_threshold)
        self.tag_threshold = float(tag_threshold)
        self.use_detection_val = use_detection_val
        self.ignore_too_much = ignore_too_much
        self.nms_kernel = nms_kernel
        self.nms_padding = nms_padding
        self.adjust_default = adjust
        self.refine_default = refine
        self.joint_order = tuple(int(j) for j in joint_order)
        self.threads = threads

    def _threads(self) -> int:
        return self.threads if self.threads is not None else max(1, min(4, torch.get_num_threads()))

    # ------------------------------------------------------------------ inputs
    def _prepare(self, heatmaps, tags) -> tuple[np.ndarray, np.ndarray]:
        """(1, K, H, W) or (K, H, W) heatmaps, (1, K|1, H, W[, L]) tags -> float32 (K,H,W), (K,H,W,L)."""
        det = _as_numpy(heatmaps)
        tag = _as_numpy(tags)
        if det.ndim == 4:
            if det.shape[0] != 1:
                raise ValueError(f"parse() takes one image, got heatmaps of shape {det.shape}")
            det = det[0]
        if tag.ndim == 5:
            if tag.shape[0] != 1:
                raise ValueError(f"parse() takes one image, got tags of shape {tag.shape}")
            tag = tag[0]
        if tag.ndim == 3:
            tag = tag[..., None]
        if det.ndim != 3 or tag.ndim != 4 or tag.shape[1:3] != det.shape[1:]:
            raise ValueError(f"heatmaps (K, H, W) and tags (K, H, W, L) expected, got {det.shape}, {tag.shape}")
        if det.shape[0] != self.num_joints:
            raise ValueError(f"expected {self.num_joints} heatmaps, got {det.shape[0]}")
        if tag.shape[0] == 1 and self.num_joints > 1:  # one shared tag map (tag_per_joint False)
            tag = np.broadcast_to(tag, (self.num_joints,) + tag.shape[1:])
        return det, tag

    # --------------------------------------------------------------- NMS, top-k
    def nms(self, heatmaps: torch.Tensor | np.ndarray) -> np.ndarray:
        """Official NMS: heatmaps * (maxpool(heatmaps) == heatmaps).

        Args:
            heatmaps: (K, H, W) or (1, K, H, W).

        Returns:
            float32 array of the input shape.
        """
        det = _as_numpy(heatmaps)
        flat = det.reshape(-1, *det.shape[-2:])
        return (flat * (_max_filter(flat, self.nms_padding) == flat)).reshape(det.shape)

    def top_k(self, heatmaps, tags) -> dict[str, np.ndarray]:
        """Official top-k on the NMS'ed heatmaps (dense reference path; `parse` uses `_candidates`).

        Args:
            heatmaps: (1, K, H, W) or (K, H, W).
            tags: (1, K, H, W, L), (K, H, W, L) or (K, H, W).

        Returns:
            {"tag_k": (K, M, L) float32, "loc_k": (K, M, 2) int64 (x, y), "val_k": (K, M) float32},
            per joint sorted by value (descending, ties by lower flat index).
        """
        det, tag = self._prepare(heatmaps, tags)
        k, h, w = det.shape
        values = self.nms(det).reshape(k, h * w)
        order = np.argsort(-values, axis=1, kind="stable")[:, : self.max_num_people]
        rows = np.arange(k)[:, None]
        loc = np.stack([order % w, order // w], axis=2).astype(np.int64)
        return {
            "tag_k": tag.reshape(k, h * w, -1)[rows, order],
            "loc_k": loc,
            "val_k": values[rows, order],
        }

    def _strong(self) -> np.float32:
        """Refine's first pass covers the runs of pixels reaching above this value (speed only)."""
        return np.float32(max(min(self.detection_threshold, _STRONG), 0.0))

    def _candidates(self, det: np.ndarray, tag: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple | None]:
        """top-k restricted to what matching keeps (value > detection threshold), without dense NMS.

        Equals `top_k` followed by the threshold test when detection_threshold >= 0 (one compiled
        pass per joint, which also collects what refine needs); a negative threshold would let
        suppressed pixels (0) pass, so it takes the dense path. Empty slots have value -inf.

        Returns:
            ((tag_k (K, M, L) float32, loc_k (K, M, 2) int64, val_k (K, M) float32), what refine
            needs (the row-run maxima and the strong runs, see `grouping_kernels`) or None).
        """
        if self.detection_threshold < 0:
            top = self.top_k(det, tag)
            return (top["tag_k"], top["loc_k"], top["val_k"]), None
        k, h, w = det.shape
        val_k, pix_k, *scan = self._nms_candidates(det, np.float32(self.detection_threshold), self.nms_padding)
        loc_k = np.stack([pix_k % w, pix_k // w], axis=2)
        tag_k = _TagTable(tag)[pix_k + np.arange(k)[:, None] * (h * w)]
        return (tag_k, loc_k, val_k), tuple(scan)

    def _nms_candidates(self, det: np.ndarray, threshold: np.float32, pad: int) -> tuple[np.ndarray, ...]:
        """`grouping_kernels.nms_candidates` on (K, H, W) heatmaps, split by joint ranges over
        ``threads`` (each joint's results depend on its own map only)."""
        k = det.shape[0]
        m, strong = self.max_num_people, self._strong()
        threads = self._threads() if det.size >= _THREAD_MIN_PIXELS else 1
        groups = _joint_groups(np.ones(k), min(threads, k))
        parts = _run_split(
            lambda g: kernels.nms_candidates(det[g[0] : g[1]], threshold, pad, m, strong), groups, threads
        )
        if len(parts) == 1:
            return parts[0]
        starts, offset = [np.zeros(1, dtype=np.int64)], 0
        for part in parts:
            starts.append(part[4][1:] + offset)
            offset += part[4][-1]
        return (
            np.concatenate([part[0] for part in parts]),
            np.concatenate([part[1] for part in parts]),
            np.concatenate([part[2] for part in parts]),
            np.concatenate([part[3] for part in parts]),
            np.concatenate(starts),
        )

    # ---------------------------------------------------------------- matching
    def match_by_tag(self, tag_k, loc_k, val_k) -> np.ndarray:
        """Official `match_by_tag`, with per-person state in arrays.

        Args:
            tag_k: (K, M, L) candidate tags.
            loc_k: (K, M, 2) candidate integer (x, y).
            val_k: (K, M) candidate values.

        Returns:
            (P, K, 3 + L) float32 people: x, y, value, tag...; zeros for missing joints.
        """
        tag_k = _as_numpy(tag_k)
        val_k = _as_numpy(val_k)
        loc_k = np.asarray(loc_k.cpu().numpy() if isinstance(loc_k, torch.Tensor) else loc_k)
        num_joints, m, dim = tag_k.shape
        # (K, M, 3 + L) float64 rows [x, y, value, tag...], as the official concatenation.
        joints_all = np.concatenate(
            [loc_k.astype(np.float64), val_k[..., None].astype(np.float64), tag_k.astype(np.float64)], axis=2
        )
        state = _People(capacity=num_joints * m + 1, num_joints=num_joints, dim=dim)
        valid = val_k > self.detection_threshold
        num_valid = valid.sum(axis=1).tolist()
        # candidates come sorted by value (top-k): the valid ones are then a prefix, sliced as views
        prefix = bool((valid[:, :-1] >= valid[:, 1:]).all())
        no_dist = np.zeros((0, 0))  # before the first person opens

        for idx in self.joint_order:
            num_added = num_valid[idx]
            if not num_added:
                continue
            if prefix:
                joints = joints_all[idx, :num_added]  # (A, 3 + L) float64
                tags = tag_k[idx, :num_added]  # (A, L) float32
            else:
                joints = joints_all[idx][valid[idx]]
                tags = tag_k[idx][valid[idx]]
            grouped = min(state.count, self.max_num_people)
            if state.count == 0:
                person, dist = np.zeros(num_added, dtype=np.int64), no_dist
            else:
                if self.ignore_too_much and grouped == self.max_num_people:
                    continue
                width = max(num_added, grouped)  # 1e10 padding columns
                if dim < 8:
                    cost, dist = kernels.match_costs(
                        joints, state.running, state.num_tags, grouped, self.use_detection_val, width
                    )
                else:  # numpy's pairwise sum over a long tag axis
                    diff = joints[:, None, 3:] - state.mean_tags(grouped)[None].astype(np.float64)
                    dist = np.sqrt(np.add.reduce(diff * diff, axis=2))  # (A, G), as np.linalg.norm
                    cost = np.full((num_added, width), _PAD_COST)
                    cost[:, :grouped] = np.round(dist) * 100 - joints[:, 2:3] if self.use_detection_val else dist
                person = np.asarray(linear_sum_assignment(cost)[1], dtype=np.int64)  # rows come back as 0..A-1
            count, accepted = kernels.commit_joint(
                state.joints,
                state.running,
                state.partial,
                state.num_tags,
                state.keys,
                state.count,
                idx,
                joints,
                tags,
                person,
                dist,
                grouped,
                self.tag_threshold,
            )
            if count < 0:  # a new key equals an existing one: official dict order, row by row (rare)
                state.assign_in_order(idx, joints, tags, accepted, person)
            else:
                state.count = count
        return state.result()

    # ------------------------------------------------------ adjust and refine
    def adjust(self, people: np.ndarray, heatmaps) -> np.ndarray:
        """Official `adjust`: quarter offset towards the larger neighbour, then +0.5 (in place).

        Args:
            people: (P, K, 3 + L) float32 from `match_by_tag` (integer x, y).
            heatmaps: (K, H, W) or (1, K, H, W), the heatmaps before NMS.

        Returns:
            people, adjusted where value > 0.
        """
        det = _as_numpy(heatmaps)
        det = det.reshape(-1, det.shape[-2], det.shape[-1])
        if people.dtype == np.float32 and people.flags.c_contiguous and kernels.adjust_joints(people, det):
            return people
        person, joint = np.nonzero(people[:, :, 2] > 0)  # joints outside the maps: numpy's indexing
        if person.size == 0:
            return people
        x = people[person, joint, 0].astype(np.int64)
        y = people[person, joint, 1].astype(np.int64)
        dx, dy = _quarter_offset(det, joint, x, y)
        people[person, joint, 0] = x + dx + 0.5
        people[person, joint, 1] = y + dy + 0.5
        return people

    def refine(self, people: np.ndarray, heatmaps, tags, *, method: str = "auto") -> np.ndarray:
        """Official `refine`: fill missing joints from the tag-consistent arg-max (in place).

        Args:
            people: (P, K, 3 + L) float32 (after `adjust` in the official pipeline).
            heatmaps: (K, H, W) or (1, K, H, W) heatmaps before NMS.
            tags: (K, H, W, L) or (1, K, H, W, L) tag maps.
            method: "auto" (compiled: the pairs of a joint visit its pixels by runs of decreasing
                maximum until settled) or "dense" (a full-map scan per pair in numpy, the official
                cost); same results.

        Returns:
            people with missing joints (value 0) filled where the arg-max value is > 0.
        """
        det, tag = self._prepare(heatmaps, tags)
        return self._refine(people, det, tag, method)

    def _refine(
        self, people: np.ndarray, det: np.ndarray, tag: np.ndarray, method: str, scan: tuple | None = None
    ) -> np.ndarray:
        """`refine` on prepared (K, H, W) / (K, H, W, L) arrays; `scan`: from `_candidates` in `parse`."""
        if method not in ("auto", "dense"):
            raise ValueError(f"unknown refine method {method!r}")
        if len(people) == 0:
            return people
        k, h, w = det.shape
        # Mean tag per person over its detected joints (official np.mean order); pairs (person,
        # missing joint), a person without any detected joint has no mean tag.
        detected = people[:, :, 2] > 0
        means = _person_mean_tags(people, tag)
        pair_person, pair_joint = np.nonzero((people[:, :, 2] == 0) & detected.any(axis=1, keepdims=True))
        if pair_person.size == 0:
            return people
        if method == "dense":
            flat_pos = _refine_dense(det, tag, means, pair_person, pair_joint)
        else:
            if scan is None:
                scan = tuple(self._nms_candidates(det, np.float32(np.inf), 0)[2:])
            flat_pos = self._refine_argmax(det, _unshared(tag), means[pair_person], pair_joint.astype(np.int64), scan)
            if people.dtype == np.float32 and people.flags.c_contiguous:
                kernels.fill_refined(people, det, pair_person, pair_joint, flat_pos)
                return people
        y, x = flat_pos // w, flat_pos % w
        value = det[pair_joint, y, x]
        dx, dy = _quarter_offset(det, pair_joint, x, y)
        fill = value > 0
        people[pair_person[fill], pair_joint[fill], 0] = (x + 0.5 + dx)[fill]
        people[pair_person[fill], pair_joint[fill], 1] = (y + 0.5 + dy)[fill]
        people[pair_person[fill], pair_joint[fill], 2] = value[fill]
        return people

    def _refine_argmax(
        self, det: np.ndarray, tag: np.ndarray, mean: np.ndarray, pair_joint: np.ndarray, scan: tuple
    ) -> np.ndarray:
        """`grouping_kernels.refine_argmax` split by joint ranges holding about equal numbers of
        pairs over ``threads`` (a pair's arg-max depends on its joint's maps only)."""
        chunk_max, strong_runs, strong_start = scan
        threads = self._threads() if pair_joint.size >= _THREAD_MIN_PAIRS else 1
        k = det.shape[0]
        groups = _joint_groups(np.bincount(pair_joint, minlength=k), min(threads, k))
        strong = self._strong()
        if len(groups) == 1:
            return kernels.refine_argmax(det, tag, mean, pair_joint, chunk_max, strong_runs, strong_start, strong)
        shared = tag.shape[0] == 1
        selections = [np.flatnonzero((pair_joint >= j0) & (pair_joint < j1)) for j0, j1 in groups]

        def part(item: tuple[tuple[int, int], np.ndarray]) -> np.ndarray:
            (j0, j1), sel = item
            s0, s1 = strong_start[j0], strong_start[j1]
            return kernels.refine_argmax(
                det[j0:j1],
                tag if shared else tag[j0:j1],
                mean[sel],
                pair_joint[sel] - j0,
                chunk_max[j0:j1],
                strong_runs[s0:s1],
                strong_start[j0 : j1 + 1] - s0,
                strong,
            )

        out = np.empty(pair_joint.size, dtype=np.int64)
        for sel, found in zip(selections, _run_split(part, list(zip(groups, selections)), threads)):
            out[sel] = found
        return out

    # ------------------------------------------------------------------ parse
    def parse(
        self, heatmaps, tags, adjust: bool | None = None, refine: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Group one image's heatmaps and tags into people.

        Args:
            heatmaps: (1, K, H, W) or (K, H, W) tensor / array (aggregated, before NMS).
            tags: (1, K, H, W, L) or (K, H, W, L) tensor / array (L = 1, or 2 with flip).
            adjust, refine: override the constructor defaults.

        Returns:
            people (P, K, 3 + L) float32 [x, y, value, tag...] in heatmap pixels (missing joints:
            value 0), scores (P,) float32 = mean joint value before refine.
        """
        adjust = self.adjust_default if adjust is None else adjust
        refine = self.refine_default if refine is None else refine
        det, tag = self._prepare(heatmaps, tags)
        candidates, scan = self._candidates(det, tag)
        people = self.match_by_tag(*candidates)
        if adjust:
            people = self.adjust(people, det)
        scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, dtype=np.float32)
        if refine:
            people = self._refine(people, det, tag, "auto", scan)
        return people, scores.astype(np.float32)


class _People:
    """Growing per-person state of `match_by_tag` (persons in creation order).

    joints (cap, K, 3 + L) float64; key = first tag component of the opening candidate (the
    official dict key). The mean collected tag is kept bit-identical to the official
    ``np.mean(tag_list, axis=0)`` in float32: numpy sums an (n, L >= 2) list row by row, but an
    (n, 1) list as one contiguous run with its pairwise scheme (8 partial sums for n >= 8, combined
    as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the remainder one by one); both
    are maintained incrementally.
    """

    def __init__(self, *, capacity: int, num_joints: int, dim: int) -> None:
        self.joints = np.zeros((capacity, num_joints, 3 + dim))
        self.dim = dim
        self.num_tags = np.zeros(capacity, dtype=np.int64)
        self.running = np.zeros((capacity, dim), dtype=np.float32)  # row-by-row / pairwise running sum
        self.partial = np.zeros((capacity, 8), dtype=np.float32)  # pairwise partial sums (dim 1)
        self.keys = np.zeros(capacity, dtype=np.float32)  # per person, in creation order
        self.count = 0

    def _add_tags(self, persons: np.ndarray, tags: np.ndarray) -> None:
        """Append one tag to each of the distinct `persons` (tags (n, L) float32)."""
        kernels.add_tags(
            self.running,
            self.partial,
            self.num_tags,
            persons.astype(np.int64),
            np.ascontiguousarray(tags, dtype=np.float32),
        )

    def _restart(self, p: int, tag: np.ndarray) -> None:
        self.num_tags[p] = 0
        self.running[p] = 0
        self._add_tags(np.array([p]), tag[None])

    def assign_in_order(self, joint, joints, tags, accepted, person) -> None:
        """Official per-row processing with dict semantics (used only when keys collide)."""
        lookup = {k: p for p, k in reversed(list(enumerate(self.keys[: self.count].tolist())))}
        for row in range(len(joints)):
            if accepted[row]:
                p = int(person[row])
                self.joints[p, joint] = joints[row]
                self._add_tags(np.array([p]), tags[row : row + 1])
                continue
            key = float(tags[row, 0])
            p = lookup.get(key)
            if p is None:
                p = lookup[key] = self.count
                self.keys[p] = key
                self.count += 1
            self.joints[p, joint] = joints[row]  # joint_dict.setdefault(key, ...)[idx] = joint
            self._restart(p, tags[row])  # tag_dict[key] = [tag]

    def mean_tags(self, grouped: int) -> np.ndarray:
        """(G, L) float32 mean collected tag of the first G persons (as np.mean of the tag list)."""
        return self.running[:grouped] / self.num_tags[:grouped, None].astype(np.float32)

    def result(self) -> np.ndarray:
        return self.joints[: self.count].astype(np.float32)


def _refine_dense(det, tag, means, pair_person, pair_joint) -> np.ndarray:
    """Arg-max of heatmap - round(||tag - mean||) over the full map, per (person, joint) pair.

    det (K, H, W), tag (K, H, W, L), means (P, L) float32; pairs (n,) -> flat positions (n,).
    """
    out = np.empty(pair_person.size, dtype=np.int64)
    for j in np.unique(pair_joint):
        sel = np.flatnonzero(pair_joint == j)
        for chunk in np.array_split(sel, max(1, int(np.ceil(sel.size / 8)))):
            m = det[j][None] - _round_distance(tag[j][None], means[pair_person[chunk]][:, None, None, :])
            out[chunk] = np.argmax(m.reshape(len(chunk), -1), axis=1)
    return out


def _person_mean_tags(people: np.ndarray, tag: np.ndarray) -> np.ndarray:
    """(P, L) float32 mean tag of each person's detected joints (value > 0), read at int(x), int(y).

    Bit-identical to the official ``np.mean(list_of_tags, axis=0)`` per person: numpy sums an
    (n, L >= 2) array row by row, an (n, 1) array with its pairwise scheme (n >= 8: 8 partial sums
    r_i = a_i + a_(i+8) + ..., combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then
    the n % 8 remaining terms one by one). Persons without detected joints get zeros.
    """
    p, k = people.shape[:2]
    if not (tag.shape[-1] == 1 and k > 128):
        return kernels.person_mean_tags(np.ascontiguousarray(people), _unshared(tag))
    # beyond numpy's pairwise block size (128 terms): per-person np.mean
    detected = people[:, :, 2] > 0
    means = np.zeros((p, 1), dtype=np.float32)
    for i in np.flatnonzero(detected.any(axis=1)):
        joints = np.flatnonzero(detected[i])
        xy = people[i, joints, :2].astype(np.int32)
        means[i] = np.mean(tag[joints, xy[:, 1], xy[:, 0]], axis=0)
    return means


def _unshared(tag: np.ndarray) -> np.ndarray:
    """(K, H, W, L) tag maps as a contiguous array; a map shared by all joints (broadcast) as
    (1, H, W, L)."""
    return np.ascontiguousarray(tag if tag.strides[0] or tag.shape[0] == 1 else tag[:1])


class _TagTable:
    """Tag maps (K, H, W, L) as a contiguous (rows, L) table addressed by the flat heatmap index
    joint * H * W + pixel (a tag map shared by all joints, i.e. broadcast, is stored once)."""

    def __init__(self, tag: np.ndarray) -> None:
        k, h, w, dim = tag.shape
        self.shared = k > 1 and tag.strides[0] == 0
        self.table = np.ascontiguousarray(tag[0] if self.shared else tag).reshape(-1, dim)
        self.hw = h * w
        self.maps = tag

    def __getitem__(self, flat: np.ndarray) -> np.ndarray:
        """Tags at flat indices (any shape) -> (*flat.shape, L) float32. Rows of L = 1 or 2 float32
        are gathered as single 4- / 8-byte items (fancy indexing of short rows is much slower)."""
        if self.shared:
            flat = flat % self.hw
        dim = self.table.shape[1]
        if dim == 1:
            return self.table.reshape(-1)[flat][..., None]
        if dim == 2:
            return self.table.view(np.int64).reshape(-1)[flat].view(np.float32).reshape(*flat.shape, 2)
        return self.table[flat]
