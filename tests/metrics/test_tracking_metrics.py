"""CLEAR MOT, jitter and video AP (src.metrics.tracking) on hand-made cases, one rule each."""

from __future__ import annotations

import numpy as np
import pytest

from src.layouts import COCO17
from src.metrics.tracking import (
    accelerations,
    clear_mot,
    keypoint_oks,
    matched_trajectories,
    mean_acceleration,
    video_keypoint_ap,
)

SIGMAS = np.asarray(COCO17.sigmas)


def frame(objects, hypotheses, pairs, value=0.9):
    """One frame: similarity `value` for the (object, hypothesis) pairs given by id, 0 elsewhere."""
    sim = np.zeros((len(objects), len(hypotheses)))
    for o, h in pairs:
        sim[objects.index(o), hypotheses.index(h)] = value
    return objects, hypotheses, sim


def test_a_perfect_track_scores_one():
    result = clear_mot([frame([0, 1], [5, 6], [(0, 5), (1, 6)]) for _ in range(4)])
    assert (result.num_objects, result.num_matches, result.num_switches) == (8, 8, 0)
    assert result.mota == 1.0 and result.motp == pytest.approx(0.9)


def test_an_id_switch_is_counted_once_where_the_new_pairing_starts():
    frames = [frame([0], [5], [(0, 5)]), frame([0], [7], [(0, 7)]), frame([0], [7], [(0, 7)])]
    result = clear_mot(frames)
    assert [f.switches for f in result.frames] == [[], [0], []]
    assert result.num_switches == 1 and result.switches_by_object == {0: 1}
    assert result.mota == pytest.approx(1 - 1 / 3)


def test_a_switch_is_counted_against_the_last_match_even_after_a_gap():
    """The object is missed in frame 1 and comes back under another id: one miss, one switch."""
    frames = [frame([0], [5], [(0, 5)]), frame([0], [], []), frame([0], [9], [(0, 9)])]
    result = clear_mot(frames)
    assert (result.num_misses, result.num_switches, result.num_false_positives) == (1, 1, 0)
    assert result.mota == pytest.approx(1 - 2 / 3)


def test_a_miss_and_a_false_positive():
    frames = [frame([0, 1], [5, 8], [(0, 5)])]  # 1 unmatched, 8 unmatched
    result = clear_mot(frames)
    assert result.frames[0].misses == [1] and result.frames[0].false_positives == [8]
    assert result.mota == pytest.approx(1 - 2 / 2)


def test_pairs_below_the_threshold_do_not_match():
    result = clear_mot([frame([0], [5], [(0, 5)], value=0.4)], threshold=0.5)
    assert (result.num_matches, result.num_misses, result.num_false_positives) == (0, 1, 1)
    assert result.mota == -1.0


def test_a_continued_pair_is_kept_though_another_is_more_similar():
    """Rule 1: object 0 stays with 5 (still above the threshold) although 6 is nearer; the
    Hungarian assignment alone would have taken 0-6 and 1-5 (summed 1.5 against 1.2)."""
    first = frame([0, 1], [5, 6], [(0, 5), (1, 6)])
    sim = np.array([[0.6, 0.95], [0.55, 0.6]])
    result = clear_mot([first, ([0, 1], [5, 6], sim)])
    assert sorted(result.frames[1].matches) == [(0, 5, 0.6), (1, 6, 0.6)]
    assert result.num_switches == 0


def test_the_hungarian_assignment_maximises_the_summed_similarity():
    """Greedy would pair 0-5 (0.9) and leave 1 with nothing above the threshold; the optimum pairs both."""
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    result = clear_mot([([0, 1], [5, 6], sim)], threshold=0.5)
    assert sorted((o, h) for o, h, _ in result.frames[0].matches) == [(0, 6), (1, 5)]


def test_two_people_swapping_ids_count_two_switches():
    frames = [frame([0, 1], [5, 6], [(0, 5), (1, 6)]), frame([0, 1], [5, 6], [(0, 6), (1, 5)])]
    result = clear_mot(frames)
    assert result.num_switches == 2 and result.switches_by_object == {0: 1, 1: 1}


def test_nan_similarity_never_matches_and_duplicate_ids_are_refused():
    result = clear_mot([([0], [5], np.array([[np.nan]]))], threshold=0.0)
    assert result.num_matches == 0
    with pytest.raises(ValueError, match="distinct"):
        clear_mot([([0, 0], [5], np.ones((2, 1)))])


