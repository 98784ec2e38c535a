"""Keypoint smoothing over time with the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A first-order low-pass filter whose cutoff frequency rises with speed: still joints are smoothed
hard (little jitter), fast ones lightly (little lag). With a time step ``dt`` (seconds),

    alpha(fc) = r / (1 + r),  r = 2 pi fc dt          (the low-pass weight of the new sample)
    dx_hat = dx_hat + alpha(d_cutoff) (dx - dx_hat),   dx = (x - x_hat) / dt   (filtered speed)
    fc = min_cutoff + beta |dx_hat|                    (adaptive cutoff, Hz)
    x_hat = x_hat + alpha(fc) (x - x_hat)

``min_cutoff`` (Hz) sets the smoothing at rest, ``beta`` (s/px for pixels) how fast the cutoff rises
with speed, ``d_cutoff`` (Hz) the smoothing of the speed estimate. A joint is one signal of D
coordinates: its speed is the length of its velocity, so x and y share one cutoff.

`OneEuroFilter` filters one array of joints (K, D); `PoseSmoother` keeps one filter per track of
`src.inference.tracking.Tracker` and runs all people of a frame in one vectorised step.
Joints that are not valid in a frame (score below the threshold, or not finite) leave their
filter untouched and come out raw; a joint that has not been updated for longer than ``max_gap``
restarts from its new value. Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def smoothing_factor(cutoff: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
    """The weight alpha in (0, 1) of a new sample in a first-order low-pass filter of ``cutoff`` Hz
    sampled every ``dt`` seconds: alpha = 1 / (1 + tau / dt) with tau = 1 / (2 pi cutoff)."""
    rate = 2.0 * math.pi * np.asarray(cutoff, dtype=np.float64) * np.asarray(dt, dtype=np.float64)
    return rate / (1.0 + rate)


def check_one_euro(min_cutoff: float, beta: float, d_cutoff: float) -> None:
    """Raise ValueError naming the parameter that is out of range."""
    for name, value, low in (("min_cutoff", min_cutoff, "positive"), ("d_cutoff", d_cutoff, "positive")):
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"One-Euro {name} must be {low} (a frequency in Hz), got {value}")
    if not (math.isfinite(float(beta)) and float(beta) >= 0):
        raise ValueError(f"One-Euro beta must be >= 0, got {beta}")


@dataclass
class FilterState:
    """The state of the filters of (..., K) joints with D coordinates each."""

    value: np.ndarray  # (..., K, D) x_hat, the last output
    speed: np.ndarray  # (..., K, D) dx_hat, the filtered velocity (units per second)
    time: np.ndarray  # (..., K) seconds of the last update; NaN: not started

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> FilterState:
        """Not-started filters for values of ``shape`` (..., K, D)."""
        return cls(np.zeros(shape), np.zeros(shape), np.full(shape[:-1], np.nan))


def one_euro_update(
    state: FilterState,
    x: np.ndarray,
    t: float,
    valid: np.ndarray,
    *,
    min_cutoff: float,
    beta: float,
    d_cutoff: float,
    max_gap: float,
) -> np.ndarray:
    """Filter the samples ``x`` (..., K, D) taken at time ``t`` (seconds), updating ``state`` in place.

    Joints where ``valid`` (..., K) is False keep their state and come out as given. Valid joints
    whose filter has not started, or was last updated more than ``max_gap`` seconds ago, start
    from their sample (output = sample, speed 0). Returns the filtered (..., K, D) float64.
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(x).all(axis=-1)
    elapsed = t - state.time  # NaN where not started
    if (elapsed[valid] <= 0).any():
        raise ValueError(f"samples must come in time order: t={t} is not after the last update")
    restart = valid & ~(elapsed <= max_gap)  # not started (NaN) or too long ago
    step = valid & ~restart
    out = x.copy()
    if step.any():
        dt = elapsed[step][:, None]  # (S, 1)
        value, speed = state.value[step], state.speed[step]  # (S, D)
        speed = speed + smoothing_factor(d_cutoff, dt) * ((x[step] - value) / dt - speed)
        cutoff = min_cutoff + beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        value = value + smoothing_factor(cutoff, dt) * (x[step] - value)
        state.value[step], state.speed[step] = value, speed
        out[step] = value
    if restart.any():
        state.value[restart] = x[restart]
        state.speed[restart] = 0.0
    state.time[valid] = t
    return out


