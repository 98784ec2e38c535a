"""HigherHRNet inference pipeline: official resize rules, stage / flip handling, aggregation, and
a round trip through a stub network that "sees" known people."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from src.codecs.bottomup_test_time import (
    aggregate_results,
    final_keypoints,
    get_multi_stage_outputs,
    infer_batch,
    infer_image,
    multi_scale_size,
    resize_align_multi_scale,
)
from src.codecs.grouping import HeatmapParser
from src.datasets.transforms import normalize_image
from src.layouts import COCO17

K = 17
FLIP = COCO17.flip_index


@pytest.mark.parametrize(
    ("wh", "input_size", "scale", "min_scale", "size", "scale_200"),
    [
        ((640, 480), 512, 1.0, 1.0, (704, 512), (704 / 512 * 2.4, 2.4)),  # 640/480*512 = 682.7 -> 704
        ((480, 640), 512, 1.0, 1.0, (512, 704), (2.4, 704 / 512 * 2.4)),
        ((640, 480), 512, 0.5, 0.5, (384, 256), (384 / 256 * 2.4, 2.4)),  # min input 256; 341.3 -> 384
        ((640, 480), 512, 1.0, 0.5, (768, 512), (768 / 512 * 2.4, 2.4)),  # base size follows min_scale
        ((640, 480), 512, 2.0, 0.5, (1536, 1024), (1536 / 1024 * 2.4, 2.4)),
        # Official (x + 63) // 64 * 64 on a float: 640 / 333 * 500 = 960.96 -> 960 (not rounded up).
        ((333, 500), 640, 1.0, 1.0, (640, 960), (333 / 200, 960 / 640 * 333 / 200)),
        ((512, 512), 512, 1.0, 1.0, (512, 512), (2.56, 2.56)),
    ],
)
def test_multi_scale_size(wh, input_size, scale, min_scale, size, scale_200):
    got_size, center, got_scale = multi_scale_size(*wh, input_size, scale, min_scale)
    assert got_size == size
    np.testing.assert_array_equal(center, [int(wh[0] / 2 + 0.5), int(wh[1] / 2 + 0.5)])
    np.testing.assert_allclose(got_scale, scale_200)


def test_resize_align_maps_short_side_and_centre():
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    image[100, 50] = 255
    resized, center, scale = resize_align_multi_scale(image, 256, 1.0, 1.0)
    assert resized.shape == (256, 384, 3)  # short 240 -> 256, long 341.3 -> 384 (padded)
    k = 256 / 240
    expected = ((50 - center[0]) * k + 384 / 2, (100 - center[1]) * k + 256 / 2)
    y, x = np.unravel_index(np.argmax(resized[..., 0]), resized.shape[:2])
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1
    np.testing.assert_allclose(
        final_keypoints(np.array([[[*expected, 1.0]]]), center, scale, (384, 256))[0, 0, :2], (50, 100), atol=1e-4
    )


class ChannelNet(nn.Module):
    """Stage 0: K heatmaps = pooled input + k, K tags = pooled input * 10 + k; stage 1: 2 x upsampled
    heatmaps + 100 k. Flip-equivariant up to the channel constants."""

    def forward(self, x):
        p4 = nn.functional.avg_pool2d(x[:, :1], 4)
        ks = torch.arange(K, dtype=x.dtype).view(1, K, 1, 1)
        p2 = nn.functional.avg_pool2d(x[:, :1], 2)
        return [torch.cat([p4 + ks, p4 * 10 + ks], dim=1), p2 + 100 * ks]


def test_get_multi_stage_outputs_stages_and_flip():
    x = torch.rand(2, 3, 32, 48)
    heatmaps, tags = get_multi_stage_outputs(
        ChannelNet(), x, flip_test=True, flip_index=FLIP, project2image=False, size_projected=None
    )
    assert len(heatmaps) == 2 and len(tags) == 2
    up = nn.functional.interpolate(
        nn.functional.avg_pool2d(x[:, :1], 4), size=(16, 24), mode="bilinear", align_corners=False
    )
    p2 = nn.functional.avg_pool2d(x[:, :1], 2)
    ks = torch.arange(K, dtype=x.dtype).view(1, K, 1, 1)
    torch.testing.assert_close(heatmaps[0], (up + ks + p2 + 100 * ks) / 2)
    torch.testing.assert_close(tags[0], up * 10 + ks)
    # Flipped pass: mirrored back exactly (no shift), channels permuted with the flip index.
    kf = torch.tensor(FLIP, dtype=x.dtype).view(1, K, 1, 1)
    torch.testing.assert_close(heatmaps[1], (up + kf + p2 + 100 * kf) / 2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tags[1], up * 10 + kf, atol=1e-5, rtol=1e-5)
    projected, projected_tags = get_multi_stage_outputs(
        ChannelNet(), x, flip_test=False, flip_index=FLIP, project2image=True, size_projected=(48, 32)
    )
    assert len(projected) == 1 and projected[0].shape == (2, K, 32, 48) and projected_tags[0].shape == (2, K, 32, 48)


def test_aggregate_results_official_rules():
    ones = torch.ones(1, K, 8, 8)
    final, tags = aggregate_results(
        1.0, None, [], [ones, 3 * ones], [ones, 2 * ones], test_scales=(1.0, 0.5), project2image=False, flip_test=True
    )
    assert torch.equal(final, 2 * ones) and [t.shape for t in tags] == [(1, K, 8, 8, 1)] * 2
    small = torch.ones(1, K, 4, 4)
    final, tags = aggregate_results(
        0.5, final, tags, [small, small], [small, small], test_scales=(1.0, 0.5), project2image=False, flip_test=True
    )
    assert torch.equal(final, 3 * ones) and len(tags) == 2  # upsampled sum; tags only from scale 1
    final, tags = aggregate_results(
        2.0, None, [], [small], [small], test_scales=(2.0,), project2image=True, flip_test=False
    )
    assert torch.equal(final, small) and len(tags) == 1  # a single scale keeps its tags


# ----------------------------------------------------------------------------------------------
class SceneNet(nn.Module):
    """Stub HigherHRNet that 'sees' known people: for an input of size (H_in, W_in) it maps each
    scene's keypoints (original image pixels) with x_in = (x - cx) k + W_in / 2 (k = short-side
    ratio, c = rounded image centre), detects a mirrored input by a marker in the image's
    top-left corner, and returns Gaussian heatmaps (peak u = x_in / stride - 0.5, so that the
    official decoding returns x_in) plus constant per-person tags."""

    def __init__(self, scenes):
        super().__init__()
        self.scenes = scenes  # orientation ("landscape" / "portrait") -> (w, h, joints (P, K, 2), tags (P,))
        self.batch_sizes = []

    def render(self, sample, stride):
        _, h_in, w_in = sample.shape
        w0, h0, joints, person_tags = self.scenes["landscape" if w_in >= h_in else "portrait"]
        k = min(h_in, w_in) / min(h0, w0)
        x_in = (joints[..., 0] - int(w0 / 2 + 0.5)) * k + w_in / 2
        y_in = (joints[..., 1] - int(h0 / 2 + 0.5)) * k + h_in / 2
        flipped = sample[0, :, : w_in // 2].mean() < sample[0, :, w_in // 2 :].mean()
        if flipped:  # the marker moved right: the ideal network sees mirrored people
            x_in = (w_in - 1 - x_in)[:, FLIP]
            y_in = y_in[:, FLIP]
        h, w = h_in // stride, w_in // stride
        yy, xx = torch.meshgrid(
            torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
        )
        heat = torch.zeros(K, h, w, dtype=torch.float64)
        tag = torch.zeros(K, h, w, dtype=torch.float64)
        for p in range(joints.shape[0]):
            for j in range(K):
                u, v = x_in[p, j] / stride - 0.5, y_in[p, j] / stride - 0.5
                d2 = (xx - u) ** 2 + (yy - v) ** 2
                heat[j] = torch.maximum(heat[j], torch.exp(-d2 / (2 * 1.5**2)))
                tag[j][d2 < 9] = float(person_tags[p])
        return heat.float(), tag.float()

    def forward(self, x):
        self.batch_sizes.append(x.shape[0])
        out4, out2 = [], []
        for sample in x:
            h4, t4 = self.render(sample, 4)
            h2, _ = self.render(sample, 2)
            out4.append(torch.cat([h4, t4]))
            out2.append(h2)
        return [torch.stack(out4), torch.stack(out2)]


def make_scene(rng, w, h, num_people=2):
    joints = np.stack(
        [
            np.stack(
                [
                    rng.uniform(0.15 * w + 0.4 * w * p, 0.45 * w + 0.4 * w * p, K)
                    if num_people == 2
                    else rng.uniform(0.1 * w, 0.9 * w, K),
                    rng.uniform(0.1 * h, 0.9 * h, K),
                ],
                axis=1,
            )
            for p in range(num_people)
        ]
    )
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[2 : h // 4, 2 : w // 4] = 255  # flip marker (top-left)
    return image, joints, np.arange(num_people) * 3.0 + 1.0


def assert_recovered(people, scores, joints, atol):
    assert people.shape == (len(joints), K, 3) and scores.shape == (len(joints),)
    for p in range(len(joints)):  # match by the nose
        q = int(np.argmin(np.linalg.norm(people[:, 0, :2] - joints[p, 0], axis=1)))
        np.testing.assert_allclose(people[q, :, :2], joints[p], atol=atol)
        assert np.all(people[q, :, 2] > 0.5)


@pytest.mark.parametrize("flip_test", [False, True])
def test_round_trip_single_scale(flip_test):
    rng = np.random.default_rng(int(flip_test))
    image, joints, tags = make_scene(rng, 320, 256)
    net = SceneNet({"landscape": (320, 256, joints, tags)})
    people, scores = infer_image(
        net,
        image,
        input_size=256,
        test_scales=(1,),
        flip_test=flip_test,
        flip_index=FLIP,
        parser=HeatmapParser(),
        normalize=normalize_image,
    )
    assert net.batch_sizes == [2 if flip_test else 1]  # original + mirrored in one batch
    assert_recovered(people, scores, joints, atol=1.5)


def test_round_trip_rescaled_and_multi_scale():
    rng = np.random.default_rng(5)
    image, joints, tags = make_scene(rng, 300, 200)  # short side 200 -> 256: k = 1.28, long side padded
    net = SceneNet({"landscape": (300, 200, joints, tags)})
    kwargs = dict(input_size=256, flip_test=True, flip_index=FLIP, parser=HeatmapParser(), normalize=normalize_image)
    people, scores = infer_image(net, image, test_scales=(1,), **kwargs)
    assert_recovered(people, scores, joints, atol=1.5)
    people, scores = infer_image(net, image, test_scales=(0.5, 1, 2), **kwargs)
    assert_recovered(people, scores, joints, atol=2.0)
    with pytest.raises(ValueError):
        infer_image(net, image, test_scales=(0.5, 2), **kwargs)


def test_infer_batch_groups_equal_sizes_and_matches_single_images():
    rng = np.random.default_rng(9)
    image_a, joints_a, tags_a = make_scene(rng, 320, 256)
    image_b, joints_b, tags_b = make_scene(rng, 192, 256)
    scenes = {"landscape": (320, 256, joints_a, tags_a), "portrait": (192, 256, joints_b, tags_b)}
    kwargs = dict(
        input_size=256,
        test_scales=(1,),
        flip_test=True,
        flip_index=FLIP,
        parser=HeatmapParser(),
        normalize=normalize_image,
    )
    net = SceneNet(scenes)
    results = infer_batch(net, [image_a, image_b, image_a], **kwargs)
    assert sorted(net.batch_sizes) == [2, 4]  # the two landscape images together (x2 for flip)
    single = infer_image(SceneNet(scenes), image_a, **kwargs)
    for got in (results[0], results[2]):
        np.testing.assert_allclose(got[0], single[0], atol=1e-4)
        np.testing.assert_allclose(got[1], single[1], atol=1e-6)
    assert_recovered(*results[1], joints_b, atol=1.5)
    net = SceneNet(scenes)
    infer_batch(net, [image_a, image_a, image_a], max_batch_size=2, **kwargs)
    assert net.batch_sizes == [4, 2]
