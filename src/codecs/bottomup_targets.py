"""Training targets of HigherHRNet / associative embedding (bottom-up pose estimation).

Both generators work at one square output resolution S (official: 128 and 256 for a 512 input)
on joints already mapped to output pixels. Shapes: M people, K keypoints.

- `HeatmapGenerator`: per joint type, an unnormalised Gaussian (peak 1) of (6 sigma + 3)^2 pixels
  pasted at the truncated integer position of every labelled joint; overlaps keep the maximum.
- `JointsGenerator`: per person, the flat indices into the (K, S, S) tag maps of its labelled
  joints, packed to the front of the person's row, each with the flag 1.

Both reproduce the official per-joint loops exactly (same integer positions, rounding and
clipping), vectorised with numpy.
"""

from __future__ import annotations

import numpy as np


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Official kernel: (n, n) float64 with n = ceil(6 sigma + 3), centred at 3 sigma + 1 (peak 1
    for integer sigma), g[i, j] = exp(-((j - c)^2 + (i - c)^2) / (2 sigma^2))."""
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, dtype=np.float64)
    y = x[:, None]
    c = 3 * sigma + 1
    return np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2))


def scale_aware_sigmas(
    boxes_xywh: np.ndarray, *, base_size: float = 256.0, base_sigma: float = 2.0, int_sigma: bool = False
) -> np.ndarray:
    """Official per-person sigma for the scale-aware option (SCALE_AWARE_SIGMA, off in all configs).

    sigma = max(box w, box h) / base_size * base_sigma; with `int_sigma`, int(round(sigma + 0.5)).
    The dataset then divides it by the augmentation scale and stores it in joints[..., 3].

    Args:
        boxes_xywh: (M, 4) COCO boxes (x, y, w, h) in image pixels.

    Returns:
        (M,) float64 sigmas.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    sigmas = np.maximum(boxes[:, 2], boxes[:, 3]) / base_size * base_sigma
    if int_sigma:
        sigmas = np.round(sigmas + 0.5).astype(np.int64).astype(np.float64)
    return sigmas


