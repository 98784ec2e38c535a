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

Speed (the official pure-Python loops are this model's evaluation bottleneck): NMS is only
evaluated at pixels above the detection threshold, the matching keeps every per-person state in
arrays (one Python iteration per joint type), and refine finds each arg-max exactly by a
branch-and-bound over 64 / 16 / 4 pixel cells (per cell: max heatmap value and bounding box of
the tags, hence an upper bound of M), vectorised over all (person, missing joint) pairs,
instead of scanning the whole map for every person.

Deviations: ties in the Hungarian step are resolved by ``scipy.optimize.linear_sum_assignment``
(official: the ``munkres`` package), and top-k ties by the lower flat index (official:
``torch.topk`` order); both only matter for exactly equal costs / values.

Shapes: K joints, H x W heatmap, L tag dimensions (1, or 2 with flip test: original and
flipped tags), M = ``max_num_people`` candidates per joint, P people.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

#: Official COCO visiting order: head, shoulders, hips, then elbows, wrists, knees, ankles.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)

#: Padding cost of the official matching (columns for "no person").
_PAD_COST = 1e10


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
    ) -> None:
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

    def _candidates(self, det: np.ndarray, tag: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """top-k restricted to what matching keeps (value > detection threshold), without dense NMS.

        Equals `top_k` followed by the threshold test when detection_threshold >= 0: NMS is only
        evaluated at pixels above the threshold. Empty slots have value -inf.

        Returns:
            tag_k (K, M, L) float32, loc_k (K, M, 2) int64, val_k (K, M) float32.
        """
        if self.detection_threshold < 0:  # suppressed pixels (0) would pass the threshold
            top = self.top_k(det, tag)
            return top["tag_k"], top["loc_k"], top["val_k"]
        k, h, w = det.shape
        m = self.max_num_people
        flat = det.reshape(-1)
        idx = np.flatnonzero(flat > self.detection_threshold)
        if idx.size > flat.size // 16:  # dense maps (e.g. an untrained network): full max filter
            keep = (_max_filter(det, self.nms_padding).reshape(-1) == flat)[idx]
        else:
            keep = self._is_local_max(flat, idx, k, h, w)
        idx = idx[keep]
        values = flat[idx]
        joint = idx // (h * w)
        order = np.lexsort((idx, -values, joint))  # per joint: value descending, then flat index
        idx, values, joint = idx[order], values[order], joint[order]
        starts = np.concatenate([[0], np.cumsum(np.bincount(joint, minlength=k))[:-1]])
        rank = np.arange(idx.size) - starts[joint]
        sel = rank < m
        idx, values, joint, rank = idx[sel], values[sel], joint[sel], rank[sel]
        pix = idx - joint * (h * w)
        val_k = np.full((k, m), -np.inf, dtype=np.float32)
        loc_k = np.zeros((k, m, 2), dtype=np.int64)
        tag_k = np.zeros((k, m, tag.shape[-1]), dtype=np.float32)
        val_k[joint, rank] = values
        loc_k[joint, rank, 0] = pix % w
        loc_k[joint, rank, 1] = pix // w
        tag_k[joint, rank] = tag[joint, pix // w, pix % w]
        return tag_k, loc_k, val_k

    def _is_local_max(self, flat: np.ndarray, idx: np.ndarray, k: int, h: int, w: int) -> np.ndarray:
        """For flat indices into (K, H, W): value >= every pixel of its NMS window (clamped)."""
        pad = self.nms_padding
        rem = idx % (h * w)
        base = idx - rem
        y, x = rem // w, rem % w
        value = flat[idx]
        keep = np.ones(idx.size, dtype=bool)
        # Ring by ring (3x3 first) so that later rings only look at the survivors.
        for ring in range(1, pad + 1):
            offsets = [(dy, dx) for dy in range(-ring, ring + 1) for dx in range(-ring, ring + 1)
                       if max(abs(dy), abs(dx)) == ring]
            sub = np.flatnonzero(keep)
            if sub.size == 0:
                break
            ok = np.ones(sub.size, dtype=bool)
            for dy, dx in offsets:
                yy = np.clip(y[sub] + dy, 0, h - 1)
                xx = np.clip(x[sub] + dx, 0, w - 1)
                ok &= value[sub] >= flat[base[sub] + yy * w + xx]
            keep[sub] = ok
        return keep

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

        for idx in self.joint_order:
            sel = valid[idx]
            if not sel.any():
                continue
            joints = joints_all[idx][sel]  # (A, 3 + L) float64
            tags = tag_k[idx][sel]  # (A, L) float32
            num_added = len(joints)
            if state.count == 0:
                accepted = np.zeros(num_added, dtype=bool)
                person = accepted.astype(np.int64)
            else:
                grouped = min(state.count, self.max_num_people)
                if self.ignore_too_much and grouped == self.max_num_people:
                    continue
                diff = joints[:, None, 3:] - state.mean_tags(grouped)[None].astype(np.float64)
                dist = np.sqrt(np.add.reduce(diff * diff, axis=2))  # (A, G), as np.linalg.norm
                cost = np.full((num_added, max(num_added, grouped)), _PAD_COST)  # 1e10 padding columns
                if self.use_detection_val:
                    cost[:, :grouped] = np.round(dist) * 100 - joints[:, 2:3]
                else:
                    cost[:, :grouped] = dist
                person = linear_sum_assignment(cost)[1]  # rows come back as 0..A-1, all assigned
                accepted = person < grouped
                accepted[accepted] = dist[accepted, person[accepted]] < self.tag_threshold
            new_rows = np.flatnonzero(~accepted)
            if state.keys_collide(tags[new_rows, 0]):
                state.assign_in_order(idx, joints, tags, accepted, person)  # rare: official dict order
            else:
                state.append(idx, person[accepted], joints[accepted], tags[accepted])
                state.open(idx, joints, tags, new_rows)
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
        person, joint = np.nonzero(people[:, :, 2] > 0)
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
            method: "auto", "tree" (branch-and-bound over cells) or "dense" (full-map scan per
                pair, the official cost); same results.

        Returns:
            people with missing joints (value 0) filled where the arg-max value is > 0.
        """
        det, tag = self._prepare(heatmaps, tags)
        if len(people) == 0:
            return people
        # Mean tag per person over its detected joints, read at int(x), int(y) (np.mean order).
        detected = people[:, :, 2] > 0
        means = np.zeros((len(people), tag.shape[-1]), dtype=np.float32)
        for p in range(len(people)):
            joints = np.flatnonzero(detected[p])
            if joints.size:
                xy = people[p, joints, :2].astype(np.int32)
                means[p] = np.mean(tag[joints, xy[:, 1], xy[:, 0]], axis=0)
        # Pairs (person, missing joint); a person without any detected joint has no mean tag.
        pair_person, pair_joint = np.nonzero((people[:, :, 2] == 0) & detected.any(axis=1, keepdims=True))
        if pair_person.size == 0:
            return people
        needed = np.unique(pair_joint)
        k, h, w = det.shape
        if method == "auto":
            # Measured break-even: a full-map scan per pair costs about half (L = 1) or twice (L = 2)
            # the tree's per-joint-type precomputation (bounds of the heatmap and the tag boxes).
            per_pair = 1 if tag.shape[-1] == 1 else 4
            method = "dense" if pair_person.size * per_pair <= 2 * needed.size or h * w <= 4096 else "tree"
        if method == "dense":
            flat_pos = _refine_dense(det, tag, means, pair_person, pair_joint)
        elif method == "tree":
            # Seeds for the lower bounds: every person's detection of each joint type.
            order = np.argsort(~detected.T, axis=1, kind="stable")  # (K, P): detected first
            seed_ok = np.take_along_axis(detected.T, order, axis=1)
            seed_xy = people[order, np.arange(k)[:, None], :2].astype(np.int64)  # int() of coords
            width = max(int(seed_ok.sum(axis=1).max()), 1)
            flat_pos = _refine_tree(det, tag, means, pair_person, pair_joint, needed,
                                    seed_xy[:, :width], seed_ok[:, :width])
        else:
            raise ValueError(f"unknown refine method {method!r}")
        y, x = flat_pos // w, flat_pos % w
        value = det[pair_joint, y, x]
        dx, dy = _quarter_offset(det, pair_joint, x, y)
        fill = value > 0
        people[pair_person[fill], pair_joint[fill], 0] = (x + 0.5 + dx)[fill]
        people[pair_person[fill], pair_joint[fill], 1] = (y + 0.5 + dy)[fill]
        people[pair_person[fill], pair_joint[fill], 2] = value[fill]
        return people

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
        people = self.match_by_tag(*self._candidates(det, tag))
        if adjust:
            people = self.adjust(people, det)
        scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, dtype=np.float32)
        if refine:
            people = self.refine(people, det, tag)
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
        self.partial = np.zeros((capacity, 8, dim), dtype=np.float32)  # pairwise partial sums (dim 1)
        self.keys: set[float] = set()
        self.key_list: list[float] = []
        self.count = 0

    def _add_tags(self, persons: np.ndarray, tags: np.ndarray) -> None:
        """Append one tag to each of the distinct `persons` (tags (n, L) float32)."""
        t = self.num_tags[persons]
        if self.dim == 1:
            first = t < 8
            self.partial[persons[first], t[first]] = tags[first]
            rest = ~first
            self.partial[persons[rest], t[rest] % 8] += tags[rest]
        self.running[persons] += tags
        if self.dim == 1:
            done = (t + 1) % 8 == 0
            if done.any():
                r = self.partial[persons[done]]
                self.running[persons[done]] = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + (
                    (r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
        self.num_tags[persons] = t + 1

    def open(self, joint: int, joints: np.ndarray, tags: np.ndarray, rows: np.ndarray) -> None:
        """New persons for the candidate rows (keys known to be new)."""
        n = len(rows)
        if n == 0:
            return
        persons = np.arange(self.count, self.count + n)
        self.joints[persons, joint] = joints[rows]
        self._add_tags(persons, tags[rows])
        new_keys = tags[rows, 0].tolist()
        self.keys.update(new_keys)
        self.key_list.extend(new_keys)
        self.count += n

    def append(self, joint: int, persons: np.ndarray, joints: np.ndarray, tags: np.ndarray) -> None:
        """Accepted candidates join distinct existing persons."""
        if len(persons) == 0:
            return
        self.joints[persons, joint] = joints
        self._add_tags(persons, tags)

    def keys_collide(self, new_keys: np.ndarray) -> bool:
        """Whether opening persons with these keys would hit an existing key (or each other)."""
        keys = new_keys.tolist()
        return len(set(keys)) != len(keys) or any(k in self.keys for k in keys)

    def _restart(self, p: int, tag: np.ndarray) -> None:
        self.num_tags[p] = 0
        self.running[p] = 0
        self._add_tags(np.array([p]), tag[None])

    def assign_in_order(self, joint, joints, tags, accepted, person) -> None:
        """Official per-row processing with dict semantics (used only when keys collide)."""
        lookup = {k: p for p, k in reversed(list(enumerate(self.key_list)))}
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
                self.keys.add(key)
                self.key_list.append(key)
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


def _cols4(x: np.ndarray, reduce: str) -> np.ndarray:
    """Max / min over groups of 4 along the last axis of a contiguous array (strided maxima)."""
    ufunc = np.maximum if reduce == "amax" else np.minimum
    out = ufunc(x[..., 0::4], x[..., 1::4])
    ufunc(out, x[..., 2::4], out=out)
    return ufunc(out, x[..., 3::4], out=out)


def _pool4(x: np.ndarray, reduce: str) -> np.ndarray:
    """Max or min over 4 x 4 cells of (..., h, w) float32 maps (h, w multiples of 4) -> (..., h/4, w/4)."""
    *lead, h, w = x.shape
    t = torch.from_numpy(np.ascontiguousarray(x)).reshape(*lead, h // 4, 4, w)
    return _cols4(getattr(t, reduce)(-2).numpy(), reduce)  # rows (torch), then columns


def _pool4_channels_last(x: np.ndarray, reduce: str) -> np.ndarray:
    """Same as `_pool4` for (J, h, w, C) float32 maps (the tag layout) -> (J, C, h/4, w/4)."""
    j, h, w, c = x.shape
    rows = getattr(torch.from_numpy(x).view(j, h // 4, 4, w * c), reduce)(2).numpy()  # (J, h/4, w * C)
    rows = np.ascontiguousarray(rows.reshape(j, h // 4, w, c).transpose(0, 3, 1, 2))  # a quarter of the data
    return _cols4(rows, reduce)


class _BoundTree:
    """Upper bounds of M = heatmap - round(||tag - mean||) over square cells of 64, 16 and 4 px.

    Per joint and cell: the max heatmap value and the bounding box of the tags. For any pixel of
    a cell, round(||tag - mean||) >= ceil(dist(mean, box) - 0.5) (round half to even never goes
    below it), so M <= cell max - that integer (a small margin covers float32 rounding).
    Maps are padded to multiples of 64 (heatmap -inf, tags by edge replication).
    """

    def __init__(self, det: np.ndarray, tag: np.ndarray) -> None:
        j, h, w = det.shape
        dim = tag.shape[-1]
        hp, wp = -(-h // 64) * 64, -(-w // 64) * 64
        if (hp, wp) != (h, w):
            det = np.pad(det, ((0, 0), (0, hp - h), (0, wp - w)), constant_values=-np.inf)
            tag = np.pad(tag, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="edge")
        det, tag = np.ascontiguousarray(det), np.ascontiguousarray(tag)
        self.dim = dim
        self.det_flat = det.reshape(-1)  # (J * Hp * Wp,)
        self.tag_flat = tag.reshape(-1, dim)
        self.shape = (hp, wp)
        bmax = [_pool4(det, "amax")]
        lo = [_pool4_channels_last(tag, "amin")]
        hi = [_pool4_channels_last(tag, "amax")]
        for _ in range(2):
            bmax.append(_pool4(bmax[-1], "amax"))
            lo.append(_pool4(lo[-1], "amin"))
            hi.append(_pool4(hi[-1], "amax"))
        # Level 0: 64 px cells, 1: 16 px, 2: 4 px; flat per-cell arrays (J * h * w,).
        self.grid = [b.shape[-2:] for b in bmax[::-1]]
        self.bmax = [b.reshape(-1) for b in bmax[::-1]]
        self.lo = [[t[:, i].reshape(-1) for i in range(dim)] for t in lo[::-1]]
        self.hi = [[t[:, i].reshape(-1) for i in range(dim)] for t in hi[::-1]]

    def bound(self, level: int, slot: np.ndarray, cy: np.ndarray, cx: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Upper bound of M in cells (cy, cx) of `level` for joint slots and means (..., L) -> (...) float32."""
        gh, gw = self.grid[level]
        index = (slot * gh + cy) * gw + cx
        total = None
        for i in range(self.dim):
            m = mean[..., i]
            gap = np.maximum(np.maximum(self.lo[level][i][index] - m, m - self.hi[level][i][index]), 0)
            total = gap * gap if total is None else total + gap * gap
        lower = np.sqrt(total)
        r_low = np.maximum(np.ceil(lower - 0.5 - 1e-4 * (1 + lower)), 0)
        return self.bmax[level][index] - r_low

    def evaluate(self, slot, mean, cy, cx, width: int) -> tuple[np.ndarray, np.ndarray]:
        """M at the 16 pixels of 4 x 4 cells (cy, cx) (m,) for joint slots (m,) and means (m, L)
        -> values (m, 16) float32 (official operation order), flat indices y * width + x (m, 16)."""
        hp, wp = self.shape
        y = cy[:, None] * 4 + _CHILD_Y
        x = cx[:, None] * 4 + _CHILD_X
        index = (slot[:, None] * hp + y) * wp + x
        values = self.det_flat[index] - _round_distance(self.tag_flat[index], mean[:, None, :])
        return values, y * width + x


_CHILD_Y, _CHILD_X = np.divmod(np.arange(16), 4)


def _refine_tree(det, tag, means, pair_person, pair_joint, needed, seed_xy, seed_ok) -> np.ndarray:
    """Exact branch-and-bound version of `_refine_dense` (same first arg-max).

    1. Lower bound LB per pair: the best M at the joint type's detections of all people
       (`seed_xy` (K, S, 2) int, `seed_ok` (K, S)); pairs without any use a greedy descent (the
       best-bound cell at each level, then its 16 pixels).
    2. Level by level, only cells whose bound is >= LB are kept and split into their 16
       children. Of the surviving 4 x 4 cells, each pair's best-bound one is evaluated (three
       rounds, each raising LB), then all cells that can still reach LB. Every pixel with
       M >= LB, hence every arg-max, is evaluated; the first arg-max is the largest
       (M, -flat index).
    """
    k, h, w = det.shape
    if needed.size == k:
        tree, slot = _BoundTree(det, tag), pair_joint
    else:
        tree, slot = _BoundTree(det[needed], tag[needed]), np.searchsorted(needed, pair_joint)
    mean = means[pair_person]  # (n, L) float32
    n = slot.size

    # 1. Lower bounds.
    sx, sy = seed_xy[pair_joint, :, 0], seed_xy[pair_joint, :, 1]  # (n, S)
    seed_m = det[pair_joint[:, None], sy, sx] - _round_distance(tag[pair_joint[:, None], sy, sx], mean[:, None, :])
    lower_bound = np.where(seed_ok[pair_joint], seed_m, -np.inf).max(axis=1, initial=-np.inf).astype(np.float32)
    gh, gw = tree.grid[0]
    ry, rx = np.divmod(np.arange(gh * gw), gw)
    root = tree.bound(0, slot[:, None], ry[None], rx[None], mean[:, None, :])  # (n, R)
    blind = np.flatnonzero(lower_bound == -np.inf)
    if blind.size:
        cell = np.argmax(root[blind], axis=1)
        cy, cx = ry[cell], rx[cell]
        rows = np.arange(blind.size)
        for level in (1, 2):
            ky, kx = cy[:, None] * 4 + _CHILD_Y, cx[:, None] * 4 + _CHILD_X  # (b, 16)
            best_child = np.argmax(tree.bound(level, slot[blind, None], ky, kx, mean[blind, None, :]), axis=1)
            cy, cx = ky[rows, best_child], kx[rows, best_child]
        lower_bound[blind] = tree.evaluate(slot[blind], mean[blind], cy, cx, w)[0].max(axis=1)

    # 2. Pruned expansion down to 4 x 4 cells.
    item, cell = np.nonzero(root >= lower_bound[:, None])
    cy, cx = ry[cell], rx[cell]
    for level in (1, 2):
        ky = (cy[:, None] * 4 + _CHILD_Y).reshape(-1)
        kx = (cx[:, None] * 4 + _CHILD_X).reshape(-1)
        item = np.repeat(item, 16)
        bound = tree.bound(level, slot[item], ky, kx, mean[item])
        keep = bound >= lower_bound[item]
        item, cy, cx, bound = item[keep], ky[keep], kx[keep], bound[keep]

    # 3. Evaluate: each pair's best-bound cell (three rounds), then all cells still >= LB.
    owners, all_values, all_flat = [], [], []

    def evaluate(sel: np.ndarray) -> None:
        values, flat = tree.evaluate(slot[item[sel]], mean[item[sel]], cy[sel], cx[sel], w)
        first = np.argmax(values, axis=1)  # first maximum = lowest flat index within a cell
        cell_max = values[np.arange(sel.size), first]
        np.maximum.at(lower_bound, item[sel], cell_max)
        owners.append(item[sel])
        all_values.append(cell_max)
        all_flat.append(flat[np.arange(sel.size), first])

    done = np.zeros(item.size, dtype=bool)
    remaining = np.arange(item.size)
    for _ in range(3):  # each pair's best-bound remaining cell, three times
        remaining = remaining[~done[remaining] & (bound[remaining] >= lower_bound[item[remaining]])]
        if remaining.size == 0:
            break
        top_bound = np.full(n, -np.inf, dtype=np.float32)
        np.maximum.at(top_bound, item[remaining], bound[remaining])
        at_top = remaining[bound[remaining] == top_bound[item[remaining]]]
        first = at_top[np.unique(item[at_top], return_index=True)[1]]
        evaluate(first)
        done[first] = True
    remaining = remaining[~done[remaining] & (bound[remaining] >= lower_bound[item[remaining]])]
    if remaining.size:
        evaluate(remaining)
    owner, values, flat = np.concatenate(owners), np.concatenate(all_values), np.concatenate(all_flat)
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, owner, values)
    result = np.full(n, np.iinfo(np.int64).max)
    top = values == best[owner]
    np.minimum.at(result, owner[top], flat[top])
    return result
