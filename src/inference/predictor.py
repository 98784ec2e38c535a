"""The Python API: load a model once, call it on image arrays, get people as numpy arrays.

`Predictor` wraps a task (`PoseModule`) in one of three backends: the PyTorch checkpoint, or an
exported ONNX / TorchScript file run through the same pre- and post-processing code
(`src.inference.backends`). Models of person crops (top-down, 3D) take person boxes from the
caller or from a bottom-up model given as ``detector``: its people's keypoint boxes, enlarged
``detector_padding`` times, become the crops, with the person's grouping score as box score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from src.geometry import clip_boxes, enlarge_boxes

BACKENDS = ("torch", "onnx", "torchscript")
#: Person boxes enlarge the keypoints' extent by about this much (median 1.19 over the synthetic
#: validation people with 15 or more labelled joints, 1.26 over the real COCO samples).
DETECTOR_PADDING = 1.2


@dataclass
class People:
    """The people found in one image; P people, K keypoints of the model's layout.

    Attributes:
        keypoints: (P, K, 3) [x, y, score] in image pixels.
        scores: (P,) person scores.
        boxes: (P, 4) [x, y, w, h] person boxes (the given or detected box for crop models, the
            keypoints' extent for bottom-up models).
        joints_3d: 3D models: (P, K, 3) root-relative camera-frame joints in mm.
        joints_cam: 3D models: (P, K, 3) camera-frame joints in mm, at ``root_depth``.
        root_depth: 3D models: (P,) the root depth in mm (a RootNet's prediction, or the k-value
            assumption; see `Pose3DModule.infer`).
        focal: 3D models: (P,) the focal length in pixels used for the back-projection.
        root_cam: RootNet models: (P, 3) the predicted camera-frame roots in mm.
        track_ids: videos: (P,) int64 ids that persist across frames (`src.inference.steady`).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    joints_3d: np.ndarray | None = None
    joints_cam: np.ndarray | None = None
    root_depth: np.ndarray | None = None
    focal: np.ndarray | None = None
    root_cam: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: np.ndarray | Sequence[int]) -> People:
        """The people at ``index``."""
        return People(**{f.name: None if (v := getattr(self, f.name)) is None else v[index] for f in fields(self)})


def as_image_list(images: np.ndarray | Sequence[np.ndarray], *, color: str) -> tuple[list[np.ndarray], bool]:
    """Validated RGB (H, W, 3) uint8 images, and whether a single image was given."""
    if color not in ("rgb", "bgr"):
        raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
    single = isinstance(images, np.ndarray) and images.ndim == 3
    batch = [images] if single else list(images)
    checked = []
    for i, image in enumerate(batch):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"image {i}: expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
        checked.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color == "bgr" else np.ascontiguousarray(image))
    return checked, single


def predicts_roots(task: Any) -> bool:
    """Whether a task is a root model (RootNet: camera-frame roots, no pose)."""
    return getattr(getattr(task, "codec", None), "prediction_key", None) == "root_cam"


def resolve_device(device: str) -> str:
    """``auto``: cuda when a GPU is available, else cpu; any other name unchanged."""
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


