"""What `src.predict` reads: an image, a folder of images (recursive, with a glob), a video file or
a webcam. Each source yields `Frame`s (decoded once, BGR as OpenCV reads them) and `Skipped`
entries for what could not be read, so a run goes on past a bad file and reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.readers.images import read_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
#: Consecutive undecodable frames after which a video is taken to have ended.
MAX_BAD_FRAMES = 5
#: The frame rate assumed for a video or webcam that reports none (0, NaN or absurd).
DEFAULT_FPS = 30.0


@dataclass
class Frame:
    """One decoded image: ``index`` in reading order, ``name`` (the file's path relative to the
    input folder, or ``frame_000012``), ``image`` (H, W, 3) uint8 BGR."""

    index: int
    name: str
    image: np.ndarray


@dataclass
class Skipped:
    """An input that could not be read, and why."""

    name: str
    reason: str


class ImageFiles:
    """Image files read one by one; unreadable ones are skipped with their reason."""

    kind = "images"

    def __init__(self, files: list[Path], root: Path) -> None:
        self.files = files
        self.root = root
        self.fps: float | None = None
        self.fps_reported = False

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame | Skipped]:
        for index, path in enumerate(self.files):
            name = path.name if path == self.root else path.relative_to(self.root).as_posix()
            try:
                yield Frame(index, name, read_image(path, color_rgb=False))
            except (OSError, ValueError) as err:
                yield Skipped(name, str(err))


class VideoFrames:
    """Frames of a video file or a webcam through OpenCV's VideoCapture: ``fps`` is the frame rate
    the stream reports, or `DEFAULT_FPS` when it reports none (``fps_reported`` False)."""

    def __init__(self, capture: cv2.VideoCapture, label: str, *, kind: str, max_frames: int | None) -> None:
        self.capture = capture
        self.label = label
        self.kind = kind
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps_reported = bool(0 < fps < 1000)  # False for 0 and NaN
        self.fps = fps if self.fps_reported else DEFAULT_FPS
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if kind == "video" else 0
        self.count = count if count > 0 else None
        if max_frames is not None:
            self.count = min(self.count, int(max_frames)) if self.count else int(max_frames)
        self.max_frames = max_frames

    def __len__(self) -> int:
        return self.count or 0

    def __iter__(self) -> Iterator[Frame | Skipped]:
        index, bad = 0, 0
        try:
            while self.max_frames is None or index < self.max_frames:
                ok, image = self.capture.read()
                if ok and image is not None and image.size:
                    bad = 0
                    if image.ndim == 2:
                        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                    yield Frame(index, f"frame_{index:06d}", image[:, :, :3])
                    index += 1
                    continue
                if self.count is None or index >= self.count:
                    break  # the end of the stream
                bad += 1
                yield Skipped(f"frame_{index:06d}", f"{self.label}: frame {index} cannot be decoded")
                index += 1
                if bad >= MAX_BAD_FRAMES:
                    log.warning("%s: %d frames in a row cannot be decoded; stopping", self.label, bad)
                    break
        finally:
            self.capture.release()


def _webcam_index(spec: object) -> int | None:
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec
    text = str(spec).strip()
    if text.isdigit():
        return int(text)
    if text.startswith("webcam:") and text[7:].isdigit():
        return int(text[7:])
    return None


def open_input(spec: object, *, glob: str = "**/*", max_frames: int | None = None) -> ImageFiles | VideoFrames:
    """The source named by ``spec``: a webcam index (``0`` or ``webcam:0``), a video file, an image
    file, or a folder whose images matching ``glob`` (recursive by default) are read in name order.

    Raises:
        FileNotFoundError: the path does not exist, or a folder holds no image matching ``glob``.
        ValueError: a file that is neither an image nor a video, or a video / webcam that OpenCV
            cannot open.
    """
    camera = _webcam_index(spec)
    if camera is not None:
        capture = cv2.VideoCapture(camera)
        if not capture.isOpened():
            raise ValueError(f"cannot open webcam {camera} (is a camera connected, and free?)")
        return VideoFrames(capture, f"webcam {camera}", kind="webcam", max_frames=max_frames)
    path = Path(str(spec)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path} (give an image, a folder, a video file or a webcam index)")
    if path.is_dir():
        files = sorted(p for p in path.glob(glob) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(
                f"no images matching {glob!r} in {path} (image files end in {', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        return ImageFiles(files[:max_frames] if max_frames else files, path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"cannot open video {path} (corrupt, empty, or a codec this OpenCV build lacks)")
        return VideoFrames(capture, str(path), kind="video", max_frames=max_frames)
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles([path], path)
    raise ValueError(
        f"{path}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}) or a video ({', '.join(sorted(VIDEO_SUFFIXES))})"
    )
