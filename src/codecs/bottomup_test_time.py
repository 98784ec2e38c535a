"""HigherHRNet test-time pipeline: resize, (multi-scale, flip) forward, aggregation, grouping,
back to image pixels (official tools/valid.py + lib/core/inference.py + lib/utils/transforms.py).

1. For each test scale s (descending) the image is warped so that its short side becomes
   s * input_size and its long side a multiple of 64 (`resize_align_multi_scale`).
2. `get_multi_stage_outputs`: the 1/4 output (K heatmaps + K tags) is bilinearly upsampled
   (align_corners=False) to the 1/2 output; heatmaps = mean of the stages' K heatmap channels,
   tags = the K tag channels of the 1/4 output. With flip test the mirrored image goes through
   the network as well; its outputs are mirrored back and their channels permuted with the flip
   index (no one-pixel shift). With project2image, heatmaps and tags are resized bilinearly to
   the base size (the size at s = 1).
3. `aggregate_results`: heatmaps (original + flipped) / 2 summed over scales (then divided by the
   number of scales); tags only from s = 1 (or the single scale), original and flipped stacked
   on a new last axis (L = 2 with flip).
4. `HeatmapParser.parse` groups the people; `final_keypoints` maps heatmap pixels back to the
   image with the inverse affine of (center, scale) at the final heatmap size.

Shapes: N images, K keypoints, P people, L tag dimensions; sizes are (w, h).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from src.codecs.grouping import HeatmapParser
from src.geometry import PIXEL_STD, affine_transform_points, get_affine_transform


def multi_scale_size(
    image_w: int, image_h: int, input_size: int, scale: float, min_scale: float
) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Official `get_multi_scale_size`: network input size, centre and scale for one test scale.

    The smallest scale fixes the grid: min_input = ceil(min_scale * input_size / 64) * 64; the
    short side becomes min_input * scale / min_scale and the long side
    ((min_input * long / short + 63) // 64) * 64 * scale / min_scale, so every scale keeps the
    same aspect ratio. As official, the rounding is done on a float: a long side of 960.96
    becomes 960 (not 1024), i.e. it is rounded up only when the fraction allows.

    Returns:
        ((w_resized, h_resized), center (2,) float64 = (int(w / 2 + 0.5), int(h / 2 + 0.5)),
        scale (2,) float64 in units of 200 px, such that the short side maps exactly).
    """
    center = np.array([int(image_w / 2.0 + 0.5), int(image_h / 2.0 + 0.5)], dtype=np.float64)
    min_input_size = int((min_scale * input_size + 63) // 64 * 64)
    if image_w < image_h:
        w_resized = int(min_input_size * scale / min_scale)
        h_resized = int(int((min_input_size / image_w * image_h + 63) // 64 * 64) * scale / min_scale)
        scale_w = image_w / PIXEL_STD
        scale_h = h_resized / w_resized * image_w / PIXEL_STD
    else:
        h_resized = int(min_input_size * scale / min_scale)
        w_resized = int(int((min_input_size / image_h * image_w + 63) // 64 * 64) * scale / min_scale)
        scale_h = image_h / PIXEL_STD
        scale_w = w_resized / h_resized * image_h / PIXEL_STD
    return (w_resized, h_resized), center, np.array([scale_w, scale_h], dtype=np.float64)


def resize_align_multi_scale(
    image: np.ndarray, input_size: int, scale: float, min_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official `resize_align_multi_scale`: warp (H, W, C) `image` to the size of `multi_scale_size`.

    Returns:
        (resized (h_resized, w_resized, C) same dtype, center (2,), scale (2,)).
    """
    h, w = image.shape[:2]
    size, center, scale_ = multi_scale_size(w, h, input_size, scale, min_scale)
    trans = get_affine_transform(center, scale_, 0.0, size)
    return cv2.warpAffine(image, trans, size), center, scale_


def _resize(x: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(int(s) for s in size_hw), mode="bilinear", align_corners=False)


def get_multi_stage_outputs(
    net: nn.Module,
    image: torch.Tensor,
    *,
    flip_test: bool,
    flip_index: Sequence[int],
    project2image: bool,
    size_projected: Sequence[int] | None,
    num_joints: int = 17,
    with_heatmaps: Sequence[bool] = (True, True),
    with_ae: Sequence[bool] = (True, False),
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Official `get_multi_stage_outputs` for a batch of same-size images.

    Every network output carries K heatmaps in its first channels and, when it has more, tags
    in the next ones (official stage layout: [(N, 2K, H/4, W/4), (N, K, H/2, W/2)]). With flip
    test, the original and mirrored images go through the network as one batch.

    Args:
        net: returns a list of per-stage tensors (or one tensor).
        image: (N, 3, H, W) normalised input.
        flip_test: also run the mirrored image.
        flip_index: (K,) flipped[k] = original[flip_index[k]].
        project2image: resize heatmaps and tags to ``size_projected`` (w, h).
        with_heatmaps, with_ae: per stage, whether its heatmaps / tags are used (TEST.WITH_*).

    Returns:
        heatmaps: [original (N, K, h, w)] (+ [flipped]) — each the mean over the used stages;
        tags: per used tag stage [original (N, K_tag, h, w)] (+ [flipped]), in that order.
    """
    n = image.shape[0]
    batch = torch.cat([image, torch.flip(image, [3])]) if flip_test else image
    outputs = net(batch)
    if isinstance(outputs, torch.Tensor):
        outputs = [outputs]
    final_hw = outputs[-1].shape[-2:]
    index = torch.as_tensor(list(flip_index), device=image.device, dtype=torch.long)

    passes = [slice(0, n), slice(n, 2 * n)] if flip_test else [slice(0, n)]
    heatmaps: list[torch.Tensor] = []
    tags: list[torch.Tensor] = []
    for p, rows in enumerate(passes):
        heat_sum, num_heat = None, 0
        for i, output in enumerate(outputs):
            output = output[rows]
            if len(outputs) > 1 and i != len(outputs) - 1:
                output = _resize(output, final_hw)
            if p == 1:
                output = torch.flip(output, [3])
            if with_heatmaps[i]:
                heat = output[:, :num_joints]
                heat = heat[:, index] if p == 1 else heat
                heat_sum = heat if heat_sum is None else heat_sum + heat
                num_heat += 1
            if with_ae[i] and output.shape[1] > num_joints:
                tag = output[:, num_joints:]
                tags.append(tag[:, index] if p == 1 and tag.shape[1] == num_joints else tag)
        if num_heat == 0:
            raise ValueError("with_heatmaps selects no stage: no heatmaps to average")
        heatmaps.append(heat_sum / num_heat)

    if project2image and size_projected:
        size_hw = (size_projected[1], size_projected[0])
        heatmaps = [_resize(h, size_hw) for h in heatmaps]
        tags = [_resize(t, size_hw) for t in tags]
    return heatmaps, tags


def aggregate_results(
    scale_factor: float,
    final_heatmaps: torch.Tensor | None,
    tags_list: list[torch.Tensor],
    heatmaps: list[torch.Tensor],
    tags: list[torch.Tensor],
    *,
    test_scales: Sequence[float],
    project2image: bool,
    flip_test: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Official `aggregate_results` (call once per scale, in descending scale order).

    Tags are kept only at scale 1 (or when there is a single scale), each as (N, K, h, w, 1)
    (resized to the running heatmap size when not projecting to the image). The scale's
    heatmaps (original + flipped) / 2 are added to ``final_heatmaps`` (resized to it when not
    projecting); divide by the number of scales after the last one.

    Returns:
        (final_heatmaps (N, K, h, w), tags_list).
    """
    if scale_factor == 1 or len(test_scales) == 1:
        if final_heatmaps is not None and not project2image:
            tags = [_resize(t, final_heatmaps.shape[2:4]) for t in tags]
        tags_list.extend(t.unsqueeze(4) for t in tags)
    heatmaps_avg = (heatmaps[0] + heatmaps[1]) / 2.0 if flip_test else heatmaps[0]
    if final_heatmaps is None:
        final_heatmaps = heatmaps_avg
    elif project2image:
        final_heatmaps = final_heatmaps + heatmaps_avg
    else:
        final_heatmaps = final_heatmaps + _resize(heatmaps_avg, final_heatmaps.shape[2:4])
    return final_heatmaps, tags_list


def final_keypoints(
    people: np.ndarray, center: np.ndarray, scale: np.ndarray, heatmap_size: Sequence[int]
) -> np.ndarray:
    """Official bottom-up `get_final_preds`: heatmap pixels -> image pixels.

    Args:
        people: (P, K, C) with x, y in the first two columns (other columns are kept).
        center, scale: of the image (`multi_scale_size`), scale in units of 200 px.
        heatmap_size: (w, h) of the final heatmaps.

    Returns:
        (P, K, C) float32 copy with x, y mapped by the inverse affine (rotation 0).
    """
    out = np.array(people, dtype=np.float32, copy=True)
    if out.size:
        trans = get_affine_transform(center, scale, 0.0, heatmap_size, inv=True)
        out[..., :2] = affine_transform_points(out[..., :2], trans)
    return out


def _as_input(normalize: Callable[[np.ndarray], np.ndarray | torch.Tensor], image: np.ndarray) -> torch.Tensor:
    x = normalize(image)
    return torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x, dtype=torch.float32)


def infer_batch(
    net: nn.Module,
    images: Sequence[np.ndarray],
    *,
    input_size: int,
    test_scales: Sequence[float],
    flip_test: bool,
    flip_index: Sequence[int],
    parser: HeatmapParser,
    normalize: Callable[[np.ndarray], np.ndarray | torch.Tensor],
    project2image: bool = True,
    with_heatmaps: Sequence[bool] = (True, True),
    with_ae: Sequence[bool] = (True, False),
    max_batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bottom-up inference for several images; images whose resized sizes agree at every scale
    go through the network together (at most ``max_batch_size`` at a time).

    Each image gets exactly the official single-image result (the network is run in no-grad
    mode; put it in eval mode first). As official, the final centre / scale are those of the
    smallest scale and the final heatmap size is the base size (project2image) or the largest
    scale's output size.

    Args:
        net: HigherHRNet-style network (see `get_multi_stage_outputs`), in eval mode.
        images: RGB (H, W, 3) uint8 arrays.
        input_size: INPUT_SIZE (512 / 640).
        test_scales: e.g. (1,) or (2, 1, 0.5); must contain 1 when there are several.
        flip_index: COCO17.flip_index for COCO.
        parser: the grouping (`HeatmapParser`).
        normalize: (H, W, 3) uint8 -> (3, H, W) float array / tensor (e.g. `normalize_image`).
        device: where the network runs; default: the network's parameters' device.

    Returns:
        per image: (people (P, K, 3) float32 [x, y, value] in image pixels, scores (P,) float32).
    """
    scales = sorted((float(s) for s in test_scales), reverse=True)
    if len(scales) > 1 and 1.0 not in scales:
        raise ValueError(f"test_scales {tuple(test_scales)} must contain 1.0 (tags are taken at scale 1)")
    min_scale = min(scales)
    if device is None:
        param = next(net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    num_joints = parser.num_joints

    groups: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        key = tuple(multi_scale_size(w, h, input_size, s, min_scale)[0] for s in scales + [1.0])
        groups.setdefault(key, []).append(i)

    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(images)
    step = max_batch_size or len(images)
    with torch.no_grad():
        for key, members in groups.items():
            base_size = key[-1]
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                finals: list[torch.Tensor | None] = [None] * len(chunk)
                tag_lists: list[list[torch.Tensor]] = [[] for _ in chunk]
                geometry: list[tuple[np.ndarray, np.ndarray]] = [None] * len(chunk)  # type: ignore[list-item]
                for s in scales:
                    inputs = []
                    for c, i in enumerate(chunk):
                        resized, center, scale = resize_align_multi_scale(images[i], input_size, s, min_scale)
                        geometry[c] = (center, scale)  # the last (smallest) scale's, as official
                        inputs.append(_as_input(normalize, resized))
                    heatmaps, tags = get_multi_stage_outputs(
                        net,
                        torch.stack(inputs).to(device),
                        flip_test=flip_test,
                        flip_index=flip_index,
                        project2image=project2image,
                        size_projected=base_size,
                        num_joints=num_joints,
                        with_heatmaps=with_heatmaps,
                        with_ae=with_ae,
                    )
                    for c in range(len(chunk)):
                        finals[c], tag_lists[c] = aggregate_results(
                            s,
                            finals[c],
                            tag_lists[c],
                            [hm[c : c + 1] for hm in heatmaps],
                            [t[c : c + 1] for t in tags],
                            test_scales=scales,
                            project2image=project2image,
                            flip_test=flip_test,
                        )
                for c, i in enumerate(chunk):
                    final = (finals[c] / float(len(scales))).float().cpu()
                    people, scores = parser.parse(final, torch.cat(tag_lists[c], dim=4).float().cpu())
                    center, scale = geometry[c]
                    people = final_keypoints(people, center, scale, (final.shape[3], final.shape[2]))
                    results[i] = (people[..., :3], scores)
    return results  # type: ignore[return-value]


def infer_image(
    net: nn.Module,
    image_rgb: np.ndarray,
    *,
    input_size: int,
    test_scales: Sequence[float],
    flip_test: bool,
    flip_index: Sequence[int],
    parser: HeatmapParser,
    normalize: Callable[[np.ndarray], np.ndarray | torch.Tensor],
    project2image: bool = True,
    with_heatmaps: Sequence[bool] = (True, True),
    with_ae: Sequence[bool] = (True, False),
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Official single-image bottom-up inference (see `infer_batch`).

    Returns:
        people (P, K, 3) float32 [x, y, value] in image pixels, scores (P,) float32.
    """
    return infer_batch(
        net,
        [image_rgb],
        input_size=input_size,
        test_scales=test_scales,
        flip_test=flip_test,
        flip_index=flip_index,
        parser=parser,
        normalize=normalize,
        project2image=project2image,
        with_heatmaps=with_heatmaps,
        with_ae=with_ae,
        device=device,
    )[0]
