"""The One-Euro filter of src.inference.smoothing and the per-track smoother: constant signals
pass, noise is reduced, steps are followed, low-confidence joints leave the filter alone, gaps
restart it, and the frame rate sets the time step."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from src.inference.smoothing import OneEuroFilter, PoseSmoother, smoothing_factor
from src.inference.sources import DEFAULT_FPS, VideoFrames
from src.inference.steady import resolve_switches, smoothing_fps

FPS = 30.0


def test_the_smoothing_factor_is_that_of_a_first_order_low_pass():
    # tau = 1 / (2 pi fc); alpha = 1 / (1 + tau / dt): at dt = tau, one half
    assert smoothing_factor(1 / (2 * math.pi), 1.0) == pytest.approx(0.5)
    assert smoothing_factor(1.0, 1 / FPS) == pytest.approx(1 / (1 + FPS / (2 * math.pi)))
    assert 0 < smoothing_factor(0.01, 0.001) < smoothing_factor(100.0, 0.001) < 1


def test_a_constant_signal_passes_unchanged():
    smoother = OneEuroFilter(min_cutoff=1.0, beta=0.05, d_cutoff=1.0)
    value = np.array([[12.5, -3.0], [400.0, 7.25]])
    for f in range(50):
        np.testing.assert_array_equal(smoother(value, f / FPS), value)


def test_noise_is_reduced_at_rest():
    rng = np.random.default_rng(0)
    smoother = OneEuroFilter(min_cutoff=1.0, beta=0.05, d_cutoff=1.0)
    truth = np.array([[100.0, 50.0]] * 17)
    raw, out = [], []
    for f in range(300):
        sample = truth + rng.normal(0, 2.0, truth.shape)
        raw.append(sample)
        out.append(smoother(sample, f / FPS))
    raw_error = np.var(np.array(raw[30:]) - truth)
    out_error = np.var(np.array(out[30:]) - truth)
    assert out_error < 0.35 * raw_error
    # frame-to-frame jitter (mean absolute acceleration) falls even more
    jitter = [np.abs(np.diff(np.array(series[30:]), n=2, axis=0)).mean() for series in (raw, out)]
    assert jitter[1] < 0.25 * jitter[0]


def test_a_step_is_followed_without_overshoot():
    smoother = OneEuroFilter(min_cutoff=1.0, beta=0.05, d_cutoff=1.0)
    out = np.array([smoother(np.array([0.0 if f < 30 else 100.0]), f / FPS)[0] for f in range(60)])
    assert (out[:30] == 0).all()
    assert 0 < out[30] < 100  # smoothed, not jumped
    assert (np.diff(out[30:]) >= 0).all() and out.max() <= 100.0  # monotone, no overshoot
    assert out[45] > 99.0  # within 1 % after half a second
    # the higher beta, the faster a moving joint is followed (less lag)
    lagging = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    slow = np.array([lagging(np.array([0.0 if f < 30 else 100.0]), f / FPS)[0] for f in range(60)])
    assert slow[33] < out[33]


def test_low_confidence_joints_do_not_move_the_filter():
    """Frames where a joint is not valid come out raw and leave its state as it was: the next valid
    frames give exactly what a filter that never saw the invalid samples gives."""
    rng = np.random.default_rng(1)
    samples = 100 + np.cumsum(rng.normal(0, 3, (40, 2, 2)), axis=0)
    invalid = {12, 13, 14, 25}
    kept = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    reference = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    for f, sample in enumerate(samples):
        t = f / FPS
        if f in invalid:
            wild = sample.copy()
            wild[0] = (5000.0, -5000.0)  # joint 0 unreliable; joint 1 fine
            out = kept(wild, t, valid=np.array([False, True]))
            np.testing.assert_array_equal(out[0], wild[0])  # raw
            continue
        out = kept(sample, t)
        ref = reference(sample, t)
        np.testing.assert_allclose(out[0], ref[0], rtol=0, atol=1e-9)
    # non-finite samples are never valid
    out = kept(np.array([[np.nan, 1.0], [1.0, 2.0]]), 40 / FPS)
    assert np.isnan(out[0, 0]) and np.isfinite(kept.state.value).all()


def test_a_long_gap_restarts_a_joint():
    smoother = OneEuroFilter(min_cutoff=1.0, beta=0.0, max_gap=4.5 / FPS)  # seconds since the last update
    for f in range(10):
        smoother(np.array([0.0]), f / FPS)
    assert smoother(np.array([100.0]), 13 / FPS)[0] < 100.0  # 4 frames on: smoothed on
    smoother.reset()
    for f in range(10):
        smoother(np.array([0.0]), f / FPS)
    assert smoother(np.array([100.0]), 14 / FPS)[0] == 100.0  # 5 frames on: restarted from the sample


def test_the_pose_smoother_keeps_a_filter_per_track():
    """Two tracks with the same samples give the same output whatever the order of people; scores
    pass through; a track back after more than max_gap frames restarts."""
    rng = np.random.default_rng(2)
    smoother = PoseSmoother(fps=FPS, max_gap=2)
    single = PoseSmoother(fps=FPS, max_gap=2)
    base = rng.uniform(0, 200, (17, 2))
    for f in range(20):
        pose = np.concatenate([base + rng.normal(0, 2, base.shape), np.full((17, 1), 0.9)], axis=1)
        other = pose + (300.0, 0.0, 0.0)
        order = [1, 0] if f % 2 else [0, 1]
        both = smoother(np.stack([pose, other])[order], np.array([7, 9])[order], frame=f)
        alone = single(pose[None], np.array([7]), frame=f)
        np.testing.assert_allclose(both[order.index(0)], alone[0], atol=1e-9)
        np.testing.assert_array_equal(both[..., 2], 0.9)
    assert smoother.tracks == [7, 9]
    # track 9 away for 3 frames (> max_gap 2): back exactly at its new sample
    for f in range(20, 23):
        smoother(pose[None], np.array([7]), frame=f)
    far = other + (50.0, 50.0, 0.0)
    np.testing.assert_array_equal(smoother(far[None], np.array([9]), frame=23)[0], far)
    # while away for 2 frames (= max_gap), it glides on from its state
    smoother(pose[None], np.array([7]), frame=24)
    smoother(pose[None], np.array([7]), frame=25)
    assert not np.allclose(smoother(other[None], np.array([9]), frame=26)[0, :, :2], other[:, :2])
    # the filters of tracks gone for longer are dropped
    for f in range(27, 31):
        smoother(pose[None], np.array([7]), frame=f)
    assert smoother.tracks == [7]
    with pytest.raises(ValueError, match="needs their own track id"):
        smoother(np.stack([pose, pose]), np.array([3, 3]), frame=31)
    with pytest.raises(ValueError, match="frames must come in order"):
        smoother(pose[None], np.array([7]), frame=30)


def test_the_time_step_comes_from_the_frame_rate():
    """The same samples per frame are smoothed less at a lower frame rate (larger steps)."""
    step = np.array([[[0.0, 0.0, 1.0]], [[10.0, 0.0, 1.0]]])  # one joint, one person, two frames
    out = {}
    for fps in (10.0, 60.0):
        smoother = PoseSmoother(fps=fps, min_cutoff=1.0, beta=0.0)
        smoother(step[0][None], np.array([0]), frame=0)
        out[fps] = smoother(step[1][None], np.array([0]), frame=1)[0, 0, 0]
    assert out[10.0] == pytest.approx(10 * smoothing_factor(1.0, 1 / 10))
    assert out[60.0] == pytest.approx(10 * smoothing_factor(1.0, 1 / 60))


class _Capture:
    """A VideoCapture stand-in reporting a given frame rate."""

    def __init__(self, fps: float) -> None:
        self.fps = fps

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0


@pytest.mark.parametrize("reported", [0.0, float("nan"), 25.0])
def test_a_video_without_frame_rate_smooths_at_the_stated_default(reported):
    source = VideoFrames(_Capture(reported), "clip.mp4", kind="video", max_frames=None)
    assert source.fps_reported is (reported == 25.0)
    fps, where = smoothing_fps(None, source_fps=source.fps, reported=source.fps_reported)
    if reported == 25.0:
        assert (fps, where) == (25.0, "video")
    else:
        assert (fps, where) == (DEFAULT_FPS, "default") == (30.0, "default")
    assert smoothing_fps(12, source_fps=source.fps, reported=source.fps_reported) == (12.0, "fps option")
    assert smoothing_fps(None, source_fps=None, reported=False) == (DEFAULT_FPS, "default")  # images
    for bad in (0, -5, "fast", float("nan")):
        with pytest.raises(ValueError, match="fps must be a frame rate > 0"):
            smoothing_fps(bad, source_fps=25.0, reported=True)


def test_tracking_and_smoothing_default_on_for_videos_and_off_for_images():
    assert resolve_switches(None, None, video=True) == (True, True)
    assert resolve_switches(None, None, video=False) == (False, False)
    assert resolve_switches(None, False, video=True) == (True, False)
    assert resolve_switches(False, None, video=True) == (False, False)
    assert resolve_switches(True, None, video=False) == (True, False)  # a folder of frames, tracked
    assert resolve_switches(True, True, video=False) == (True, True)
    with pytest.raises(ValueError, match="smooth=true .* needs track=true"):
        resolve_switches(False, True, video=True)
    with pytest.raises(ValueError, match="track must be true, false or null"):
        resolve_switches("yes", None, video=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fps": 0.0}, "smoothing needs a frame rate > 0"),
        ({"min_cutoff": 0.0}, "min_cutoff must be positive"),
        ({"d_cutoff": -1.0}, "d_cutoff must be positive"),
        ({"beta": -0.1}, "beta must be >= 0"),
        ({"max_gap": -1}, "max_gap must be a whole number of frames >= 0"),
    ],
)
def test_bad_smoothing_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        PoseSmoother(**{"fps": FPS, **options})
