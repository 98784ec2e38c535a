"""The synthetic tracking video: stable identities, a crossing with occlusion, a re-entry, people
who meet nobody, ground truth that agrees with the pixels, and the same video for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from src.synthetic.tracking_video import (
    boxes_meet,
    coco_ground_truth,
    meetings,
    render_tracking_video,
)

FRAMES = 40


@pytest.fixture(scope="module")
def clip():
    return render_tracking_video(3, frames=FRAMES, away_frames=6)


def test_shapes_and_roles(clip):
    t, p = FRAMES, 4
    assert clip.frames.shape == (t, 256, 320, 3) and clip.frames.dtype == np.uint8
    assert clip.keypoints.shape == (t, p, 17, 2) and clip.visibility.shape == (t, p, 17)
    assert clip.boxes.shape == (t, p, 4) and clip.owners.shape == (t, 256, 320)
    assert sorted(clip.roles) == ["cross", "cross", "reenter", "steady"]


def test_identities_are_stable(clip):
    """Row p is one person throughout: their joints move a few pixels a frame, never jump to another
    person's place, and their visible size stays their own."""
    step = np.linalg.norm(np.diff(clip.keypoints, axis=0), axis=-1)  # (T-1, P, K)
    both = (clip.visibility[1:] > 0) & (clip.visibility[:-1] > 0)
    assert step[both].max() < 15.0
    hips = clip.keypoints[:, :, 11:13].mean(axis=2)  # (T, P, 2)
    for t in range(FRAMES):
        shown = np.flatnonzero(clip.present[t])
        for a in shown:
            for b in shown:
                if a != b:
                    assert np.linalg.norm(hips[t, a] - hips[t, b]) > 1.0


def test_the_crossers_cross_and_the_nearer_hides_the_farther(clip):
    a, b = clip.people_of("cross")
    met = meetings(clip)
    assert met[a, b]
    hips = clip.keypoints[:, :, 11, 0]
    order = np.sign(hips[:, a] - hips[:, b])
    assert order[0] != order[-1]  # they have swapped sides
    near, far = (a, b) if clip.stature_px[a] > clip.stature_px[b] else (b, a)
    hidden = (clip.visibility[:, far] == 1).sum(axis=1)
    assert hidden.max() >= 8  # at the crossing most of the farther person is hidden
    assert (clip.visibility[:, near] == 1).sum(axis=1).max() < hidden.max()


def test_the_reentering_person_leaves_and_comes_back(clip):
    (p,) = clip.people_of("reenter")
    present = clip.present[:, p]
    assert present[0] and present[-1] and not present.all()
    seen = np.flatnonzero(present)
    gap = (np.diff(seen) - 1).max()
    assert 6 <= gap <= 6 + 12  # out of sight for away_frames and the few frames of walking out and in
    out = np.flatnonzero(~present)
    assert clip.keypoints[out[len(out) // 2], p, :, 0].min() > 319  # wholly to the right of the image
    assert (clip.visibility[:, p] == 2).sum(axis=1)[out].max() < 3


def test_the_others_meet_nobody(clip):
    met = meetings(clip)
    for p in clip.people_of("steady") + clip.people_of("reenter"):
        assert not met[p].any()
        assert clip.present[:, p].sum() > FRAMES // 2


def test_ground_truth_agrees_with_the_pixels(clip):
    """Visible joints lie on their own person's pixels, hidden ones mostly not; areas count the
    person's pixels; labelled joints inside the box; the COCO dataset holds the present people."""
    on_own = []
    for t in range(FRAMES):
        for p in range(clip.people):
            for k in np.flatnonzero(clip.visibility[t, p] == 2):
                x, y = np.round(clip.keypoints[t, p, k]).astype(int)
                patch = clip.owners[t, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                on_own.append(bool((patch == p).any()))
            assert clip.areas[t, p] == (clip.owners[t] == p).sum()
            labelled = clip.keypoints[t, p][clip.visibility[t, p] > 0]
            if len(labelled) and clip.present[t, p]:
                x, y, w, h = clip.boxes[t, p]
                assert (labelled[:, 0] >= x - 1).all() and (labelled[:, 0] <= x + w + 1).all()
                assert (labelled[:, 1] >= y - 1).all() and (labelled[:, 1] <= y + h + 1).all()
    assert np.mean(on_own) > 0.97
    xy = clip.keypoints
    inside = (xy[..., 0] >= 0) & (xy[..., 0] <= 319) & (xy[..., 1] >= 0) & (xy[..., 1] <= 255)
    assert ((clip.visibility > 0) == inside).all()  # labelled exactly where inside the image
    data = coco_ground_truth(clip)
    assert len(data["images"]) == FRAMES and len(data["annotations"]) == clip.present.sum()
    ann = data["annotations"][0]
    t, p = ann["image_id"], ann["track_id"]
    assert ann["area"] == clip.areas[t, p] and ann["num_keypoints"] == (clip.visibility[t, p] > 0).sum()
    assert ann["keypoints"][2::3] == clip.visibility[t, p].tolist()


def test_the_same_seed_gives_the_same_video(clip):
    again = render_tracking_video(3, frames=FRAMES, away_frames=6)
    assert np.array_equal(again.frames, clip.frames) and np.array_equal(again.keypoints, clip.keypoints)
    other = render_tracking_video(4, frames=20, away_frames=4)
    assert not np.array_equal(other.frames, clip.frames[:20])


def test_boxes_meet_and_bad_parameters():
    assert boxes_meet(np.array([0, 0, 10, 10.0]), np.array([9, 9, 5, 5.0]))
    assert not boxes_meet(np.array([0, 0, 10, 10.0]), np.array([10, 0, 5, 5.0]))
    assert not boxes_meet(np.array([0, 0, 10, 10.0]), np.full(4, np.nan))
    with pytest.raises(ValueError, match="at least 20 frames"):
        render_tracking_video(0, frames=10)
    with pytest.raises(ValueError, match="away_frames"):
        render_tracking_video(0, frames=20, away_frames=15)