class Predictor:
    """A model ready to run on images; build it with `Predictor.load`.

    Args:
        task: a `PoseModule` (its network may be an exported file, see `src.inference.backends`).
        detector: a Predictor of a bottom-up model that proposes person boxes to a crop model.
        root: a RootNet task (`Pose3DModule` with the RootDepth codec) whose root depths place a 3D
            pose model's people in camera coordinates (without it: the k-value, see
            `Pose3DModule.infer`).
        batch_size: crops or images per network call.
        focal: 3D models: focal length in pixels (default: the image width).
        detector_padding: enlargement of the detector's keypoint boxes.
    """

    def __init__(
        self,
        task: Any,
        *,
        detector: Predictor | None = None,
        root: Any = None,
        batch_size: int = 16,
        focal: float | None = None,
        detector_padding: float = DETECTOR_PADDING,
    ) -> None:
        if detector is not None and detector.task.needs_boxes:
            raise ValueError(f"the detector must find people itself (a bottom-up model), got {detector.name}")
        name = str(task.hparams.name)
        if predicts_roots(task):
            raise ValueError(
                f"{name} is a RootNet model (it predicts roots, not poses): give it as root_ckpt, with a 3D pose "
                "model (PoseNet) as ckpt_path"
            )
        if root is not None and not predicts_roots(root):
            raise ValueError(
                f"root_ckpt {root.hparams.name} predicts poses, not roots: root_ckpt takes a RootNet checkpoint, "
                f"and {name} is the pose model"
            )
        if root is not None and not getattr(task, "output_3d", False):
            raise ValueError(f"root_ckpt places 3D poses in the camera frame, but {name} is a 2D model")
        self.task = task.eval()
        self.detector = detector
        self.root = root.eval() if root is not None else None
        self.batch_size = int(batch_size)
        self.focal = focal
        self.detector_padding = float(detector_padding)

    @classmethod
    def load(
        cls,
        ckpt_path: str | Path | None = None,
        *,
        backend: str = "torch",
        model_file: str | Path | None = None,
        detector_ckpt: str | Path | None = None,
        root_ckpt: str | Path | None = None,
        device: str = "cpu",
        test_options: dict | None = None,
        **options: Any,
    ) -> Predictor:
        """A predictor from a checkpoint of `src.train` / `src.convert` or the name of a published one
        (``backend="torch"``, see `from_pretrained`), or from an exported file and its JSON sidecar
        (``backend="onnx"`` or ``"torchscript"``, ``model_file=``). ``detector_ckpt``: a bottom-up
        checkpoint proposing boxes; ``root_ckpt``: a RootNet checkpoint giving a 3D pose model its root
        depths (both may be published names too); ``device``: cpu, cuda, cuda:1, ... or auto (cuda when
        available); ``test_options``: e.g. ``{"flip_test": False}``; other keywords go to `Predictor`."""
        from src.hub.checkpoints import checkpoint_path
        from src.inference.backends import load_exported_task
        from src.tasks.loading import load_task

        ckpt_path, detector_ckpt, root_ckpt = (
            checkpoint_path(spec) if spec else None for spec in (ckpt_path, detector_ckpt, root_ckpt)
        )
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        device = resolve_device(device)
        if backend == "torch":
            if not ckpt_path:
                raise ValueError("the torch backend needs ckpt_path (a checkpoint of src.train or src.convert)")
            task = load_task(ckpt_path).to(device)
        else:
            if not model_file:
                raise ValueError(f"backend={backend} needs model_file (written by python -m src.export)")
            task = load_exported_task(model_file, backend=backend)
        if test_options:
            task.set_test_options(**test_options)
        detector = cls(load_task(detector_ckpt).to(device)) if detector_ckpt else None
        root = load_task(root_ckpt).to(device) if root_ckpt else None
        return cls(task, detector=detector, root=root, **options)

    @classmethod
    def from_pretrained(cls, name: str, **load: Any) -> Predictor:
        """A predictor of the published checkpoint ``name`` (``python -m src.zoo`` lists them):
        downloaded into the cache and converted on first use (`src.hub.published_checkpoint`), then
        read from the cache without any network access. ``load``: the keywords of `load`
        (``detector_ckpt``, ``root_ckpt``, ``device``, ...), which also take published names."""
        from src.hub.checkpoints import published_checkpoint

        return cls.load(published_checkpoint(name), **load)

    @property
    def name(self) -> str:
        return str(self.task.hparams.name)

    @property
    def keypoint_info(self) -> Any:
        return self.task.keypoint_info

    @property
    def needs_boxes(self) -> bool:
        """Whether calls need person boxes (a crop model without a detector)."""
        return bool(self.task.needs_boxes) and self.detector is None

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Person boxes (B, 5) [x, y, w, h, score] per RGB image from the detector's people: their
        keypoint boxes enlarged ``detector_padding`` times, cut to the image; empty boxes dropped."""
        if self.detector is None:
            raise ValueError(f"{self.name} needs person boxes: pass boxes or load a bottom-up detector_ckpt")
        found = self.detector.task.infer(images, batch_size=self.detector.batch_size)
        boxes = []
        for image, people in zip(images, found):
            height, width = image.shape[:2]
            image_boxes = clip_boxes(enlarge_boxes(people["boxes"], self.detector_padding), width, height)
            kept = (image_boxes[:, 2] > 0) & (image_boxes[:, 3] > 0)
            boxes.append(np.concatenate([image_boxes, people["scores"][:, None]], axis=1)[kept])
        return boxes

    def root_depths(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """The RootNet depth (mm) of every box (NaN where the box is empty after clipping)."""
        found = self.root.infer(images, boxes, batch_size=self.batch_size, focal=self.focal)
        depths = []
        for image_boxes, people in zip(boxes, found):
            depth = np.full(len(image_boxes), np.nan, np.float32)
            depth[people["box_index"]] = people["root_depth"]
            depths.append(depth)
        return depths

    @torch.no_grad()
    def __call__(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        boxes: Sequence[np.ndarray] | np.ndarray | None = None,
        *,
        color: str = "rgb",
    ) -> People | list[People]:
        """People in one image (H, W, 3) uint8 or in a list / (N, H, W, 3) batch of them.

        Args:
            images: RGB (``color="rgb"``) or OpenCV BGR (``color="bgr"``) uint8 images.
            boxes: crop models: person boxes (B, 4) [x, y, w, h] or (B, 5) with scores, one array
                per image (a single array for a single image); None: from the detector.
        """
        batch, single = as_image_list(images, color=color)
        if not self.task.needs_boxes:
            image_boxes = None
        elif boxes is not None:
            image_boxes = [boxes] if single else list(boxes)
        else:
            image_boxes = self.detect(batch)
        options: dict[str, Any] = {"batch_size": self.batch_size, "focal": self.focal}
        if self.root is not None:
            options["root_depths"] = self.root_depths(batch, image_boxes)
        found = self.task.infer(batch, image_boxes, **options)
        people = [People(**{k: v for k, v in p.items() if k != "box_index"}) for p in found]
        return people[0] if single else people
