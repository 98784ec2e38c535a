"""The tracker of src.inference.tracking: ids that follow people, the time-to-live of hidden
people, OKS against IoU, the threshold, greedy matching, and bad options."""

from __future__ import annotations

import numpy as np
import pytest

from src.geometry import box_iou
from src.inference.tracking import Tracker, greedy_match, oks_similarity, tracking_sigmas
from src.layouts import COCO17, DEFAULT_OKS_SIGMA, H36M17

SIGMAS = tracking_sigmas(COCO17)
RNG = np.random.default_rng(0)
#: One stick figure (K=17) of about 40 x 90 px around its centre.
TEMPLATE = np.stack([RNG.uniform(-20, 20, 17), np.linspace(-45, 45, 17)], axis=1)


def person(cx: float, cy: float, score: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (K, 3) and box (4,) of the template figure centred at (cx, cy)."""
    xy = TEMPLATE + (cx, cy)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return np.concatenate([xy, np.full((17, 1), score)], axis=1), np.array([*lo, *(hi - lo)])


def frame_of(*centres: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(P, K, 3) keypoints and (P, 4) boxes of people at ``centres``."""
    people = [person(*c) for c in centres]
    if not people:
        return np.zeros((0, 17, 3)), np.zeros((0, 4))
    return np.stack([p[0] for p in people]), np.stack([p[1] for p in people])


@pytest.mark.parametrize("similarity", ["oks", "iou"])
def test_two_people_swapping_sides_without_crossing_keep_their_ids(similarity):
    """A walks left to right along the top, B right to left along the bottom: their x positions
    swap, their paths never meet; the frame lists them in a shuffled order."""
    tracker = Tracker(similarity=similarity, sigmas=SIGMAS, threshold=0.3, ttl=5)
    order = np.random.default_rng(1)
    seen: dict[str, set[int]] = {"A": set(), "B": set()}
    for f in range(60):
        a, b = (40 + 4 * f, 60), (280 - 4 * f, 200)
        names = ["A", "B"] if order.random() < 0.5 else ["B", "A"]
        keypoints, boxes = frame_of(*(a if n == "A" else b for n in names))
        ids = tracker.update(keypoints, boxes, frame=f)
        for name, track_id in zip(names, ids.tolist()):
            seen[name].add(track_id)
    assert seen == {"A": {0}, "B": {1}} or seen == {"A": {1}, "B": {0}}
    assert tracker.next_id == 2


@pytest.mark.parametrize("similarity", ["oks", "iou"])
def test_a_person_hidden_up_to_ttl_frames_gets_the_same_id_back_and_later_a_new_one(similarity):
    ttl = 5
    for hidden, same in ((ttl - 1, True), (ttl, True), (ttl + 1, False)):
        tracker = Tracker(similarity=similarity, sigmas=SIGMAS, ttl=ttl)
        other = (300.0, 100.0)  # someone who stays all along
        first = tracker.update(*frame_of((100, 100), other), frame=0)
        for f in range(1, hidden + 1):
            assert tracker.update(*frame_of(other), frame=f).tolist() == [first[1]]
        back = tracker.update(*frame_of((102, 101), other), frame=hidden + 1)
        assert back[1] == first[1]
        assert bool(back[0] == first[0]) is same, (similarity, hidden)
        if not same:
            assert back[0] == 2  # new ids count on, never reusing 0


def test_frame_numbers_count_the_frames_nobody_was_seen():
    """A gap in the frame indices (frames not read) counts towards the ttl."""
    tracker = Tracker(similarity="iou", ttl=3)
    assert tracker.update(*frame_of((100, 100)), frame=0).tolist() == [0]
    assert tracker.update(*frame_of((100, 100)), frame=4).tolist() == [0]  # 3 frames missed
    assert tracker.update(*frame_of((100, 100)), frame=9).tolist() == [1]  # 4 frames missed
    assert tracker.update(*frame_of((100, 100))).tolist() == [1]  # frame=None: the next one
    assert tracker.frame == 10
    with pytest.raises(ValueError, match="frames must come in order: frame 10 after frame 10"):
        tracker.update(*frame_of((100, 100)), frame=10)


def test_oks_follows_the_pose_and_iou_the_box():
    """The same box with another pose inside: IoU continues the track, OKS starts a new one."""
    keypoints, boxes = frame_of((100, 100))
    moved = keypoints.copy()
    moved[0, :, 0] = 2 * 100 - moved[0, :, 0]  # the pose mirrored inside the same box
    moved[0, :, 1] = 2 * 100 - moved[0, :, 1]
    assert box_iou(boxes, boxes)[0, 0] == 1.0
    assert oks_similarity(keypoints, moved, boxes, boxes, SIGMAS)[0, 0] < 0.3
    for similarity, expected in (("iou", [0]), ("oks", [1])):
        tracker = Tracker(similarity=similarity, sigmas=SIGMAS, threshold=0.3)
        tracker.update(keypoints, boxes)
        assert tracker.update(moved, boxes).tolist() == expected, similarity


def test_the_threshold_decides_a_match():
    """Boxes 100 x 100 moved by 50 px overlap with IoU 1/3: a match at threshold 0.3, none at 0.4."""
    box = np.array([[0.0, 0.0, 100.0, 100.0]])
    moved = box + [50.0, 0.0, 0.0, 0.0]
    assert box_iou(box, moved)[0, 0] == pytest.approx(1 / 3)
    keypoints = np.zeros((1, 17, 3))
    for threshold, expected in ((0.3, 0), (1 / 3, 0), (0.4, 1)):
        tracker = Tracker(similarity="iou", threshold=threshold)
        tracker.update(keypoints, box)
        assert tracker.update(keypoints, moved)[0] == expected, threshold


def test_oks_counts_only_joints_confident_in_both_poses():
    keypoints, boxes = frame_of((100, 100))
    wild = keypoints.copy()
    wild[0, :8, :2] += 300.0  # eight joints far off, but scored low
    wild[0, :8, 2] = 0.05
    assert oks_similarity(keypoints, wild, boxes, boxes, SIGMAS, keypoint_thr=0.3)[0, 0] == pytest.approx(1.0)
    assert oks_similarity(keypoints, wild, boxes, boxes, SIGMAS, keypoint_thr=0.0)[0, 0] < 0.6
    nothing = keypoints.copy()
    nothing[0, :, 2] = 0.0
    assert oks_similarity(keypoints, nothing, boxes, boxes, SIGMAS, keypoint_thr=0.3)[0, 0] == 0.0
    nan_pose = keypoints.copy()
    nan_pose[0, 3, :2] = np.nan  # a joint without coordinates counts nowhere
    assert oks_similarity(keypoints, nan_pose, boxes, boxes, SIGMAS)[0, 0] == pytest.approx(1.0)


def test_matching_is_greedy_most_similar_first():
    # person 0 is closest to track 1 (0.9); person 1 is left with track 0 (0.2 < threshold)
    similarity = np.array([[0.6, 0.9], [0.2, 0.8]])
    assert greedy_match(similarity, 0.3) == [(0, 1)]
    assert greedy_match(similarity, 0.1) == [(0, 1), (1, 0)]
    assert greedy_match(np.array([[0.5, 0.5], [0.5, 0.5]]), 0.3) == [(0, 0), (1, 1)]  # ties: in order
    assert greedy_match(np.array([[np.nan]]), 0.0) == []
    assert greedy_match(np.zeros((0, 3)), 0.3) == [] and greedy_match(np.zeros((2, 0)), 0.3) == []


def test_new_people_get_increasing_ids_and_empty_frames_pass():
    tracker = Tracker(similarity="oks", sigmas=SIGMAS, ttl=0)
    assert tracker.update(*frame_of()).tolist() == []
    assert tracker.update(*frame_of((50, 100), (200, 100))).tolist() == [0, 1]
    assert tracker.update(*frame_of((400, 100), (50, 100))).tolist() == [2, 0]
    assert sorted(tracker.live_ids.tolist()) == [0, 1, 2]
    assert tracker.update(*frame_of()).tolist() == []
    assert tracker.live_ids.tolist() == [0, 2]  # track 1 was missed in two frames in a row, ttl 0
    tracker.reset()
    assert tracker.update(*frame_of((50, 100))).tolist() == [0]
    # without boxes, the keypoints' extent serves as the box
    assert Tracker(similarity="iou").update(frame_of((50, 100))[0]).tolist() == [0]


def test_a_layout_without_sigmas_tracks_with_the_shared_default():
    assert H36M17.sigmas is None
    assert tracking_sigmas(H36M17) == (DEFAULT_OKS_SIGMA,) * 17
    assert tracking_sigmas(COCO17) == tuple(COCO17.sigmas)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"similarity": "euclid"}, r"similarity must be one of \['oks', 'iou'\], got 'euclid'"),
        ({"threshold": 1.5}, r"threshold must lie in \[0, 1\]"),
        ({"ttl": -1}, "ttl must be a whole number of frames >= 0"),
        ({"ttl": 2.5}, "ttl must be a whole number of frames >= 0"),
        ({"sigmas": None}, "OKS tracking needs the layout's sigmas"),
        ({"sigmas": [0.1, 0.0]}, "OKS sigmas must be positive"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        Tracker(**{"sigmas": SIGMAS, **options})


def test_bad_arrays_are_named():
    tracker = Tracker(sigmas=SIGMAS)
    keypoints, boxes = frame_of((100, 100), (200, 100))
    with pytest.raises(ValueError, match="1 boxes for 2 people"):
        tracker.update(keypoints, boxes[:1])
    with pytest.raises(ValueError, match=r"keypoints must be \(P, K, 2\|3\)"):
        tracker.update(keypoints[0], boxes)
    tracker.update(keypoints, boxes)
    with pytest.raises(ValueError, match="16 keypoints per person after 17"):
        tracker.update(keypoints[:, :16], boxes)
    with pytest.raises(ValueError, match="17 OKS sigmas for 16 keypoints"):
        Tracker(sigmas=SIGMAS).update(keypoints[:, :16], boxes)


def test_a_person_back_with_no_joint_in_common_is_compared_by_box():
    """Leaving the frame with the right side visible and coming back with the left: OKS over no shared
    joint would be 0, so the tracker falls back on the boxes' IoU and keeps the id."""
    keypoints, boxes = frame_of((100.0, 100.0))
    right_side = keypoints.copy()
    right_side[0, [i for i in range(17) if i not in (2, 4, 6)], 2] = 0.0  # only three right-side joints confident
    left_side = keypoints.copy()
    left_side[0, [i for i in range(17) if i not in (1, 3, 5)], 2] = 0.0
    tracker = Tracker(similarity="oks", sigmas=SIGMAS, threshold=0.3, ttl=10)
    first = tracker.update(right_side, boxes, frame=0)
    assert tracker.update(left_side, boxes, frame=5).tolist() == first.tolist()
    # far away, the box does not overlap: a new person
    far, far_boxes = frame_of((400.0, 100.0))
    far[0, [i for i in range(17) if i not in (7, 9, 11)], 2] = 0.0
    assert tracker.update(far, far_boxes, frame=6).tolist() != first.tolist()