def _labelled_inside(joints: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official validity rule: v > 0 and the int()-truncated (x, y) inside [0, size).

    joints (M, K, >=3) -> x (M, K) int64, y (M, K) int64, valid (M, K) bool.
    """
    x = np.trunc(joints[..., 0]).astype(np.int64)  # int(): truncation toward zero (-0.5 -> 0)
    y = np.trunc(joints[..., 1]).astype(np.int64)
    valid = (joints[..., 2] > 0) & (x >= 0) & (y >= 0) & (x < size) & (y < size)
    return x, y, valid


class HeatmapGenerator:
    """Official ``HeatmapGenerator`` (and ``ScaleAwareHeatmapGenerator`` with `scale_aware_sigma`).

    For every person and joint k with v > 0: (x, y) = (int(x), int(y)); skipped unless inside
    [0, S); the kernel of `gaussian_kernel(sigma)` is pasted over the window
    [round(x - 3 sigma - 1), round(x + 3 sigma + 2)) (same for y), clipped to the map, and merged
    into channel k with an element-wise max. With sigma 2 the window is 15 x 15 and its centre
    (value 1) is the pixel (x, y).

    Args:
        output_size: S, side of the square output map.
        num_joints: K.
        sigma: Gaussian sigma in output pixels (official 2 at every resolution). Ignored when
            `scale_aware_sigma` is set.
        scale_aware_sigma: read a per-person sigma from joints[m, 0, 3] (official scale-aware
            variant); joints then have 4 columns (see `scale_aware_sigmas`).
    """

    def __init__(self, *, output_size: int, num_joints: int, sigma: float, scale_aware_sigma: bool = False) -> None:
        if not scale_aware_sigma and sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.output_size = output_size
        self.num_joints = num_joints
        self.sigma = sigma
        self.scale_aware_sigma = scale_aware_sigma
        self._kernels: dict[float, np.ndarray] = {}

    def _kernel(self, sigma: float) -> np.ndarray:
        """gaussian_kernel(sigma) as float32 (cached; the official float64 kernel is cast on
        assignment into the float32 maps, and max commutes with that cast)."""
        if sigma not in self._kernels:
            if len(self._kernels) > 256:  # scale-aware sigmas are continuous: bound the cache
                self._kernels.clear()
            self._kernels[sigma] = gaussian_kernel(sigma).astype(np.float32)
        return self._kernels[sigma]

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        """joints (M, K, 3) [x, y, v] in output pixels ((M, K, 4) with the per-person sigma in
        column 3 when scale-aware) -> heatmaps (K, S, S) float32."""
        s = self.output_size
        joints = np.asarray(joints, dtype=np.float64)
        heatmaps = np.zeros((self.num_joints, s, s), dtype=np.float32)
        if joints.size == 0:
            return heatmaps
        joints = joints.reshape(-1, self.num_joints, joints.shape[-1])
        if self.scale_aware_sigma:
            if joints.shape[-1] < 4:
                raise ValueError("scale_aware_sigma needs joints (M, K, 4) with the person's sigma in column 3")
            person_sigma = joints[:, 0, 3]
        else:
            person_sigma = np.full(len(joints), float(self.sigma))
        x, y, valid = _labelled_inside(joints, s)
        flat = heatmaps.reshape(-1)
        for sigma in np.unique(person_sigma[valid.any(axis=1)]):  # one group unless scale-aware
            m_idx, k_idx = np.nonzero(valid & (person_sigma == sigma)[:, None])
            self._paste(flat, float(sigma), k_idx, x[m_idx, k_idx], y[m_idx, k_idx])
        return heatmaps

    def _paste(self, flat: np.ndarray, sigma: float, k: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Max-merge the kernel of `sigma` at J joints (k, x, y each (J,) int64) into
        flat = heatmaps.reshape(-1), in one unbuffered `np.maximum.at` (repeated pixels allowed)."""
        s = self.output_size
        g = self._kernel(sigma)
        off = np.arange(g.shape[0])

        def window(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Pixel indices (J, n) of the kernel rows / cols, and which of them are used."""
            ul = np.round(c - 3 * sigma - 1).astype(np.int64)
            br = np.round(c + 3 * sigma + 2).astype(np.int64)
            idx = ul[:, None] + off
            return idx, (off < (br - ul)[:, None]) & (idx >= 0) & (idx < s)

        rows, row_ok = window(y.astype(np.float64))
        cols, col_ok = window(x.astype(np.float64))
        index = (k[:, None, None] * s + rows[:, :, None]) * s + cols[:, None, :]  # (J, n, n)
        used = row_ok[:, :, None] & col_ok[:, None, :]
        np.maximum.at(flat, index[used], np.broadcast_to(g, index.shape)[used])


class JointsGenerator:
    """Official ``JointsGenerator``: tag-map indices of the labelled joints of each person.

    For person m (the first `max_num_people`; official crashes beyond) and joint k with v > 0 and
    int() position inside [0, S): entry (k S^2 + y S + x, 1) (tag per joint) or (y S + x, 1) is
    written to row m at the next free slot (labelled joints are packed to the front, in joint
    order); unused slots stay (0, 0).

    Args:
        max_num_people: rows of the output (official 30).
        num_joints: K.
        output_size: S.
        tag_per_joint: index into K tag maps (official) or into a single one.
    """

    def __init__(self, *, max_num_people: int, num_joints: int, output_size: int, tag_per_joint: bool = True) -> None:
        self.max_num_people = max_num_people
        self.num_joints = num_joints
        self.output_size = output_size
        self.tag_per_joint = tag_per_joint

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        """joints (M, K, >=3) [x, y, v] in output pixels -> (max_num_people, K, 2) int64 [flat index, flag]."""
        s = self.output_size
        out = np.zeros((self.max_num_people, self.num_joints, 2), dtype=np.int64)
        joints = np.asarray(joints, dtype=np.float64)
        if joints.size == 0:
            return out
        joints = joints.reshape(-1, self.num_joints, joints.shape[-1])[: self.max_num_people]
        x, y, valid = _labelled_inside(joints, s)
        slot = np.cumsum(valid, axis=1) - 1
        m_idx, k_idx = np.nonzero(valid)
        index = y[m_idx, k_idx] * s + x[m_idx, k_idx]
        if self.tag_per_joint:
            index = index + k_idx * s * s
        out[m_idx, slot[m_idx, k_idx], 0] = index
        out[m_idx, slot[m_idx, k_idx], 1] = 1
        return out
