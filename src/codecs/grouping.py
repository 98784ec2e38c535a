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

Speed (the official pure-Python loops are this model's evaluation bottleneck): one pass over the
heatmaps collects, per joint type, every pixel above the detection threshold or among about the
``_SET_SIZE`` largest values, sorted (value descending) by one SIMD sort of packed 64-bit keys;
NMS is only evaluated at those above the threshold (neighbour lookups), the matching keeps every
per-person state in arrays (one Python iteration per joint type), and refine finds each arg-max
exactly without scanning the map for every person: since round(.) >= 0, M <= heatmap, so the
(person, missing joint) pairs scan the sorted pixels in rounds, vectorised, and a pair is settled
as soon as its best M exceeds the next heatmap value. The few pairs left (best M below the set's
threshold, e.g. a mean tag far from the tags of every strong pixel) need only the pixels with
round(||tag - mean||) <= floor(threshold - best M): one strided pass over the first tag
dimension per pair selects them (joints with several such pairs first extend the scan).
Inputs are assumed free of NaN (the official arg-max would return the first NaN).

Deviations: ties in the Hungarian step are resolved by ``scipy.optimize.linear_sum_assignment``
(official: the ``munkres`` package), and top-k ties by the lower flat index (official:
``torch.topk`` order); both only matter for exactly equal costs / values.

Shapes: K joints, H x W heatmap, L tag dimensions (1, or 2 with flip test: original and
flipped tags), M = ``max_num_people`` candidates per joint, P people.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

#: Official COCO visiting order: head, shoulders, hips, then elbows, wrists, knees, ankles.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)

#: Padding cost of the official matching (columns for "no person").
_PAD_COST = 1e10

#: Refine scans, per joint, about this many of the largest heatmap pixels (sorted; the same pass
#: gives the NMS candidates) before the tag-distance pass (speed only: results never depend on it).
_SET_SIZE = 1024
#: Prefix lengths after which refine's scan checks which pairs are settled.
_SCAN_ROUNDS = tuple(32 * 2**i for i in range(12))
#: Joints with this many pairs left by the scan get the scan extended to about _EXTEND_SIZE pixels.
_EXTEND_MIN_PAIRS = 3
_EXTEND_SIZE = 4096


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

    def _candidates(
        self, det: np.ndarray, tag: np.ndarray, pixels: _PixelSet | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """top-k restricted to what matching keeps (value > detection threshold), without dense NMS.

        Equals `top_k` followed by the threshold test when detection_threshold >= 0: NMS is only
        evaluated at pixels above the threshold. Empty slots have value -inf. `pixels` (from
        `parse`): a sorted pixel set holding every pixel above the threshold, which saves the pass
        over the maps and the sort.

        Returns:
            tag_k (K, M, L) float32, loc_k (K, M, 2) int64, val_k (K, M) float32.
        """
        if self.detection_threshold < 0:  # suppressed pixels (0) would pass the threshold
            top = self.top_k(det, tag)
            return top["tag_k"], top["loc_k"], top["val_k"]
        k, h, w = det.shape
        m = self.max_num_people
        flat = det.reshape(-1)
        if pixels is not None:  # already sorted per joint by value (descending), then flat index
            above = pixels.value > self.detection_threshold
            idx, values = pixels.flat[above], pixels.value[above]
            keep = self._is_local_max(flat, idx, k, h, w)
            idx, values = idx[keep], values[keep]
            joint = idx // (h * w)
        else:
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
        tag_k[joint, rank] = _TagTable(tag)[idx]
        return tag_k, loc_k, val_k

    def _is_local_max(self, flat: np.ndarray, idx: np.ndarray, k: int, h: int, w: int) -> np.ndarray:
        """For flat indices into (K, H, W): value >= every pixel of its NMS window (clamped)."""
        pad = self.nms_padding
        rem = idx % (h * w)
        y, x = rem // w, rem % w
        value = flat[idx]
        keep = np.ones(idx.size, dtype=bool)
        if pad == 0:
            return keep
        inside = np.flatnonzero((y >= pad) & (y < h - pad) & (x >= pad) & (x < w - pad))
        # Away from the border, the 4 direct neighbours first, one 1-D lookup each (they reject
        # nearly every non-maximum), then the rest of the window for the few survivors at once.
        i, v = idx[inside], value[inside]
        ok = np.ones(inside.size, dtype=bool)
        for offset in (-w, -1, 1, w):
            ok &= v >= flat[i + offset]
        keep[inside] = ok
        dy, dx = np.array([(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)
                           if abs(dy) + abs(dx) > 1]).T
        sub = inside[ok]
        keep[sub] = (value[sub, None] >= flat[idx[sub, None] + (dy * w + dx)]).all(axis=1)
        # Near the border: the whole window, clamped.
        border = np.ones(idx.size, dtype=bool)
        border[inside] = False
        sub = np.flatnonzero(border)
        if sub.size:
            dy, dx = np.array([(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)]).T
            yy = np.clip(y[sub, None] + dy, 0, h - 1)
            xx = np.clip(x[sub, None] + dx, 0, w - 1)
            keep[sub] = (value[sub, None] >= flat[(idx - rem)[sub, None] + yy * w + xx]).all(axis=1)
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
                if dim < 8:  # summed left to right, as np.linalg.norm does for short axes
                    total = diff[..., 0] * diff[..., 0]
                    for c in range(1, dim):
                        total += diff[..., c] * diff[..., c]
                else:
                    total = np.add.reduce(diff * diff, axis=2)
                dist = np.sqrt(total)  # (A, G), as np.linalg.norm
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
            method: "auto" / "scan" (each joint's strongest pixels scanned by decreasing heatmap
                value, then a tag-distance pass for the pairs that scan cannot settle; "tree" is a
                former name of it) or "dense" (full-map scan per pair, the official cost); same
                results.

        Returns:
            people with missing joints (value 0) filled where the arg-max value is > 0.
        """
        det, tag = self._prepare(heatmaps, tags)
        return self._refine(people, det, tag, method)

    def _refine(self, people: np.ndarray, det: np.ndarray, tag: np.ndarray, method: str,
                pixels: _PixelSet | None = None) -> np.ndarray:
        """`refine` on prepared (K, H, W) / (K, H, W, L) arrays; `pixels`: a sorted pixel set from `parse`."""
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
        elif method in ("auto", "scan", "tree"):
            det_flat = det.reshape(k, h * w)
            if pixels is None:
                pixels = _sorted_pixels(det_flat, _top_thresholds(det, np.unique(pair_joint), _SET_SIZE))
            flat_pos = _refine_scan(det, _TagTable(tag), means[pair_person], pair_joint, pixels)
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
    def _pixel_set(self, det: np.ndarray) -> _PixelSet | None:
        """One pass over (K, H, W) maps for both the NMS candidates and refine: per joint, every pixel
        above the detection threshold or among about the _SET_SIZE largest, sorted; None for dense
        maps (many pixels above the threshold) or a negative threshold (then the plain paths)."""
        if self.detection_threshold < 0:
            return None
        k, h, w = det.shape
        det_flat = det.reshape(k, h * w)
        thr = np.minimum(_top_thresholds(det, np.arange(k), _SET_SIZE), np.float32(self.detection_threshold))
        idx = np.flatnonzero(det_flat >= thr[:, None])
        if idx.size > max(det_flat.size // 16, 2 * k * _SET_SIZE):
            return None
        return _sorted_pixels(det_flat, thr, idx)

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
        pixels = self._pixel_set(det) if refine else None
        people = self.match_by_tag(*self._candidates(det, tag, pixels))
        if adjust:
            people = self.adjust(people, det)
        scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, dtype=np.float32)
        if refine:
            people = self._refine(people, det, tag, "auto", pixels)
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


def _person_mean_tags(people: np.ndarray, tag: np.ndarray) -> np.ndarray:
    """(P, L) float32 mean tag of each person's detected joints (value > 0), read at int(x), int(y).

    Bit-identical to the official ``np.mean(list_of_tags, axis=0)`` per person: numpy sums an
    (n, L >= 2) array row by row, an (n, 1) array with its pairwise scheme (n >= 8: 8 partial sums
    r_i = a_i + a_(i+8) + ..., combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then
    the n % 8 remaining terms one by one). Persons without detected joints get zeros.
    """
    p, k = people.shape[:2]
    dim = tag.shape[-1]
    detected = people[:, :, 2] > 0
    count = detected.sum(axis=1)
    if dim == 1 and k > 128:  # beyond numpy's pairwise block size: per-person np.mean
        means = np.zeros((p, 1), dtype=np.float32)
        for i in np.flatnonzero(count):
            joints = np.flatnonzero(detected[i])
            xy = people[i, joints, :2].astype(np.int32)
            means[i] = np.mean(tag[joints, xy[:, 1], xy[:, 0]], axis=0)
        return means
    order = np.argsort(~detected, axis=1, kind="stable")  # detected joints first, in joint order
    valid = np.take_along_axis(detected, order, axis=1)
    xy = np.where(valid[..., None], people[np.arange(p)[:, None], order, :2].astype(np.int32), 0)
    _, h, w, _ = tag.shape
    y, x = xy[..., 1], xy[..., 0]
    if (y < -h).any() or (y >= h).any() or (x < -w).any() or (x >= w).any():
        raise IndexError("detected joint outside the tag maps")
    y, x = y % h, x % w  # negative indices wrap, as in the official indexing
    terms = np.where(valid[..., None], _TagTable(tag)[order * (h * w) + y * w + x], np.float32(0))  # (P, K, L)
    total = terms[:, 0].copy()
    for i in range(1, k):  # row by row; the zero padding adds exactly nothing
        total += terms[:, i]
    if dim == 1 and k >= 8 and count.max() >= 8:
        values = terms[:, :, 0]
        full = count // 8 * 8  # terms in complete blocks of 8
        r = values[:, :8].copy()
        for s in range(8, k - 7, 8):
            r += np.where((s < full)[:, None], values[:, s : s + 8], np.float32(0))
        pairwise = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + ((r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
        for i in range(8, k):
            pairwise += np.where((i >= full) & (i < count), values[:, i], np.float32(0))
        total[:, 0] = np.where(count >= 8, pairwise, total[:, 0])
    return total / np.maximum(count, 1)[:, None].astype(np.float32)


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
        are gathered as single 4- / 8-byte items (fancy indexing of short rows is ~10x slower)."""
        if self.shared:
            flat = flat % self.hw
        dim = self.table.shape[1]
        if dim == 1:
            return self.table.reshape(-1)[flat][..., None]
        if dim == 2:
            return self.table.view(np.int64).reshape(-1)[flat].view(np.float32).reshape(*flat.shape, 2)
        return self.table[flat]


class _PixelSet(NamedTuple):
    """Every pixel of joint j with heatmap value >= thr[j], sorted by joint, value (descending), flat index.

    flat (N,) int64 = joint * H * W + pixel; value (N,) float32; joint (N,) int64; rank (N,) int64:
    position within the joint, which occupies positions start[j]:end[j] (empty where thr[j] = +inf).
    """

    flat: np.ndarray
    value: np.ndarray
    joint: np.ndarray
    rank: np.ndarray
    start: np.ndarray
    end: np.ndarray
    thr: np.ndarray


def _sorted_pixels(det_flat: np.ndarray, thr: np.ndarray, idx: np.ndarray | None = None) -> _PixelSet:
    """`_PixelSet` of det_flat (K, H * W) for thresholds thr (K,) float32 (idx: the flat indices of
    det_flat >= thr[:, None] when already known).

    One sort of packed 64-bit keys [joint | value bits mapped to a decreasing unsigned order | pixel]
    (numpy sorts integers with SIMD, much faster than an arg-sort or lexsort).
    """
    k, hw = det_flat.shape
    if idx is None:
        idx = np.flatnonzero(det_flat >= thr[:, None])
    value = det_flat.reshape(-1)[idx]
    joint = idx // hw
    pbits, jbits = int(hw - 1).bit_length(), int(k - 1).bit_length()
    if jbits + 32 + pbits <= 64:
        # float32 bits -> uint32 decreasing in the value (x >= 0: 0x7FFFFFFF - bits, x < 0: bits);
        # the map is its own inverse.
        bits = value.view(np.uint32)
        desc = bits ^ np.where(bits >> 31, np.uint32(0), np.uint32(0x7FFFFFFF))
        key = (joint.astype(np.uint64) << np.uint64(32 + pbits)) | (desc.astype(np.uint64) << np.uint64(pbits))
        key |= (idx - joint * hw).astype(np.uint64)
        key.sort()
        joint = (key >> np.uint64(32 + pbits)).astype(np.int64)
        idx = joint * hw + (key & np.uint64((1 << pbits) - 1)).astype(np.int64)
        desc = (key >> np.uint64(pbits)).astype(np.uint32)  # keeps the low 32 bits
        value = (desc ^ np.where(desc >> 31, np.uint32(0), np.uint32(0x7FFFFFFF))).view(np.float32)
    else:  # huge maps: plain lexsort
        order = np.lexsort((idx, -value, joint))
        idx, value, joint = idx[order], value[order], joint[order]
    count = np.bincount(joint, minlength=k)
    end = np.cumsum(count)
    start = end - count
    return _PixelSet(idx, value, joint, np.arange(idx.size) - start[joint], start, end, thr)


def _top_thresholds(det: np.ndarray, joints: np.ndarray, size: int) -> np.ndarray:
    """(K,) float32: for each of `joints`, about its `size`-th largest heatmap value (estimated on
    evenly spaced whole rows, about 2048 pixels), -inf when the map has at most `size` pixels;
    +inf for the other joints."""
    k, h, w = det.shape
    thr = np.full(k, np.inf, dtype=np.float32)
    if h * w <= size:
        thr[joints] = -np.inf
        return thr
    sample = det[joints, :: max(h // max(2048 // w, 1), 1)].reshape(joints.size, -1)
    m = sample.shape[1]
    kth = m - 1 - min(m * size // (h * w), m - 1)
    thr[joints] = np.partition(sample, kth, axis=1)[:, kth]
    return thr


def _first_max(owner: np.ndarray, value: np.ndarray, flat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per owner 0..n-1: the max value and the smallest flat index reaching it (np.argmax's rule)."""
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, owner, value)
    top = value == best[owner]
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, owner[top], flat[top])
    return best, first


def _scan(tags: _TagTable, hw: int, mean, pair_joint, pixels: _PixelSet, best, arg):
    """Scan of sorted pixel rows for the exact arg-max of M = heatmap - round(||tag - mean||).

    Since round(.) >= 0, M <= heatmap: going through a joint's pixels by decreasing heatmap value,
    the best M so far (ties: lowest flat index, np.argmax's rule) is final as soon as it exceeds the
    next heatmap value, or once the set is exhausted if it is >= the set threshold. The set is laid
    out as one padded row per joint; pairs scan prefixes of their row in rounds (_SCAN_ROUNDS:
    [0, 32), [32, 64), [64, 128), ...). `best`, `arg` (n,) float32 / int64 flat index: updated in
    place.

    Returns:
        indices of the pairs not settled (best below the threshold after the whole set).
    """
    n, dim = mean.shape
    big = np.iinfo(np.int64).max
    count = pixels.end - pixels.start
    present = np.flatnonzero(count)  # one padded row per joint with pixels
    row_of = np.zeros(count.size, dtype=np.int64)
    row_of[present] = np.arange(present.size)
    width = max(int(count.max(initial=0)), 1)
    lin = row_of[pixels.joint] * width + pixels.rank
    values = np.full((present.size, width), -np.inf, dtype=np.float32)  # padding: -inf, index big, tags 0
    values.reshape(-1)[lin] = pixels.value
    flats = np.full((present.size, width), big)
    flats.reshape(-1)[lin] = pixels.flat
    set_tags = tags[pixels.flat]
    planes = np.zeros((dim, present.size, width), dtype=np.float32)
    for i in range(dim):
        planes[i].reshape(-1)[lin] = set_tags[:, i]
    empty = count[pair_joint] == 0  # nothing to scan: settled iff already >= the threshold
    unsettled = [np.flatnonzero(empty & ~(best >= pixels.thr[pair_joint]))]
    active = np.flatnonzero(~empty)
    lo = 0
    for hi in [c for c in _SCAN_ROUNDS if c < width] + [width]:
        if active.size == 0:
            break
        aj = row_of[pair_joint[active]]
        # M = value - round(sqrt(sum_i (tag_i - mean_i)^2)), summed left to right as the official code
        am = mean[active]
        diff = planes[0][aj, lo:hi] - am[:, 0:1]
        total = diff * diff
        for i in range(1, dim):
            diff = np.subtract(planes[i][aj, lo:hi], am[:, i : i + 1], out=diff)
            total += diff * diff
        m = values[aj, lo:hi]
        m -= np.round(np.sqrt(total, out=total), out=total)
        row_best = m.max(axis=1)
        row_arg = np.where(m == row_best[:, None], flats[aj, lo:hi], big).min(axis=1)
        old_best, old_arg = best[active], arg[active]
        better = (row_best > old_best) | ((row_best == old_best) & (row_arg < old_arg))
        new_best = np.where(better, row_best, old_best)
        best[active] = new_best
        arg[active] = np.where(better, row_arg, old_arg)
        more = hi < count[pair_joint[active]]
        done = np.where(more, new_best > values[aj, min(hi, width - 1)], new_best >= pixels.thr[pair_joint[active]])
        unsettled.append(active[~done & ~more])
        active = active[~done & more]
        lo = hi
    return np.concatenate(unsettled + [active])


def _refine_scan(det, tags: _TagTable, mean, pair_joint, pixels: _PixelSet) -> np.ndarray:
    """Exact arg-max of M = heatmap - round(||tag - mean||) per (mean, joint) pair -> pixel indices.

    `_scan` of `pixels` (about the _SET_SIZE largest heatmap values per joint). Joints where it
    leaves at least _EXTEND_MIN_PAIRS pairs unsettled (best M below the set threshold thr, e.g. a
    mean tag far from the tags of every strong pixel) are scanned on through their next pixels
    (down to about the _EXTEND_SIZE-th value, or the lowest best M). The pairs still unsettled look
    at the rest of the map, where only pixels with round(||tag - mean||) <= floor(thr - best M) can
    reach the best M (their heatmap value is below thr): a pass over the first tag dimension per
    such pair, then the distance on its survivors, selects them, and only they are evaluated.

    det (K, H, W); mean (n, L) float32; pair_joint (n,) -> (n,) int64 pixel index y * W + x.
    """
    k, h, w = det.shape
    hw = h * w
    n, dim = mean.shape
    best = np.full(n, -np.inf, dtype=np.float32)
    arg = np.full(n, np.iinfo(np.int64).max)
    rest = _scan(tags, hw, mean, pair_joint, pixels, best, arg)
    thr = pixels.thr.copy()  # every pixel with value >= thr[j] has been scanned
    crowded = np.flatnonzero(np.bincount(pair_joint[rest], minlength=k) >= _EXTEND_MIN_PAIRS)
    if crowded.size:  # scan on, through the next pixels of joints where many pairs are left
        det_flat = det.reshape(k, hw)
        lowest = np.full(k, np.inf, dtype=np.float32)
        np.minimum.at(lowest, pair_joint[rest], best[rest])
        thr[crowded] = np.minimum(np.maximum(_top_thresholds(det, crowded, _EXTEND_SIZE)[crowded], lowest[crowded]),
                                  pixels.thr[crowded])
        idx = np.concatenate([np.flatnonzero((det_flat[j] >= thr[j]) & (det_flat[j] < pixels.thr[j])) + j * hw
                              for j in crowded])
        sub = rest[np.isin(pair_joint[rest], crowded)]
        sub_best, sub_arg = best[sub], arg[sub]
        left = _scan(tags, hw, mean[sub], pair_joint[sub], _sorted_pixels(det_flat, thr, idx), sub_best, sub_arg)
        best[sub], arg[sub] = sub_best, sub_arg
        rest = np.concatenate([rest[~np.isin(pair_joint[rest], crowded)], sub[left]])
    if rest.size:
        det_all = det.reshape(-1)
        first = tags.maps.reshape(k, hw, dim)[..., 0]  # (K, H * W) strided view
        buffer, mask = np.empty(hw, dtype=np.float32), np.empty(hw, dtype=bool)
        # A pixel not scanned (value < thr) reaches best only if round(d) <= thr - best, and
        # round(d) <= r <=> d <= r + 0.5 (half to even: a superset). Small margins cover float32
        # rounding (of M = value - round(d) too); any d when nothing is known yet.
        t, b = thr[pair_joint[rest]].astype(np.float64), best[rest].astype(np.float64)
        with np.errstate(invalid="ignore"):
            r = np.where(np.isfinite(b), np.floor(t - b + 1e-4 * (1 + np.abs(t) + np.abs(b))), np.inf)
        reach = np.minimum((np.maximum(r, 0) + 0.5) * (1 + 1e-4) + 1e-4, 1e18)
        owners, flats = [], []  # candidates: ||tag - mean|| <= reach
        for j in np.unique(pair_joint[rest]):
            sel = np.flatnonzero(pair_joint[rest] == j)
            # first tag dimension: strided, or copied once when several pairs read it
            column = first[j] if sel.size == 1 else np.ascontiguousarray(first[j])
            for s in sel:  # |tag_0 - mean_0| <= reach in one pass, then the distance (tags still cached)
                if not np.isfinite(r[s]):  # no best M yet: every pixel
                    flat = np.arange(hw) + j * hw
                else:
                    gap = np.abs(np.subtract(column, mean[rest[s], 0], out=buffer), out=buffer)
                    flat = np.flatnonzero(np.less_equal(gap, np.float32(reach[s]), out=mask)) + j * hw
                    diff = tags[flat] - mean[rest[s]]
                    total = diff[:, 0] * diff[:, 0]
                    for c in range(1, dim):
                        total += diff[:, c] * diff[:, c]
                    flat = flat[total <= np.float32(reach[s] * reach[s])]
                owners.append(np.full(flat.size, s))
                flats.append(flat)
        owner, flat = np.concatenate(owners), np.concatenate(flats)
        tag_at = tags[flat]
        value = det_all[flat] - _round_distance(tag_at, mean[rest[owner]])
        owner = np.concatenate([np.arange(rest.size), owner])  # with the scan's best
        value = np.concatenate([best[rest], value])
        flat = np.concatenate([arg[rest], flat])
        arg[rest] = _first_max(owner, value, flat, rest.size)[1]
    return arg - pair_joint * hw
