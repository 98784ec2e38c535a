"""HigherHRNet grouping against the official vector and a plain loop version of the official code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from src.codecs import grouping_kernels
from src.codecs.grouping import COCO_JOINT_ORDER, HeatmapParser, _person_mean_tags, _TagTable

VECTORS_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "algorithm_vectors.json"
K = 17


# ----------------------------------------------------------------------------------------------
# Plain transcription of the official algorithm (HigherHRNet lib/core/group.py), loops and all,
# with scipy's Hungarian solver on the official padded matrix.
def official_match_by_tag(
    tag_k,
    loc_k,
    val_k,
    *,
    joint_order=COCO_JOINT_ORDER,
    detection_threshold=0.1,
    tag_threshold=1.0,
    max_num_people=30,
    use_detection_val=True,
    ignore_too_much=False,
):
    num_joints = tag_k.shape[0]
    default = np.zeros((num_joints, 3 + tag_k.shape[2]))
    joint_dict, tag_dict = {}, {}
    for i, idx in enumerate(joint_order):
        tags = tag_k[idx]
        joints = np.concatenate((loc_k[idx], val_k[idx, :, None], tags), 1)
        mask = joints[:, 2] > detection_threshold
        tags, joints = tags[mask], joints[mask]
        if joints.shape[0] == 0:
            continue
        if i == 0 or len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                key = tag[0]
                joint_dict.setdefault(key, np.copy(default))[idx] = joint
                tag_dict[key] = [tag]
            continue
        grouped_keys = list(joint_dict.keys())[:max_num_people]
        grouped_tags = [np.mean(tag_dict[k], axis=0) for k in grouped_keys]
        if ignore_too_much and len(grouped_keys) == max_num_people:
            continue
        diff = joints[:, None, 3:] - np.array(grouped_tags)[None, :, :]
        diff_normed = np.linalg.norm(diff, ord=2, axis=2)
        diff_saved = np.copy(diff_normed)
        if use_detection_val:
            diff_normed = np.round(diff_normed) * 100 - joints[:, 2:3]
        num_added, num_grouped = diff.shape[0], diff.shape[1]
        if num_added > num_grouped:
            diff_normed = np.concatenate((diff_normed, np.zeros((num_added, num_added - num_grouped)) + 1e10), axis=1)
        for row, col in zip(*linear_sum_assignment(diff_normed)):
            if row < num_added and col < num_grouped and diff_saved[row][col] < tag_threshold:
                key = grouped_keys[col]
                joint_dict[key][idx] = joints[row]
                tag_dict[key].append(tags[row])
            else:
                key = tags[row][0]
                joint_dict.setdefault(key, np.copy(default))[idx] = joints[row]
                tag_dict[key] = [tags[row]]
    return np.array([joint_dict[k] for k in joint_dict]).astype(np.float32).reshape(-1, num_joints, default.shape[1])


def official_adjust(ans, det):
    for people_id in range(len(ans)):
        for joint_id in range(ans.shape[1]):
            joint = ans[people_id, joint_id]
            if joint[2] > 0:
                y, x = joint[0:2]  # (sic: y holds x, x holds y)
                xx, yy = int(x), int(y)
                tmp = det[joint_id]
                if tmp[xx, min(yy + 1, tmp.shape[1] - 1)] > tmp[xx, max(yy - 1, 0)]:
                    y += 0.25
                else:
                    y -= 0.25
                if tmp[min(xx + 1, tmp.shape[0] - 1), yy] > tmp[max(0, xx - 1), yy]:
                    x += 0.25
                else:
                    x -= 0.25
                ans[people_id, joint_id, 0:2] = (y + 0.5, x + 0.5)
    return ans


def official_refine(det, tag, keypoints):
    tags = []
    for i in range(keypoints.shape[0]):
        if keypoints[i, 2] > 0:
            x, y = keypoints[i][:2].astype(np.int32)
            tags.append(tag[i, y, x])
    prev_tag = np.mean(tags, axis=0)
    ans = []
    for i in range(keypoints.shape[0]):
        tmp = det[i, :, :]
        tt = ((tag[i, :, :] - prev_tag[None, None, :]) ** 2).sum(axis=2) ** 0.5
        tmp2 = tmp - np.round(tt)
        y, x = np.unravel_index(np.argmax(tmp2), tmp.shape)
        xx, yy = x, y
        val = tmp[y, x]
        x, y = x + 0.5, y + 0.5
        x += 0.25 if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)] else -0.25
        y += 0.25 if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx] else -0.25
        ans.append((x, y, val))
    ans = np.array(ans)
    for i in range(det.shape[0]):
        if ans[i, 2] > 0 and keypoints[i, 2] == 0:
            keypoints[i, :2] = ans[i, :2]
            keypoints[i, 2] = ans[i, 2]
    return keypoints


def official_parse(parser, det, tag):
    """Official pipeline on (K, H, W) / (K, H, W, L) arrays: dense NMS + top-k, then the loops."""
    top = parser.top_k(det, tag)
    ans = official_match_by_tag(
        top["tag_k"],
        top["loc_k"],
        top["val_k"],
        detection_threshold=parser.detection_threshold,
        max_num_people=parser.max_num_people,
    )
    ans = official_adjust(ans, det)
    scores = np.array([p[:, 2].mean() for p in ans], dtype=np.float32)
    for i in range(len(ans)):
        ans[i] = official_refine(det, tag, ans[i])
    return ans, scores


# ----------------------------------------------------------------------------------------------
def random_candidates(rng, *, dim, quantize=False, num_people=None, m=30):
    """Top-k style inputs: clustered tags for a few people plus clutter; values around the threshold."""
    num_people = num_people or int(rng.integers(1, 12))
    centers = rng.normal(0, 3, size=(num_people, dim))
    who = rng.integers(0, num_people, size=(K, m))
    tag_k = (centers[who] + rng.normal(0, 0.4, size=(K, m, dim))).astype(np.float32)
    if quantize:  # exact ties and repeated keys (official dict-key collisions)
        tag_k = np.round(tag_k * 2) / 2
    val_k = rng.uniform(-0.05, 1.0, size=(K, m)).astype(np.float32)
    val_k[rng.random((K, m)) < 0.3] = 0.0
    loc_k = rng.integers(0, 64, size=(K, m, 2)).astype(np.int64)
    return tag_k, loc_k, val_k


# The official vector (algorithm_vectors.json "match_by_tag"), restated so the test runs without ../shared.
MATCH_BY_TAG_REFERENCE = {
    "result_shape": [3, 17, 4],
    "per_person_num_joints": [17, 17, 1],
    "per_person_mean_score_all17": [0.8999999761581421, 0.800000011920929, 0.029411764815449715],
}


def test_match_by_tag_reference_vector():
    ref = MATCH_BY_TAG_REFERENCE
    if VECTORS_FILE.is_file():
        shared = json.loads(VECTORS_FILE.read_text())["match_by_tag"]
        assert {k: shared[k] for k in ref} == ref
    m = 30
    tag_k = np.zeros((K, m, 1), dtype=np.float32)
    val_k = np.zeros((K, m), dtype=np.float32)
    loc_k = np.zeros((K, m, 2), dtype=np.int64)
    for k in range(K):
        tag_k[k, 0, 0], val_k[k, 0], loc_k[k, 0] = 0.1 + 0.01 * k, 0.9, (10 + k, 20)
        tag_k[k, 1, 0], val_k[k, 1], loc_k[k, 1] = 2.0 - 0.01 * k, 0.8, (40 + k, 50)
    tag_k[16, 2, 0], val_k[16, 2], loc_k[16, 2] = 5.0, 0.5, (60, 60)
    people = HeatmapParser().match_by_tag(tag_k, loc_k, val_k)
    assert people.shape == tuple(ref["result_shape"])
    assert [int((p[:, 2] > 0).sum()) for p in people] == ref["per_person_num_joints"]
    np.testing.assert_allclose(people[:, :, 2].mean(axis=1), ref["per_person_mean_score_all17"], rtol=1e-6)
    np.testing.assert_array_equal(people[0, :, 0], 10 + np.arange(K))
    assert people[2, 16, 3] == 5.0 and people[2, 16, 2] == 0.5


@pytest.mark.parametrize("dim", [1, 2])
def test_match_by_tag_equals_official_loops(dim):
    rng = np.random.default_rng(dim)
    parser = HeatmapParser()
    for case in range(150):
        tag_k, loc_k, val_k = random_candidates(rng, dim=dim, quantize=case % 5 == 0)
        ours = parser.match_by_tag(tag_k, loc_k, val_k)
        ref = official_match_by_tag(tag_k, loc_k, val_k)
        np.testing.assert_array_equal(ours, ref, err_msg=f"case {case}")


@pytest.mark.parametrize(
    "options",
    [
        dict(use_detection_val=False),
        dict(ignore_too_much=True, max_num_people=5),
        dict(max_num_people=3, tag_threshold=1.5),
    ],
)
def test_match_by_tag_options_equal_official(options):
    rng = np.random.default_rng(7)
    parser = HeatmapParser(**options)
    for case in range(40):
        tag_k, loc_k, val_k = random_candidates(rng, dim=2, quantize=case % 4 == 0)
        np.testing.assert_array_equal(
            parser.match_by_tag(tag_k, loc_k, val_k),
            official_match_by_tag(tag_k, loc_k, val_k, **options),
            err_msg=f"case {case}",
        )


def test_match_by_tag_more_people_than_max():
    rng = np.random.default_rng(3)
    tag_k, loc_k, val_k = random_candidates(rng, dim=1, num_people=40, m=40)
    val_k = np.abs(val_k) + 0.2
    parser = HeatmapParser(max_num_people=40)
    np.testing.assert_array_equal(
        parser.match_by_tag(tag_k, loc_k, val_k), official_match_by_tag(tag_k, loc_k, val_k, max_num_people=40)
    )


def test_nms_keeps_only_local_maxima():
    det = np.zeros((1, 12, 12), dtype=np.float32)
    det[0, 5, 5], det[0, 5, 7], det[0, 1, 1], det[0, 5, 10] = 0.9, 0.5, 0.3, 0.95  # 7 is within 2 px of 5
    det[0, 11, 0] = 0.2  # corner, window clipped
    out = HeatmapParser(num_joints=1).nms(det)
    kept = {tuple(int(v) for v in p) for p in np.argwhere(out[0] > 0)}
    assert kept == {(1, 1), (5, 5), (5, 10), (11, 0)}  # (5, 7) lies 2 px from the larger (5, 5)
    assert out[0, 5, 10] == np.float32(0.95) and out[0, 5, 5] == np.float32(0.9) and out[0, 5, 7] == 0


def test_candidates_equal_top_k_after_threshold():
    rng = np.random.default_rng(0)
    parser = HeatmapParser(max_num_people=10)
    for dense in (False, True):
        det = rng.random((K, 40, 56)).astype(np.float32) ** (8 if not dense else 1)
        tag = rng.normal(size=(K, 40, 56, 2)).astype(np.float32)
        top = parser.top_k(det, tag)
        (tag_k, loc_k, val_k), _ = parser._candidates(det, tag)
        keep = top["val_k"] > parser.detection_threshold
        np.testing.assert_array_equal(val_k > parser.detection_threshold, keep)
        np.testing.assert_array_equal(val_k[keep], top["val_k"][keep])
        np.testing.assert_array_equal(loc_k[keep], top["loc_k"][keep])
        np.testing.assert_array_equal(tag_k[keep], top["tag_k"][keep])


def test_adjust_tie_rule_and_border_clamping():
    det = np.zeros((K, 8, 8), dtype=np.float32)
    people = np.zeros((1, K, 4), dtype=np.float32)
    people[0, 0, :3] = (3, 3, 0.9)  # flat neighbourhood: ties -> -0.25 on both axes
    people[0, 1, :3] = (4, 2, 0.9)
    det[1, 2, 5], det[1, 2, 3] = 0.5, 0.4  # right > left -> +0.25; up == down -> -0.25
    det[1, 3, 4] = 0.3  # down > up -> +0.25
    people[0, 2, :3] = (0, 0, 0.9)  # top-left corner: left/up neighbours clamp to the pixel itself
    det[2, 0, 0] = 0.2  # right (0) < left (0.2) -> -0.25; down (0) < up (0.2) -> -0.25
    people[0, 3, :3] = (7, 7, 0.9)
    det[3, 7, 7] = 0.2  # right clamps to itself (0.2) > left (0) -> +0.25; down > up -> +0.25
    out = HeatmapParser().adjust(people.copy(), det)
    np.testing.assert_allclose(out[0, 0, :2], (3.25, 3.25))
    np.testing.assert_allclose(out[0, 1, :2], (4.75, 2.75))
    np.testing.assert_allclose(out[0, 2, :2], (0.25, 0.25))
    np.testing.assert_allclose(out[0, 3, :2], (7.75, 7.75))
    assert np.all(out[0, 4:] == 0)  # missing joints untouched
    np.testing.assert_array_equal(out, official_adjust(people.copy(), det))


def test_refine_fills_a_missing_joint():
    h, w = 32, 40
    det = np.zeros((K, h, w), dtype=np.float32)
    tag = np.zeros((K, h, w, 1), dtype=np.float32)
    tag[:] = 3.0  # far from the person everywhere ...
    det[5, 10, 20], tag[5, 10, 20] = 0.6, 0.0  # ... except the shoulder of person 0
    det[5, 10, 21] = 0.3
    det[6, 12, 30], tag[6, 12, 30] = 0.08, 0.2  # weak right shoulder, same tag: below threshold
    det[7, 20, 5], tag[7, 20, 5] = 0.9, 3.0  # strong elbow of someone else
    det[7, 25, 25], tag[7, 25, 25] = 0.05, 0.1  # weak elbow with the right tag
    people = np.zeros((1, K, 4), dtype=np.float32)
    people[0, 5] = (20.25, 10.75, 0.6, 0.0)  # adjusted coords, as after `adjust`
    out = HeatmapParser().refine(people.copy(), det, tag)
    np.testing.assert_allclose(out[0, 6, :3], (30.25, 12.25, 0.08), rtol=1e-6)  # ties -> -0.25
    np.testing.assert_allclose(out[0, 7, :3], (25.25, 25.25, 0.05), rtol=1e-6)  # 0.05 - 0 > 0.9 - 3
    np.testing.assert_array_equal(out[0, 5], people[0, 5])  # detected joints are never moved
    assert out[0, 0, 2] == 0  # arg-max value 0 (no response): not filled
    np.testing.assert_array_equal(out[0], official_refine(det, tag, people[0].copy()))


@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (130, 200)])
def test_refine_equals_dense_and_official(shape):
    rng = np.random.default_rng(shape[1])
    h, w = shape
    parser = HeatmapParser()
    for dim in (1, 2):
        det = (rng.random((K, h, w)) ** 6 - 0.02).astype(np.float32)
        smooth = np.cumsum(np.cumsum(rng.normal(0, 0.15, size=(K, h, w, dim)), axis=1), axis=2) / 6
        tag = smooth.astype(np.float32)
        people = np.zeros((6, K, 3 + dim), dtype=np.float32)
        for p in range(6):
            joints = rng.choice(K, size=rng.integers(1, 8), replace=False)
            people[p, joints, 0] = rng.integers(0, w, size=joints.size) + 0.75
            people[p, joints, 1] = rng.integers(0, h, size=joints.size) + 0.25
            people[p, joints, 2] = rng.uniform(0.2, 1, size=joints.size)
        ref = np.stack([official_refine(det, tag, p.copy()) for p in people])
        for method in ("dense", "auto"):
            np.testing.assert_array_equal(parser.refine(people.copy(), det, tag, method=method), ref, err_msg=method)


def test_parse_equals_official_pipeline():
    rng = np.random.default_rng(11)
    h, w = 48, 64
    parser = HeatmapParser()
    for dim in (1, 2):
        for _ in range(3):
            det = np.zeros((K, h, w), dtype=np.float32)
            tag = rng.normal(0, 2, size=(K, h, w, dim)).astype(np.float32)
            yy, xx = np.mgrid[0:h, 0:w]
            for _person in range(rng.integers(2, 7)):
                center = rng.normal(0, 2, size=dim)
                for k in range(K):
                    if rng.random() < 0.8:
                        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
                        g = rng.uniform(0.2, 1) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8)
                        det[k] = np.maximum(det[k], g)
                        near = ((xx - cx) ** 2 + (yy - cy) ** 2) < 9
                        tag[k][near] = center + rng.normal(0, 0.2, size=(int(near.sum()), dim))
            det += rng.normal(0, 0.01, size=det.shape).astype(np.float32)
            people, scores = parser.parse(torch.from_numpy(det)[None], torch.from_numpy(tag)[None])
            ref_people, ref_scores = official_parse(parser, det, tag)
            np.testing.assert_array_equal(people, ref_people)
            np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
            assert people.shape[1:] == (K, 3 + dim) and scores.shape == (len(people),)


def test_parse_empty_and_shapes():
    parser = HeatmapParser()
    people, scores = parser.parse(torch.zeros(1, K, 16, 16), torch.zeros(1, K, 16, 16, 2))
    assert people.shape == (0, K, 5) and scores.shape == (0,)
    with pytest.raises(ValueError):
        parser.parse(torch.zeros(2, K, 16, 16), torch.zeros(2, K, 16, 16, 1))
    with pytest.raises(ValueError):
        HeatmapParser(nms_kernel=4, nms_padding=2)


def test_benchmark_smoke(capsys):
    from benchmarks.bench_grouping import main

    medians = main(["--images", "1", "--size", "64", "--repeats", "1"])
    assert medians["parse_refine"] > 0 and "parse(), refine on" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# Refine by the sorted scan (plus the tag-distance pass for the pairs it cannot settle) against the
# official full-map refine, on inputs built to hit ties, edges and every branch.
def random_refine_case(rng, *, h, w, dim, num_people=8, ties=False):
    """Heatmaps with peaks (some > 1), dips (< 0) and noise; smooth tag fields with person tags at
    the peaks; people with many missing joints, one without any detected joint and one complete."""
    yy, xx = np.mgrid[0:h, 0:w]
    det = rng.normal(0, 0.02, size=(K, h, w))
    tag = np.cumsum(np.cumsum(rng.normal(0, 0.3, size=(K, h, w, dim)), axis=1), axis=2) / np.sqrt(h * w) * 4
    centers = rng.uniform(-4, 4, size=(num_people, dim))
    for k in range(K):
        for _ in range(rng.integers(2, 12)):
            cy, cx = rng.uniform(-2, h + 2), rng.uniform(-2, w + 2)  # some peaks just off the map
            g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(2, 12))
            amp = rng.choice([rng.uniform(0.1, 1.0), rng.uniform(1.0, 3.0), -rng.uniform(0.1, 1.0)])
            det[k] = np.maximum(det[k], amp * g) if amp > 0 else np.minimum(det[k], amp * g)
            near = g > 0.3
            tag[k][near] = centers[rng.integers(num_people)] + rng.normal(0, 0.3, size=(int(near.sum()), dim))
    if ties:  # equal heatmap values, equal distances (tags on a grid) and M = value - r ties across r
        det = np.round(det * 8) / 8
        tag = np.round(tag * 2) / 2
    det = det.astype(np.float32) + np.float32(0)  # + 0: no negative zeros
    tag = tag.astype(np.float32)
    people = np.zeros((num_people + 2, K, 3 + dim), dtype=np.float32)
    for p in range(num_people):
        joints = rng.choice(K, size=int(rng.choice([1, 2, 3, rng.integers(1, K)])), replace=False)
        people[p, joints, 0] = rng.integers(0, w, size=joints.size) + rng.choice([0.25, 0.75], size=joints.size)
        people[p, joints, 1] = rng.integers(0, h, size=joints.size) + rng.choice([0.25, 0.75], size=joints.size)
        people[p, joints, 2] = rng.uniform(0.05, 1.5, size=joints.size)
    people[num_people + 1, :, 0] = rng.integers(0, w, size=K) + 0.25  # complete person: nothing to fill
    people[num_people + 1, :, 1] = rng.integers(0, h, size=K) + 0.75
    people[num_people + 1, :, 2] = 0.5
    return det, tag, people  # person num_people: no detected joint, no mean tag, left alone


def official_refine_all(det, tag, people):
    out = people.copy()
    for p in range(len(out)):
        if (out[p, :, 2] > 0).any():
            out[p] = official_refine(det, tag, out[p])
    return out


@pytest.mark.parametrize("dim", [1, 2])
def test_refine_equals_official_randomized(dim):
    rng = np.random.default_rng(100 * dim)
    parser = HeatmapParser()
    for case, (h, w) in enumerate([(37, 53), (24, 30), (64, 64), (61, 97), (5, 9), (3, 70)] * 3):
        det, tag, people = random_refine_case(rng, h=h, w=w, dim=dim, ties=case % 3 == 1)
        ref = official_refine_all(det, tag, people)
        np.testing.assert_array_equal(parser.refine(people.copy(), det, tag), ref, err_msg=f"case {case}")
        if case < 5:
            np.testing.assert_array_equal(parser.refine(people.copy(), det, tag, method="dense"), ref)


def test_refine_far_mean_tags_and_wide_values():
    """Mean tags far from every tag (nothing near: the answer is an M < 0 arg-max over the whole map),
    heatmaps far above 1 and below 0, L = 3."""
    rng = np.random.default_rng(5)
    parser = HeatmapParser()
    for case in range(6):
        h, w = 40 + case, 70 - case
        det = (rng.normal(0, 1, size=(K, h, w)) * 10 ** rng.uniform(-2, 2)).astype(np.float32)
        tag = rng.uniform(-1, 1, size=(K, h, w, 3)).astype(np.float32)
        people = np.zeros((4, K, 6), dtype=np.float32)
        people[:, 0, :2] = rng.integers(0, 30, size=(4, 2)) + 0.25
        people[:, 0, 2] = 1.0
        far = [[9, 9, 9], [-9, 3, 0], [2.6, 0, 0], [1.4, 1.4, 1.4]]  # mean tags of the 4 persons
        tag[0, people[:, 0, 1].astype(int), people[:, 0, 0].astype(int)] = far
        np.testing.assert_array_equal(parser.refine(people.copy(), det, tag), official_refine_all(det, tag, people))


def test_refine_shared_tag_map_and_bad_method():
    rng = np.random.default_rng(6)
    det, tag, people = random_refine_case(rng, h=33, w=45, dim=2)
    shared = np.broadcast_to(tag[:1], tag.shape)  # one tag map for all joints (tag_per_joint False)
    parser = HeatmapParser()
    np.testing.assert_array_equal(parser.refine(people.copy(), det, tag[:1]), official_refine_all(det, shared, people))
    with pytest.raises(ValueError):
        parser.refine(people.copy(), det, tag, method="nope")


@pytest.mark.parametrize("stress", [False, True])
@pytest.mark.parametrize("dim", [1, 2])
def test_parse_equals_official_pipeline_on_benchmark_inputs(dim, stress):
    from benchmarks.bench_grouping import make_inputs

    rng = np.random.default_rng(dim + 2 * stress)
    parser = HeatmapParser()
    for size in (64, 96):
        det, tag, _ = make_inputs(rng, size=size, num_joints=K, dim=dim, stress=stress)
        people, scores = parser.parse(torch.from_numpy(det)[None], torch.from_numpy(tag)[None])
        ref_people, ref_scores = official_parse(parser, det, tag)
        np.testing.assert_array_equal(people, ref_people)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
        np.testing.assert_array_equal(
            parser.parse(det, tag, refine=False)[0],
            official_adjust(
                official_match_by_tag(*(parser.top_k(det, tag)[key] for key in ("tag_k", "loc_k", "val_k"))), det
            ),
        )


@pytest.mark.parametrize("stress", [False, True])
def test_threads_give_the_same_people(monkeypatch, stress):
    """The candidate pass and refine split by joint ranges over threads (forced here on small
    maps): the same people and scores as in one thread, for a shared tag map too."""
    from benchmarks.bench_grouping import make_inputs
    from src.codecs import grouping

    monkeypatch.setattr(grouping, "_THREAD_MIN_PIXELS", 0)
    monkeypatch.setattr(grouping, "_THREAD_MIN_PAIRS", 0)
    rng = np.random.default_rng(5 + stress)
    for dim in (1, 2):
        det, tag, _ = make_inputs(rng, size=96, num_joints=K, dim=dim, stress=stress)
        for tags in (tag, np.broadcast_to(tag[:1], tag.shape)):
            one = HeatmapParser(threads=1).parse(det, tags)
            assert len(one[0]) > 0
            for threads in (2, 3, 5):
                people, scores = HeatmapParser(threads=threads).parse(det, tags)
                np.testing.assert_array_equal(people, one[0])
                np.testing.assert_array_equal(scores, one[1])
            joints_only = HeatmapParser(threads=3)
            adjusted = joints_only.parse(det, tags, refine=False)[0]
            np.testing.assert_array_equal(
                joints_only.refine(adjusted.copy(), det, tags), HeatmapParser(threads=1).refine(adjusted, det, tags)
            )
    with pytest.raises(ValueError, match="threads"):
        HeatmapParser(threads=0)


def test_joint_groups_and_pools(monkeypatch):
    from src.codecs import grouping

    groups = grouping._joint_groups(np.ones(17), 2)
    assert groups == [(0, 9), (9, 17)]
    weights = np.array([0, 5, 0, 0, 1, 1, 1, 1, 1, 0])
    groups = grouping._joint_groups(weights, 3)
    assert groups[0][0] <= 1 and groups[-1][1] >= 9 and all(weights[a:b].sum() > 0 for a, b in groups)
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(groups, groups[1:]))  # contiguous
    assert grouping._joint_groups(np.zeros(4), 2) == [(0, 4)]
    assert grouping._joint_groups(np.ones(3), 8) == [(0, 1), (1, 2), (2, 3)]
    pool = grouping._pool(2)
    assert grouping._pool(2) is pool
    monkeypatch.setattr(grouping.os, "getpid", lambda: -1)  # as in a forked child: a pool of its own
    assert grouping._pool(2) is not pool


def test_refine_equals_dense_on_full_size_maps():
    """At the benchmark's 256 x 256 maps refine settles most pairs on the strong runs and hands the
    others to the block scan: still the dense (official) result."""
    from benchmarks.bench_grouping import make_inputs

    rng = np.random.default_rng(21)
    parser = HeatmapParser()
    for dim in (1, 2):
        det, tag, _ = make_inputs(rng, size=256, num_joints=K, dim=dim)
        people = parser.parse(det, tag, refine=False)[0]
        np.testing.assert_array_equal(
            parser.refine(people.copy(), det, tag), parser.refine(people.copy(), det, tag, method="dense")
        )


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("num_joints", [5, 17, 30])
def test_person_mean_tags_equal_np_mean(dim, num_joints):
    """Row-by-row sums for L >= 2, numpy's pairwise sum for L = 1 (8 partial sums from 8 terms on)."""
    rng = np.random.default_rng(dim * num_joints)
    h, w = 9, 11
    tag = rng.normal(size=(num_joints, h, w, dim)) * 10 ** rng.uniform(-4, 4, size=(num_joints, h, w, dim))
    tag = tag.astype(np.float32)
    people = np.zeros((60, num_joints, 3 + dim), dtype=np.float32)
    for p in range(60):
        n = min(int(rng.integers(0, num_joints + 1)) if p % 3 else num_joints - p % 4, num_joints)
        joints = rng.choice(num_joints, size=n, replace=False)
        people[p, joints, 0] = rng.integers(0, w, size=n) + 0.5
        people[p, joints, 1] = rng.integers(0, h, size=n) + 0.5
        people[p, joints, 2] = rng.uniform(0.1, 1, size=n)
    ours = _person_mean_tags(people, tag)
    for p in range(60):
        joints = np.flatnonzero(people[p, :, 2] > 0)
        if joints.size:
            xy = people[p, joints, :2].astype(np.int32)
            np.testing.assert_array_equal(
                ours[p],
                np.mean([tag[j, y, x] for j, (x, y) in zip(joints, xy)], axis=0),
                err_msg=f"person {p}, {joints.size} joints",
            )


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_candidates_equal_dense_nms(kernel):
    """The compiled local-maximum test (window clipped at the border) equals the dense max-pool NMS
    followed by top-k and the threshold, plateaus and ties included; its run maxima are the maxima
    of the 16-pixel runs of each row."""
    rng = np.random.default_rng(kernel)
    parser = HeatmapParser(nms_kernel=kernel, nms_padding=kernel // 2, max_num_people=12)
    for h, w in ((23, 31), (4, 6), (64, 48), (3, 40)):
        det = (np.round(rng.random((K, h, w)) ** 3 * 8) / 8).astype(np.float32)  # plateaus and ties
        tag = rng.normal(size=(K, h, w, 2)).astype(np.float32)
        top = parser.top_k(det, tag)
        keep = top["val_k"] > parser.detection_threshold
        (tag_k, loc_k, val_k), (run_max, strong_runs, strong_start) = parser._candidates(det, tag)
        np.testing.assert_array_equal(val_k, np.where(keep, top["val_k"], -np.inf))
        np.testing.assert_array_equal(loc_k[keep], top["loc_k"][keep])
        np.testing.assert_array_equal(tag_k[keep], top["tag_k"][keep])
        padded = np.pad(det, ((0, 0), (0, 0), (0, -w % 16)), constant_values=-np.inf)
        np.testing.assert_array_equal(run_max, padded.reshape(K, h, -1, 16).max(axis=3))
        strong = run_max.reshape(K, -1) > parser._strong()
        np.testing.assert_array_equal(strong_runs, np.nonzero(strong)[1])
        np.testing.assert_array_equal(np.diff(strong_start), strong.sum(axis=1))


def test_tag_table_gather():
    rng = np.random.default_rng(9)
    for dim in (1, 2, 3):
        tag = rng.normal(size=(4, 5, 6, dim)).astype(np.float32)
        flat = rng.integers(0, 4 * 30, size=(7, 3))
        np.testing.assert_array_equal(_TagTable(tag)[flat], tag.reshape(-1, dim)[flat])
        shared = np.broadcast_to(tag[:1], tag.shape)
        np.testing.assert_array_equal(_TagTable(shared)[flat], tag[0].reshape(-1, dim)[flat % 30])


def brute_force_refine(det, tag, mean, joint):
    """Official per-pair target: first arg-max over the map of value - round(||tag - mean||)."""
    m = det[joint] - np.round(((tag[joint] - mean) ** 2).sum(axis=-1) ** 0.5)
    return int(np.argmax(m))


def test_refine_kernel_edge_cases():
    """Ties the run-ordered search must not miss: (a) a pixel whose value equals the best M, with a
    lower index; (b) the best M of the strongest runs just below a weaker run's pixel; (c) a weaker
    pixel with M equal to the best and a lower index; (d) a ramp, the arg-max in the weakest run;
    (e) a run whose maximum equals the best M exactly, its pixel at a lower index; (f) all runs
    equal (one bucket)."""
    h, w = 8, 20
    det = np.zeros((K, h, w), dtype=np.float32) - 1
    tag = np.zeros((K, h, w, 1), dtype=np.float32)
    mean = np.zeros((6, 1), dtype=np.float32)
    # (a) joint 0: 32 pixels of value 3 at distance 1 (M = 2), then a value 2 at distance 0, index 0
    det[0].reshape(-1)[100:132] = 3
    tag[0].reshape(-1)[100:132] = 1
    det[0, 0, 0] = 2
    # (b) joint 1: {2.0 (r = 1), 1.005 (r = 1)}; weaker: 1.003 (r = 0), M = 1.003 > 1.0
    det[1, 5, 5], tag[1, 5, 5] = 2.0, 1.0
    det[1, 6, 6], tag[1, 6, 6] = 1.005, 1.0
    det[1, 7, 7] = 1.003
    # (c) joint 2: {2.0 at index 50 (r = 1)}; weaker: 1.0 at index 10 (r = 0): same M, lower index
    det[2].reshape(-1)[50], tag[2].reshape(-1)[50] = 2.0, 1.0
    det[2].reshape(-1)[10] = 1.0
    # (d) joint 3: a ramp, tags far from the mean except at the weak end
    det[3] = np.linspace(-1, 1, h * w, dtype=np.float32).reshape(h, w)[::-1]
    tag[3] = np.linspace(0, 3, h * w, dtype=np.float32).reshape(h, w, 1)
    mean[3] = 2.0
    # (e) joint 4: best M = 1.0 at (6, 3) (value 2, r = 1); the run (2, 16..19) peaks at exactly 1.0, r = 0
    det[4, 6, 3], tag[4, 6, 3] = 2.0, 1.0
    det[4, 2, 17] = 1.0
    # (f) joint 5: a constant map, tags increasing: the first pixel with the smallest round(distance)
    det[5] = 0.5
    tag[5] = np.linspace(-2, 2, h * w, dtype=np.float32).reshape(h, w, 1)
    pair_joint = np.arange(6, dtype=np.int64)
    for strong in (-np.inf, 0.0, 1.0, 1.5, 2.5):  # from every run listed to none
        strong = np.float32(strong)
        scan = grouping_kernels.nms_candidates(det, np.float32(np.inf), 0, 0, strong)[2:]
        got = grouping_kernels.refine_argmax(det, tag, mean, pair_joint, *scan, strong)
        np.testing.assert_array_equal(got, [brute_force_refine(det, tag, mean[i], i) for i in range(6)])
    assert list(got[:3]) == [0, 7 * w + 7, 10] and got[4] == 2 * w + 17


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("hw", [(61, 97), (16, 32), (9, 16), (8, 15), (3, 70)])
def test_band_boxes_equal_numpy(dim, hw):
    """Refine's tile and block boxes (rows folded element-wise, runs by halving shifts for L = 1, 2)
    against min / max over the same pixels, partial bands and runs included."""
    rng = np.random.default_rng(dim * hw[1])
    h, w = hw
    chunk, rows, runs = grouping_kernels.CHUNK, grouping_kernels.SB_ROWS, grouping_kernels.SB_RUNS
    n_chunks, bands = -(-w // chunk), -(-h // rows)
    sb_cols = -(-n_chunks // runs)
    tag = rng.normal(size=(2, h, w, dim)).astype(np.float32)
    maxima = rng.normal(size=(h, n_chunks)).astype(np.float32)
    scratch = np.full((4, w * dim), np.nan, dtype=np.float32)
    tile_box, tile_max = np.empty((bands * n_chunks, 4), np.float32), np.empty(bands * n_chunks, np.float32)
    sb_box, sb_max = np.empty((bands * sb_cols, 4), np.float32), np.empty(bands * sb_cols, np.float32)
    grouping_kernels._tile_maxima(maxima.reshape(-1), h, n_chunks, tile_max, sb_max)
    for band in range(bands):
        grouping_kernels._band_box(tag, 1, n_chunks, band, *scratch, tile_box, sb_box)
    comps = [0, min(1, dim - 1)]
    for band in range(bands):
        for c in range(n_chunks):
            part = tag[1, band * rows : (band + 1) * rows, c * chunk : (c + 1) * chunk]
            expected = [f(part[..., comps[i // 2]]) for i, f in enumerate([np.min, np.max] * 2)]
            np.testing.assert_array_equal(tile_box[band * n_chunks + c], expected)
            assert tile_max[band * n_chunks + c] == maxima[band * rows : (band + 1) * rows, c].max()
        for b in range(sb_cols):
            part = tag[1, band * rows : (band + 1) * rows, b * runs * chunk : (b + 1) * runs * chunk]
            expected = [f(part[..., comps[i // 2]]) for i, f in enumerate([np.min, np.max] * 2)]
            np.testing.assert_array_equal(sb_box[band * sb_cols + b], expected)
            block = maxima[band * rows : (band + 1) * rows, b * runs : (b + 1) * runs]
            assert sb_max[band * sb_cols + b] == block.max()


def test_adjust_and_mean_tags_outside_the_maps():
    """A detected joint at a negative coordinate (official indexing wraps it) takes the numpy path of
    adjust and the same wrapped tag in the mean; one beyond the maps is refused by the mean."""
    rng = np.random.default_rng(9)
    det = rng.random((K, 6, 7)).astype(np.float32)
    tag = rng.normal(size=(K, 6, 7, 2)).astype(np.float32)
    people = np.zeros((2, K, 5), dtype=np.float32)
    people[0, 0, :3] = (-1, 2, 0.9)
    people[0, 3, :3] = (4, 5, 0.8)
    people[1, 1, :3] = (6, 0, 0.7)
    out = HeatmapParser().adjust(people.copy(), det)
    np.testing.assert_array_equal(out, official_adjust(people.copy(), det))
    means = _person_mean_tags(people, tag)
    np.testing.assert_array_equal(means[0], np.mean([tag[0, 2, -1], tag[3, 5, 4]], axis=0))
    np.testing.assert_array_equal(means[1], tag[1, 0, 6])
    people[1, 1, 0] = 7
    with pytest.raises(IndexError, match="outside the tag maps"):
        _person_mean_tags(people, tag)
