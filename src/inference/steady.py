"""Steady video: track ids and smoothed keypoints for the people of consecutive frames.

`SteadyVideo` is the small stateful step that `src.predict` applies to each frame's `People`
in frame order, after the (stateless) `Predictor`: the `Tracker` gives ids on the raw poses, then
the `PoseSmoother` filters each track's keypoints. From Python::

    steady = SteadyVideo.create(predictor.keypoint_info, fps=25.0)
    for index, image in enumerate(frames):
        people = steady(predictor(image, color="bgr"), frame=index)  # people.track_ids (P,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from src.inference.predictor import People
from src.inference.smoothing import PoseSmoother
from src.inference.sources import DEFAULT_FPS
from src.inference.tracking import Tracker, tracking_sigmas

#: The options of `Tracker` and `PoseSmoother` that conf/predict.yaml's ``tracking`` and
#: ``smoothing`` may set.
TRACKING_OPTIONS = ("similarity", "threshold", "ttl", "keypoint_thr")
SMOOTHING_OPTIONS = ("min_cutoff", "beta", "d_cutoff", "keypoint_thr", "max_gap")


class SteadyVideo:
    """Tracking, then (optionally) smoothing, of the people of consecutive frames.

    Args:
        tracker: gives the track ids.
        smoother: smooths the keypoints of each track (None: keypoints as predicted).
    """

    def __init__(self, tracker: Tracker, smoother: PoseSmoother | None = None) -> None:
        self.tracker = tracker
        self.smoother = smoother
        self.frame = -1

    @classmethod
    def create(
        cls,
        keypoint_info: Any,
        *,
        fps: float,
        smooth: bool = True,
        tracking: Mapping[str, Any] | None = None,
        smoothing: Mapping[str, Any] | None = None,
    ) -> SteadyVideo:
        """A tracker for a keypoint layout (its OKS sigmas) with the `Tracker` options
        ``tracking``, and, with ``smooth``, a smoother at ``fps`` with the `PoseSmoother` options
        ``smoothing``."""
        tracking, smoothing = dict(tracking or {}), dict(smoothing or {})
        for group, options, known in (
            ("tracking", tracking, TRACKING_OPTIONS),
            ("smoothing", smoothing, SMOOTHING_OPTIONS),
        ):
            unknown = sorted(set(options) - set(known))
            if unknown:
                raise ValueError(f"unknown {group} option(s) {unknown}: {group} takes {list(known)}")
        tracker = Tracker(sigmas=tracking_sigmas(keypoint_info), **tracking)
        smoother = PoseSmoother(fps=fps, **smoothing) if smooth else None
        return cls(tracker, smoother)

    def __call__(self, people: People, frame: int | None = None) -> People:
        """``people`` of frame ``frame`` (None: the next one) with ``track_ids`` and, with a
        smoother, smoothed keypoints (scores, boxes and 3D outputs as predicted)."""
        frame = self.frame + 1 if frame is None else int(frame)
        ids = self.tracker.update(people.keypoints, people.boxes, frame=frame)
        self.frame = frame
        keypoints = people.keypoints
        if self.smoother is not None:
            keypoints = self.smoother(keypoints, ids, frame=frame).astype(people.keypoints.dtype, copy=False)
        return replace(people, keypoints=keypoints, track_ids=ids)

    def reset(self) -> None:
        """Start a new video: no tracks, ids from 0 again."""
        self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()
        self.frame = -1


def resolve_switches(track: Any, smooth: Any, *, video: bool) -> tuple[bool, bool]:
    """Whether to track and to smooth: each is true, false or None (the default: on for videos and
    webcams, off for images; smoothing follows tracking). Smoothing needs tracking."""
    for name, value in (("track", track), ("smooth", smooth)):
        if value is not None and not isinstance(value, bool):
            raise ValueError(
                f"{name} must be true, false or null (null: on for videos and webcams, off for images), got {value!r}"
            )
    track = video if track is None else track
    smooth = (track and video) if smooth is None else smooth
    if smooth and not track:
        raise ValueError("smooth=true smooths each tracked person over time: it needs track=true (or track unset)")
    return track, smooth


def smoothing_fps(fps_option: Any, *, source_fps: float | None, reported: bool) -> tuple[float, str]:
    """The frame rate smoothing runs at, and where it comes from: the ``fps`` option, the video's
    own (``"video"``), or `DEFAULT_FPS` for a video that reports none or for images (``"default"``)."""
    if fps_option is not None:
        try:
            fps = float(fps_option)
        except (TypeError, ValueError):
            fps = float("nan")
        if not (0 < fps < float("inf")):
            raise ValueError(f"fps must be a frame rate > 0 (or null: the video's own), got {fps_option!r}")
        return fps, "fps option"
    if reported and source_fps:
        return float(source_fps), "video"
    return DEFAULT_FPS, "default"
