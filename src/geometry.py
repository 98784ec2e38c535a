"""Top-down crop geometry: affine crops, box -> (center, scale), flips and half-body boxes.

Conventions follow the official HRNet / SimpleBaseline code:

* a person box is described by a ``center`` (2,) in image pixels and a ``scale`` (2,) in units
  of ``pixel_std`` = 200 pixels, so the box is ``200 * scale`` pixels wide and high;
* sizes are always ``(w, h)``;
* the crop matrix maps a source width of ``200 * scale[0]`` onto the output width; ``scale[1]``
  is not used by the matrix (the aspect ratio is fixed beforehand by ``box_xywh_to_center_scale``);
* heatmap coordinates are mapped back to the image without a +0.5 pixel-centre term.

Shapes: N instances, K keypoints. Pure numpy; no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PIXEL_STD = 200.0

ArrayLike2 = Sequence[float] | np.ndarray


def get_affine_transform(
    center: ArrayLike2,
    scale: ArrayLike2 | float,
    rot: float,
    output_size: Sequence[int] | np.ndarray,
    shift: ArrayLike2 = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """Affine matrix of the official top-down crop (three-point construction, closed form).

    The official code matches three point pairs: the shifted box centre c' = c + 200*scale*shift
    goes to the output centre, the point half a (rotated) box width above it goes to the point half
    an output width above the output centre, and a third point completes a right angle. That map
    is a rotation + isotropic scaling, ``x_out = A (x - c') + o`` with ``k = W_out / (200 s_x)``,
    ``A = k [[cos t, sin t], [-sin t, cos t]]`` and ``o = (W_out / 2, H_out / 2)``.

    Args:
        center: (2,) box centre in source pixels.
        scale: (2,) box size in units of 200 px (only ``scale[0]`` is used); a scalar is accepted.
        rot: rotation in degrees (positive rotates the content counter-clockwise in the crop).
        output_size: (w, h) of the destination.
        shift: (2,) centre shift as a fraction of the box size.
        inv: return the destination -> source matrix instead.

    Returns:
        (2, 3) float64 matrix for ``cv2.warpAffine`` / ``affine_transform_points``.
    """
    center = np.asarray(center, dtype=np.float64).reshape(2)
    scale_px = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,)) * PIXEL_STD
    shift = np.asarray(shift, dtype=np.float64).reshape(2)
    out_w, out_h = float(output_size[0]), float(output_size[1])

    src_center = center + scale_px * shift
    dst_center = np.array([out_w * 0.5, out_h * 0.5])
    theta = np.deg2rad(rot)
    cos, sin = np.cos(theta), np.sin(theta)
    rotation = np.array([[cos, sin], [-sin, cos]])  # R(theta)^-1: source direction -> output

    k = out_w / scale_px[0]
    if not inv:
        linear = k * rotation
        translation = dst_center - linear @ src_center
    else:
        linear = rotation.T / k
        translation = src_center - linear @ dst_center
    return np.concatenate([linear, translation[:, None]], axis=1)


def affine_transform_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points.

    Args:
        points: (..., 2) x, y coordinates (e.g. (K, 2) or (N, 2)).
        mat: (2, 3) affine matrix.

    Returns:
        (..., 2) transformed points, float64.
    """
    points = np.asarray(points, dtype=np.float64)
    mat = np.asarray(mat, dtype=np.float64)
    return points @ mat[:, :2].T + mat[:, 2]


def fix_aspect_ratio(size: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Box sizes (..., 2) (w, h) grown on their short side to w / h == aspect_ratio (float64):
    (w, w / a) where w > h a, else (h a, h); mmpose's ``TopdownAffine._fix_aspect_ratio``, and the
    same result as the official HRNet rule of `box_xywh_to_center_scale`."""
    wh = np.asarray(size, dtype=np.float64)
    w, h = wh[..., 0], wh[..., 1]
    wider = w > h * aspect_ratio
    return np.stack([np.where(wider, w, h * aspect_ratio), np.where(wider, w / aspect_ratio, h)], axis=-1)


def _fix_aspect(w: float, h: float, aspect_ratio: float) -> tuple[float, float]:
    """Grow the short side of a (w, h) box so that w / h == aspect_ratio."""
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return w, h


def box_xywh_to_center_scale(
    box: ArrayLike2,
    *,
    aspect_ratio: float,
    padding: float = 1.25,
    pixel_std: float = PIXEL_STD,
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``_xywh2cs``: person box -> (center, scale).

    center = (x + w / 2, y + h / 2); the short side is grown to ``aspect_ratio`` (w / h of the
    model input, e.g. 192 / 256 = 0.75); scale = (w, h) / pixel_std, times ``padding`` unless
    ``center[0] == -1`` (the official sentinel for a missing box).

    Args:
        box: (4,) x, y, w, h in image pixels.

    Returns:
        center (2,) float32, scale (2,) float32.
    """
    x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    w, h = _fix_aspect(w, h, aspect_ratio)
    scale = np.array([w / pixel_std, h / pixel_std], dtype=np.float32)
    if center[0] != -1:
        scale = scale * np.float32(padding)
    return center, scale


def heatmap_to_image_coords(
    coords: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    heatmap_size: Sequence[int],
) -> np.ndarray:
    """Official ``transform_preds``: heatmap pixels -> image pixels (inverse crop, rotation 0).

    Args:
        coords: (N, K, 2) x, y in heatmap pixels.
        centers: (N, 2) box centres in image pixels.
        scales: (N, 2) box scales in units of 200 px.
        heatmap_size: (w, h) of the heatmap.

    Returns:
        (N, K, 2) float64 image coordinates.
    """
    coords = np.asarray(coords, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 2)
    out = np.empty_like(coords)
    for n in range(coords.shape[0]):
        mat = get_affine_transform(centers[n], scales[n], 0.0, heatmap_size, inv=True)
        out[n] = affine_transform_points(coords[n], mat)
    return out


def half_body_center_scale(
    joints: np.ndarray,
    visible: np.ndarray,
    *,
    upper_ids: Sequence[int],
    lower_ids: Sequence[int],
    aspect_ratio: float,
    rng: np.random.Generator,
    padding: float = 1.5,
    pixel_std: float = PIXEL_STD,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Official half-body box (``half_body_transform``).

    The caller decides whether to try it at all (official: more than NUM_JOINTS_HALF_BODY visible
    joints and U(0, 1) < PROB_HALF_BODY). Here: split the visible joints into upper / lower; take
    the upper half if N(0, 1) < 0.5 (official ``randn`` quirk, P ~ 0.69) and it has > 2 joints,
    else the lower half if it has > 2 joints, else the upper half; give up if the chosen half has
    fewer than 2 joints. The box is the joints' extent, grown to ``aspect_ratio``, times
    ``padding`` (1.5), centred on the joints' mean.

    Args:
        joints: (K, 2) x, y in image pixels.
        visible: (K,) visibility; > 0 means visible.
        upper_ids / lower_ids: keypoint indices of the two halves.
        rng: random generator (one standard-normal draw per call).

    Returns:
        (center (2,) float32, scale (2,) float32), or None when no half-body box can be built.
    """
    joints = np.asarray(joints, dtype=np.float32)
    vis = np.asarray(visible).reshape(-1) > 0
    upper_mask = np.zeros(len(vis), dtype=bool)
    upper_mask[list(upper_ids)] = True
    lower_mask = np.zeros(len(vis), dtype=bool)
    lower_mask[list(lower_ids)] = True
    upper = joints[vis & upper_mask]
    lower = joints[vis & lower_mask]

    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None

    center = selected.mean(axis=0).astype(np.float32)
    w, h = (selected.max(axis=0) - selected.min(axis=0)).astype(np.float64)
    w, h = _fix_aspect(float(w), float(h), aspect_ratio)
    scale = np.array([w / pixel_std, h / pixel_std], dtype=np.float32) * np.float32(padding)
    return center, scale


def flip_joints(
    joints: np.ndarray,
    visible: np.ndarray,
    image_width: int,
    flip_index: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror joints horizontally (official ``fliplr_joints``): x <- W - 1 - x, swap left/right.

    Unlike the official helper, invisible joints keep their (mirrored) coordinates instead of
    being zeroed, so flipping twice is the identity; their weight is 0 either way.

    Args:
        joints: (K, 2) x, y in image pixels (extra columns, e.g. (K, 3), are kept unchanged).
        visible: (K,) visibility.
        image_width: width of the image being mirrored.
        flip_index: (K,) permutation, flipped[k] = original[flip_index[k]].

    Returns:
        (joints (K, 2), visible (K,)) new arrays of the input dtypes.
    """
    index = np.asarray(flip_index, dtype=np.int64)
    flipped = np.array(joints, copy=True)
    flipped[:, 0] = image_width - 1 - flipped[:, 0]
    return flipped[index], np.asarray(visible)[index].copy()


def keypoint_boxes(keypoints: np.ndarray, *, min_score: float = 0.0) -> np.ndarray:
    """Boxes (P, 4) [x, y, w, h] spanning each person's keypoints (P, K, 3) [x, y, score] that
    score at least ``min_score`` (all of them when fewer than two do)."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    boxes = np.zeros((len(keypoints), 4), dtype=np.float32)
    for i, kpts in enumerate(keypoints):
        strong = kpts[:, 2] >= min_score
        chosen = kpts[strong] if strong.sum() >= 2 else kpts
        lo, hi = chosen[:, :2].min(axis=0), chosen[:, :2].max(axis=0)
        boxes[i] = [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]
    return boxes


def enlarge_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Boxes (B, 4) [x, y, w, h] scaled ``factor`` times about their centres."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    size = boxes[:, 2:] * np.float32(factor)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    return np.concatenate([centre - size / 2, size], axis=1)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes (B, 4) [x, y, w, h] cut to the image [0, width - 1] x [0, height - 1]."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    x0 = np.clip(boxes[:, 0], 0, width - 1)
    y0 = np.clip(boxes[:, 1], 0, height - 1)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width - 1)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height - 1)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box (N, 4) [x, y, w, h] with every box (M, 4): (N, M)
    float64 in [0, 1]; a pair whose union is empty (two empty boxes) has IoU 0."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    height = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1]
    )
    inter = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    area_a = np.clip(a[:, 2], 0.0, None) * np.clip(a[:, 3], 0.0, None)
    area_b = np.clip(b[:, 2], 0.0, None) * np.clip(b[:, 3], 0.0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros(union.shape), where=union > 0)


def warp_from_reduced(warp: np.ndarray, reduction: int) -> np.ndarray:
    """The (2, 3) matrix that does ``warp`` (full-image pixels -> crop) on the image decoded at
    1/``reduction`` of its size, whose pixel ``i`` is centred on full pixel ``r i + (r - 1) / 2``."""
    if reduction == 1:
        return warp
    out = np.array(warp, dtype=np.float64)
    out[:, 2] += out[:, :2].sum(axis=1) * (reduction - 1) / 2.0
    out[:, :2] *= reduction
    return out


#: Official crop padding of 3DMPPE's ``process_bbox``.
BOX_PADDING = 1.25


def process_bbox(
    boxes: np.ndarray, width: np.ndarray, height: np.ndarray, aspect_ratio: float, *, padding: float = BOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """The official ``process_bbox`` over N boxes: clip to the image, fit the aspect ratio, pad by 1.25.

    The box is clipped as x1 = max(0, x), y1 = max(0, y), x2 = min(W - 1, x1 + max(0, w - 1)),
    y2 = min(H - 1, y1 + max(0, h - 1)) and becomes (x1, y1, x2 - x1, y2 - y1); its shorter side
    (relative to ``aspect_ratio``) grows until w / h = aspect_ratio, both sides are multiplied by
    ``padding`` (official 1.25), and the box is re-centred on the clipped box's centre.

    Args:
        boxes: (N, 4) [x, y, w, h] in image pixels.
        width, height: (N,) image sizes (or scalars).
        aspect_ratio: the model's input width / height.

    Returns:
        (N, 4) float64 crop boxes [x, y, w, h] and (N,) bool ``keep``: False where the official
        code drops the box (w * h <= 0, x2 < x1 or y2 < y1); those rows hold NaN.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = boxes.T
    x1, y1 = np.maximum(0.0, x), np.maximum(0.0, y)
    x2 = np.minimum(np.asarray(width, dtype=np.float64) - 1, x1 + np.maximum(0.0, w - 1))
    y2 = np.minimum(np.asarray(height, dtype=np.float64) - 1, y1 + np.maximum(0.0, h - 1))
    keep = (w * h > 0) & (x2 >= x1) & (y2 >= y1)

    cw, ch = x2 - x1, y2 - y1
    cx, cy = x1 + cw / 2.0, y1 + ch / 2.0
    wider, taller = cw > aspect_ratio * ch, cw < aspect_ratio * ch
    fw = np.where(taller, ch * aspect_ratio, cw) * padding
    fh = np.where(wider, cw / aspect_ratio, ch) * padding
    out = np.stack([cx - fw / 2.0, cy - fh / 2.0, fw, fh], axis=1)
    out[~keep] = np.nan
    return out, keep


@dataclass(frozen=True)
class CropSample:
    """What a 3D dataset knows about one augmented crop (K joints of the model's layout).

    Attributes:
        joints_crop: (K, 2) joints in input-crop pixels (after augmentation).
        depth_relative: (K,) ``Z_joint - Z_root`` in mm (zeros without depth).
        root_depth: the root's camera depth Z in mm (ground truth, or a RootNet / k-value estimate).
        visible: (K,) visibility.
        have_depth: False for 2D-only samples (MPII, COCO): the loss ignores depth.
        bbox: (4,) the crop box [x, y, w, h] as read (before augmentation), image pixels.
        focal: (2,) f_x, f_y in pixels.
        root: index of the root joint in the layout.
    """

    joints_crop: np.ndarray
    depth_relative: np.ndarray
    root_depth: float
    visible: np.ndarray
    have_depth: bool
    bbox: np.ndarray
    focal: np.ndarray
    root: int
