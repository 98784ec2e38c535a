"""What `src.predict` writes: ``results.json``, annotated pictures or an annotated video, and a
summary of what was read, found and skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.inference.predictor import People
from src.inference.sources import Frame, Skipped
from src.utils.run_io import write_json_atomic
from src.visualization.scene3d import draw_scene_3d
from src.visualization.skeleton3d import draw_skeleton_3d
from src.visualization.skeletons import draw_keypoint_info, track_color

VIDEO_NAME = "annotated.mp4"


BOX_COLOR = (0, 200, 255)


def annotate(image: np.ndarray, people: People, info: Any, *, score_thr: float) -> np.ndarray:
    """The BGR image with the box and skeleton of each person scoring at least ``score_thr`` (and
    their keypoints that do); tracked people are drawn in their track's colour (`track_color`) with
    their id above the box. In an inset at the bottom right, 3D models show the scene from above
    the camera with every person at their distance (`draw_scene_3d`)."""
    people = people.select(np.flatnonzero(people.scores >= score_thr))
    out = image.copy()
    tracked = people.track_ids is not None
    colors = [track_color(i) for i in people.track_ids] if tracked else [BOX_COLOR] * len(people)
    for (x, y, w, h), color in zip(people.boxes, colors):
        cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), color, 1)
    if len(people):
        options = {"instance_colors": colors} if tracked else {}
        out = draw_keypoint_info(out, people.keypoints, info, score_thr=score_thr, **options)
    if tracked:
        for (x, y, _, _), track_id, color in zip(people.boxes, people.track_ids, colors):
            _label(out, str(int(track_id)), (int(round(x)) + 2, max(int(round(y)) - 3, 10)), color)
    if people.joints_cam is not None or people.joints_3d is not None:
        size = max(32, min(out.shape[:2]) // 3)
        if people.joints_cam is not None:  # the whole scene, each person at their distance
            inset = draw_scene_3d(people.joints_cam, info, size=size)
        else:
            inset = draw_skeleton_3d(people.joints_3d, info, size=size)
        out[-size:, -size:] = inset[: out.shape[0], : out.shape[1]]
    return out


def _label(image: np.ndarray, text: str, origin: tuple[int, int], color: tuple[int, int, int]) -> None:
    """``text`` at ``origin`` (bottom left) in place, with a dark outline that reads on any background."""
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)


def result_entries(frame: Frame, people: People, *, video: bool) -> list[dict]:
    """COCO keypoint results of one image or frame (3D models add root-relative joints, the root depth
    and the camera-frame joints, in mm; tracked people their ``track_id``)."""
    where = {"frame": frame.index} if video else {"file_name": frame.name}
    entries = []
    for i in range(len(people)):
        entry = {
            "image_id": frame.index,
            **where,
            "category_id": 1,
            "keypoints": [round(float(v), 2) for v in people.keypoints[i].reshape(-1)],
            "score": round(float(people.scores[i]), 5),
            "bbox": [round(float(v), 2) for v in people.boxes[i]],
        }
        if people.track_ids is not None:
            entry["track_id"] = int(people.track_ids[i])
        if people.joints_3d is not None:
            entry["joints_3d"] = np.round(people.joints_3d[i].astype(np.float64), 1).tolist()
            entry["root_relative"] = True
            entry["root_depth"] = round(float(people.root_depth[i]), 1)
            entry["focal"] = round(float(people.focal[i]), 2)
        if people.joints_cam is not None:
            entry["joints_cam"] = np.round(people.joints_cam[i].astype(np.float64), 1).tolist()
        entries.append(entry)
    return entries


class PredictionWriter:
    """Collects the results of a run and writes them to ``output_dir``.

    Images get annotated pictures (the first ``max_pictures``, under ``pictures/`` with the input's
    relative paths); videos and webcams one annotated video of the same frame rate and size.
    """

    def __init__(
        self,
        output_dir: Path,
        *,
        kind: str,
        fps: float | None,
        keypoint_info: Any,
        max_pictures: int,
        score_thr: float,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.video = kind in ("video", "webcam")
        self.fps = fps
        self.info = keypoint_info
        self.max_pictures = int(max_pictures)
        self.score_thr = float(score_thr)
        self.results: list[dict] = []
        self.skipped: list[dict] = []
        self.read = 0
        self.pictures = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def add(self, frame: Frame, people: People) -> None:
        self.read += 1
        self.results.extend(result_entries(frame, people, video=self.video))
        if self.video:
            self._write_frame(annotate(frame.image, people, self.info, score_thr=self.score_thr))
        elif self.pictures < self.max_pictures:
            path = self.output_dir / "pictures" / Path(frame.name).with_suffix(".jpg")
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), annotate(frame.image, people, self.info, score_thr=self.score_thr))
            self.pictures += 1

    def skip(self, skipped: Skipped) -> None:
        self.skipped.append({"name": skipped.name, "reason": skipped.reason})

    def _write_frame(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        if self._writer is None:
            path = self.output_dir / VIDEO_NAME
            self._writer = cv2.VideoWriter(
                str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(self.fps or 30.0), (width, height)
            )
            if not self._writer.isOpened():
                raise OSError(f"cannot write the video {path} (OpenCV has no mp4v encoder here)")
            self._size = (width, height)
        if (width, height) != self._size:  # a stream that changes size mid-way: keep the first size
            image = cv2.resize(image, self._size)
        self._writer.write(image)

    def close(self, *, input_spec: str, seconds: float, extra: dict | None = None) -> dict:
        """Write results.json and summary.json (with the entries of ``extra``, e.g. the tracking and
        smoothing settings); returns the summary."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        write_json_atomic(self.output_dir / "results.json", self.results)
        summary = {
            "input": input_spec,
            "frames" if self.video else "images": self.read,
            "people": len(self.results),
            "skipped": self.skipped,
            "seconds": round(seconds, 2),
            "per_second": round(self.read / seconds, 2) if seconds > 0 else None,
            "results": str(self.output_dir / "results.json"),
        }
        if self.video and self._size is not None:
            summary["video"] = str(self.output_dir / VIDEO_NAME)
        elif self.pictures:
            summary["pictures"] = str(self.output_dir / "pictures")
        summary.update(extra or {})
        write_json_atomic(self.output_dir / "summary.json", summary)
        return summary