def test_keypoint_oks_uses_the_ground_truth_area_and_labelled_joints():
    gt = np.zeros((1, 17, 2))
    pred = np.zeros((2, 17, 3))
    pred[1, :, 0] = 10.0  # every joint 10 px off
    labelled = np.ones((1, 17), bool)
    oks = keypoint_oks(gt, labelled, np.array([400.0]), pred, SIGMAS)
    expected = np.mean(np.exp(-(100.0 / (2 * SIGMAS) ** 2 / 400.0 / 2)))
    assert oks[0, 0] == pytest.approx(1.0) and oks[0, 1] == pytest.approx(expected)
    labelled[0, 1:] = False  # only the nose counts
    oks = keypoint_oks(gt, labelled, np.array([400.0]), pred, SIGMAS)
    assert oks[0, 1] == pytest.approx(np.exp(-(100.0 / (2 * SIGMAS[0]) ** 2 / 400.0 / 2)))
    assert keypoint_oks(gt, np.zeros((1, 17), bool), np.array([400.0]), pred, SIGMAS).tolist() == [[0.0, 0.0]]


def test_the_jitter_of_a_parabola_is_twice_its_leading_coefficient():
    t = np.arange(10, dtype=np.float64)
    positions = np.stack([1.5 * t**2 + 2 * t, np.full_like(t, 3.0)], axis=-1)[:, None, :]  # (T, 1, 2)
    assert mean_acceleration(positions) == pytest.approx(3.0)
    line = np.stack([4 * t, -2 * t], axis=-1)[:, None, :]
    assert mean_acceleration(line) == pytest.approx(0.0)


def test_jitter_counts_only_joints_present_in_three_consecutive_frames():
    positions = np.zeros((5, 1, 2))
    positions[2, 0, 0] = 1.0  # one bump at t = 2: accelerations 1, 2, 1 at t = 1, 2, 3
    assert accelerations(positions).tolist() == [1.0, 2.0, 1.0]
    valid = np.ones((5, 1), bool)
    valid[4] = False  # the last triple loses its third frame
    assert accelerations(positions, valid).tolist() == [1.0, 2.0]
    positions[0, 0] = np.nan  # non-finite counts as absent
    assert accelerations(positions, valid).tolist() == [2.0]
    assert np.isnan(mean_acceleration(np.zeros((2, 1, 2))))


def test_matched_trajectories_follow_the_true_people():
    frames = [frame([0, 1], [5, 6], [(0, 5), (1, 6)]), frame([0, 1], [6], [(0, 6)])]
    result = clear_mot(frames)
    found = [{5: np.full((17, 3), 1.0), 6: np.full((17, 3), 2.0)}, {6: np.full((17, 3), 3.0)}]
    out = matched_trajectories(result, found, [0, 1], 17)
    assert out.shape == (2, 2, 17, 2)
    assert out[0, 0, 0].tolist() == [1.0, 1.0] and out[0, 1, 0].tolist() == [2.0, 2.0]
    assert out[1, 0, 0].tolist() == [3.0, 3.0] and np.isnan(out[1, 1]).all()


def _dataset(keypoints):
    anns = []
    for t, person in enumerate(keypoints):
        flat = np.concatenate([person, np.full((17, 1), 2.0)], axis=1).reshape(-1).tolist()
        anns.append(
            {"id": t + 1, "image_id": t, "category_id": 1, "iscrowd": 0, "keypoints": flat}
            | {"num_keypoints": 17, "bbox": [0.0, 0.0, 100.0, 200.0], "area": 10000.0}
        )
    images = [{"id": t, "width": 320, "height": 256} for t in range(len(keypoints))]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


def test_video_ap_is_one_for_the_truth_and_drops_with_error():
    rng = np.random.default_rng(0)
    truth = rng.uniform(20, 200, size=(4, 17, 2))
    dataset = _dataset(truth)

    def results(kpts):
        return [
            {"image_id": t, "category_id": 1, "score": 1.0}
            | {"keypoints": np.concatenate([k, np.ones((17, 1))], 1).reshape(-1).tolist()}
            for t, k in enumerate(kpts)
        ]

    assert video_keypoint_ap(dataset, results(truth), COCO17.sigmas)["AP"] == pytest.approx(1.0)
    assert video_keypoint_ap(dataset, results(truth + 15.0), COCO17.sigmas)["AP"] < 0.9