class OneEuroFilter:
    """One-Euro filters of K joints of D coordinates (see the module docstring).

    Args:
        min_cutoff: Hz, the cutoff at rest (lower: smoother when still, more lag).
        beta: s/unit, the cutoff's rise with speed (higher: less lag when moving, more jitter).
        d_cutoff: Hz, the cutoff of the speed estimate.
        max_gap: seconds; a joint not updated for longer restarts from its next sample.
    """

    def __init__(
        self, *, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, max_gap: float = math.inf
    ) -> None:
        check_one_euro(min_cutoff, beta, d_cutoff)
        if not float(max_gap) >= 0:
            raise ValueError(f"max_gap must be >= 0 seconds, got {max_gap}")
        self.params = {"min_cutoff": float(min_cutoff), "beta": float(beta), "d_cutoff": float(d_cutoff)}
        self.max_gap = float(max_gap)
        self.state: FilterState | None = None

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        """The filtered (K, D) of samples ``x`` (K, D) (or (K,): D = 1) at time ``t`` seconds;
        ``valid`` (K,) bool marks the joints that update the filter (None: all finite ones)."""
        x = np.asarray(x, dtype=np.float64)
        flat = x.ndim == 1
        if flat:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"samples must be (K, D) or (K,), got shape {x.shape}")
        if self.state is None:
            self.state = FilterState.empty(x.shape)
        if self.state.value.shape != x.shape:
            raise ValueError(f"samples of shape {x.shape} after {self.state.value.shape}")
        valid = np.ones(x.shape[0], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        out = one_euro_update(self.state, x, float(t), valid, max_gap=self.max_gap, **self.params)
        return out[:, 0] if flat else out

    def reset(self) -> None:
        self.state = None


class PoseSmoother:
    """One-Euro filters per track and joint for the people of consecutive video frames.

    Args:
        fps: the video's frame rate; frame ``i`` is taken at ``i / fps`` seconds.
        min_cutoff, beta, d_cutoff: the One-Euro parameters (Hz, s/px, Hz).
        keypoint_thr: joints scoring below this neither update nor drag their filter; they come
            out raw (as the model gave them, with their low score).
        max_gap: frames; a joint (or a whole track) missed for more frames than this restarts its
            filter when seen again, instead of gliding from where it was last seen.
    """

    def __init__(
        self,
        *,
        fps: float,
        min_cutoff: float = 3.0,
        beta: float = 0.5,
        d_cutoff: float = 1.0,
        keypoint_thr: float = 0.3,
        max_gap: int = 3,
    ) -> None:
        if not (math.isfinite(float(fps)) and float(fps) > 0):
            raise ValueError(f"smoothing needs a frame rate > 0, got fps={fps}")
        check_one_euro(min_cutoff, beta, d_cutoff)
        if int(max_gap) != max_gap or int(max_gap) < 0:
            raise ValueError(f"smoothing max_gap must be a whole number of frames >= 0, got {max_gap}")
        self.fps = float(fps)
        self.params = {"min_cutoff": float(min_cutoff), "beta": float(beta), "d_cutoff": float(d_cutoff)}
        self.keypoint_thr = float(keypoint_thr)
        self.max_gap = int(max_gap)
        self.reset()

    def reset(self) -> None:
        self.frame = -1
        self._states: dict[int, FilterState] = {}  # track id -> (K, D) filters
        self._last_frame: dict[int, int] = {}  # track id -> frame of its last update

    @property
    def tracks(self) -> list[int]:
        """The ids whose filters are kept."""
        return sorted(self._states)

    def __call__(self, keypoints: np.ndarray, track_ids: np.ndarray, *, frame: int | None = None) -> np.ndarray:
        """Smoothed keypoints (P, K, 3) of one frame: x, y filtered, scores as given.

        Args:
            keypoints: (P, K, 3) [x, y, score] in pixels.
            track_ids: (P,) distinct track ids (`Tracker.update`).
            frame: the frame's index, larger than the last one (None: the next frame).
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
            raise ValueError(f"keypoints must be (P, K, 3) [x, y, score], got shape {keypoints.shape}")
        valid = keypoints[..., 2] >= self.keypoint_thr
        out = keypoints.copy()
        out[..., :2] = self.smooth(keypoints[..., :2], valid, track_ids, frame=frame)
        return out

    def smooth(
        self, values: np.ndarray, valid: np.ndarray, track_ids: np.ndarray, *, frame: int | None = None
    ) -> np.ndarray:
        """Filter any per-joint values (P, K, D) of the tracked people (joints where ``valid``
        (P, K) is False are kept out and come back unchanged); returns (P, K, D) float64."""
        values = np.asarray(values, dtype=np.float64)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if values.ndim != 3 or len(ids) != len(values):
            raise ValueError(f"{len(ids)} track ids for values of shape {values.shape} (expected (P, K, D))")
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"each person of a frame needs their own track id, got {ids.tolist()}")
        frame = self.frame + 1 if frame is None else int(frame)
        if frame <= self.frame:
            raise ValueError(f"frames must come in order: frame {frame} after frame {self.frame}")
        self.frame = frame
        # filters unused for longer than max_gap would restart anyway: forget them
        for track in [i for i, last in self._last_frame.items() if frame - last - 1 > self.max_gap]:
            del self._states[track], self._last_frame[track]
        if not len(ids):
            return values.copy()
        shape = values.shape[1:]
        states = []
        for track in ids.tolist():
            state = self._states.get(track)
            if state is None or state.value.shape != shape:
                state = FilterState.empty(shape)
            states.append(state)
        batch = FilterState(
            np.stack([s.value for s in states]), np.stack([s.speed for s in states]), np.stack([s.time for s in states])
        )
        # a joint restarts when more than max_gap frames were missed: half a frame of margin
        # keeps the comparison exact in seconds
        out = one_euro_update(
            batch, values, frame / self.fps, valid, max_gap=(self.max_gap + 1.5) / self.fps, **self.params
        )
        for i, track in enumerate(ids.tolist()):
            self._states[track] = FilterState(batch.value[i], batch.speed[i], batch.time[i])
            self._last_frame[track] = frame
        return out
