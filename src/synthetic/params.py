"""The parameters of the synthetic generators: one frozen dataclass per kind of dataset, defaults
and checks in one place, the cache key derived from it, and the command-line flags derived from
its fields.

- `SceneParams`: the photo-collection scenes (people, crowds, occluders, clutter) shared by the COCO,
  CrowdPose and MPII writers; `COCOParams` (COCO and CrowdPose) and `MPIIParams` add what their
  writers annotate.
- `H36MParams`: the Human3.6M-style studio (subjects, actions, cameras, frames).

Every ``ensure_synthetic_*`` takes its parameters object, or keyword arguments (what the data
configs' ``data.reader.synthetic`` holds) turned into one by `SyntheticParams.from_options`, which
names an unknown or bad key. Light on purpose (no image libraries): the readers and ``--help``
import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import numbers
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from src.layouts import MPII16
from src.readers.h36m_naming import ACTIONS, FIRST_ACTION

P = TypeVar("P", bound="SyntheticParams")

#: Image ids of the validation split start at IMAGE_ID_STRIDE + 1 (ids unique across splits).
IMAGE_ID_STRIDE = 1_000_000
#: COCO annotation ids are image id * ANNOTATIONS_PER_IMAGE + the annotation's index in the image.
ANNOTATIONS_PER_IMAGE = 100
#: The Human3.6M action_idx values (2..16).
ALL_ACTIONS = tuple(range(FIRST_ACTION, FIRST_ACTION + len(ACTIONS)))


@dataclass(frozen=True)
class SceneConfig:
    """Sampling ranges of one rendered scene (`scene.render_scene`). Heights are statures in pixels
    (a standing person's height). `SceneParams.scene_config` sets the knobs a dataset exposes; the
    others are fixed properties of the generator."""

    image_size: tuple[int, int] = (320, 256)  # (w, h)
    max_people: int = 4
    min_people: int = 1  # people in an image that is not empty
    empty_prob: float = 0.03  # images without people
    crowd_prob: float = 0.12  # images with a crowd region
    occluder_prob: float = 0.12  # images with a foreground object in front of someone
    tiny_prob: float = 0.06  # a person is tiny (keypoint-less)
    min_height: float = 50.0  # px, smallest annotated stature
    max_height_frac: float = 0.95  # largest stature as a fraction of the image height
    keypoint_min_height: float = 40.0  # px, smaller people get no keypoints
    truncation_prob: float = 0.15  # a person is pushed over the top/bottom border
    clutter: float = 0.6  # scales the number of background shapes, lines and limb-like sticks
    facing_camera_prob: float = 0.85  # a person turns towards the camera (yaw ~ N(0, 35 deg)); else any yaw
    max_blur_sigma: float = 0.9
    max_noise: float = 4.0


def knob(default: Any, help: str, *, metavar: str | tuple[str, ...] | None = None) -> Any:
    """A parameter field: its default, and the help (and metavar) of its command-line flag."""
    return field(default=default, metadata={"help": help, "metavar": metavar})


# ------------------------------------------------------------------------------------ conversion
def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value:
        raise TypeError("an integer")
    return int(value)


def _real(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("a number")
    return float(value)


def _integers(value: Any, length: int | None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"a list of {length or 'some'} integers")
    if length is not None and len(value) != length:
        raise TypeError(f"a list of {length} integers")
    return tuple(_integer(v) for v in value)


def _convert(value: Any, hint: Any) -> Any:
    """``value`` as the field type ``hint`` says (int, float, tuple[int, int], tuple[int, ...],
    optionally | None); TypeError with what was expected otherwise."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if hint is int:
        return _integer(value)
    if hint is float:
        return _real(value)
    if typing.get_origin(hint) is tuple:
        return _integers(value, None if args[-1] is Ellipsis else len(args))
    raise AssertionError(f"no conversion for a field of type {hint}")


# ------------------------------------------------------------------------------------ the base
@dataclass(frozen=True, kw_only=True)
class SyntheticParams:
    """What every generator's parameters have: a seed, and the machinery (conversion of config
    values, checks naming the bad key, the cache key, the CLI flags)."""

    #: The dataset these parameters describe, in messages ("synthetic COCO").
    WHAT: ClassVar[str] = "synthetic"

    seed: int = knob(0, "seed of every random stream (the same seed gives the same bytes)")

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                object.__setattr__(self, f.name, _convert(value, hints[f.name]))
            except TypeError as err:
                raise ValueError(f"{self.WHAT} parameter {f.name} must be {err}, got {value!r}") from None
        self.check()

    def check(self) -> None:
        """ValueError naming the first parameter out of its range (subclasses add theirs)."""

    def fail(self, key: str, requirement: str) -> None:
        """Raise the ValueError of a parameter out of range."""
        raise ValueError(f"{self.WHAT} parameter {key} must be {requirement}, got {getattr(self, key)!r}")

    def require_range(self, key: str, low: float, high: float | None = None) -> None:
        """``key`` must lie in [low, high] (no upper bound when high is None)."""
        value = getattr(self, key)
        if value < low or (high is not None and value > high):
            self.fail(key, f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}")

    # ---------------------------------------------------------------------------- construction
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameters' names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_options(cls: type[P], options: Mapping[str, Any] | P | None = None, /, **more: Any) -> P:
        """Parameters from a config mapping (or parameters) and keyword arguments, the latter winning;
        keys left out keep their defaults. ValueError naming unknown keys and listing the known ones."""
        if isinstance(options, cls):
            return options.replace(**more)
        if isinstance(options, SyntheticParams):
            raise TypeError(f"{cls.WHAT} takes {cls.__name__}, got {type(options).__name__}")
        merged = {**dict(options or {}), **more}
        unknown = sorted(set(merged) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown {cls.WHAT} parameters {unknown}; known: {list(cls.names())}")
        return cls(**merged)

    def replace(self: P, **changes: Any) -> P:
        """A copy with some parameters changed (checked as at construction)."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise ValueError(f"unknown {self.WHAT} parameters {unknown}; known: {list(self.names())}")
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------------------- outputs
    def as_json(self) -> dict[str, Any]:
        """{name: value} in plain JSON types (tuples as lists)."""
        return {name: list(v) if isinstance(v, tuple) else v for name, v in dataclasses.asdict(self).items()}

    def cache_key(self) -> dict[str, Any]:
        """Every parameter that changes the output, as plain JSON types: hashed, with the writer's
        name and version, into the dataset's manifest (`cache.ensure_cached`)."""
        return self.as_json()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per parameter (``--num-train`` for num_train), typed by the field; flags left out
        are absent from the parsed namespace, so the defaults stay the dataclass's."""
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            if typing.get_origin(hint) is not tuple and args and typing.get_origin(args[0]) is tuple:
                hint = args[0]  # tuple[int, ...] | None
            default = "all" if f.default is None else f.default
            if isinstance(default, tuple):
                default = " ".join(str(v) for v in default)
            options: dict[str, Any] = {"help": f"{f.metadata['help']} (default: {default})"}
            if f.metadata.get("metavar"):
                options["metavar"] = f.metadata["metavar"]
            if typing.get_origin(hint) is tuple:
                items = typing.get_args(hint)
                options.update(type=int, nargs="+" if items[-1] is Ellipsis else len(items))
            else:
                options["type"] = hint
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **options)

    @classmethod
    def from_namespace(cls: type[P], args: argparse.Namespace) -> P:
        """The parameters of a namespace parsed with `add_arguments` (other attributes ignored)."""
        return cls.from_options({k: v for k, v in vars(args).items() if k in cls.names()})


# ------------------------------------------------------------------------------------ photo scenes
@dataclass(frozen=True, kw_only=True)
class SceneParams(SyntheticParams):
    """A collection of photos of people (the COCO, CrowdPose and MPII writers render the same scenes:
    image i of a split is drawn from (seed, split, i), so equal parameters give equal pictures)."""

    WHAT: ClassVar[str] = "synthetic scene"

    num_train: int = knob(1000, "training images")
    num_val: int = knob(150, "validation images")
    image_size: tuple[int, int] = knob((320, 256), "image width and height in pixels", metavar=("W", "H"))
    max_people: int = knob(4, "most people in an image")
    min_people: int = knob(1, "fewest people in an image that is not empty")
    crowd_prob: float = knob(0.12, "share of images with a crowd region (iscrowd, RLE)")
    empty_prob: float = knob(0.03, "share of images without people")
    occluder_prob: float = knob(0.12, "share of images where an object stands in front of someone")
    min_height: float = knob(50.0, "smallest stature (a standing person's height) in pixels")
    max_height_frac: float = knob(0.95, "largest stature as a fraction of the image height")
    clutter: float = knob(0.6, "background shapes, lines and limb-like sticks (1.0: full)")
    facing_camera_prob: float = knob(0.85, "share of people turned towards the camera (the rest face any way)")
    jpeg_quality: int = knob(92, "JPEG quality of the images")
    keypoint_min_area: int = knob(32 * 32, "people with fewer visible pixels get no keypoints (COCO's 'small')")

    def check(self) -> None:
        super().check()
        for key in ("num_train", "num_val"):
            self.require_range(key, 0, IMAGE_ID_STRIDE - 1)
        self.require_range("max_people", 1, ANNOTATIONS_PER_IMAGE - 2)
        self.require_range("min_people", 1, self.max_people)
        if min(self.image_size) < 32:
            self.fail("image_size", "at least 32 x 32 (w, h)")
        for key in ("crowd_prob", "empty_prob", "occluder_prob", "facing_camera_prob", "max_height_frac"):
            self.require_range(key, 0.0, 1.0)
        for key in ("min_height", "clutter", "keypoint_min_area"):
            self.require_range(key, 0)
        self.require_range("jpeg_quality", 1, 100)

    def scene_config(self) -> SceneConfig:
        """The renderer's sampling ranges for these parameters."""
        return SceneConfig(
            image_size=self.image_size,
            max_people=self.max_people,
            min_people=self.min_people,
            crowd_prob=self.crowd_prob,
            empty_prob=self.empty_prob,
            occluder_prob=self.occluder_prob,
            min_height=self.min_height,
            max_height_frac=self.max_height_frac,
            clutter=self.clutter,
            facing_camera_prob=self.facing_camera_prob,
        )

    def cache_key(self) -> dict[str, Any]:
        """The dataset's parameters, with the scene's (the renderer's whole `SceneConfig`, fixed
        ranges included) under "scene"."""
        scene = dataclasses.asdict(self.scene_config())
        scene["image_size"] = list(self.image_size)
        rest = {k: v for k, v in self.as_json().items() if k not in scene}
        return {**rest, "scene": scene}


@dataclass(frozen=True, kw_only=True)
class COCOParams(SceneParams):
    """The synthetic COCO dataset (and the CrowdPose one converted from it)."""

    WHAT: ClassVar[str] = "synthetic COCO"

    min_area: int = knob(30, "people with fewer visible pixels get no annotation")

    def check(self) -> None:
        super().check()
        self.require_range("min_area", 0)


@dataclass(frozen=True, kw_only=True)
class MPIIParams(SceneParams):
    """The synthetic MPII dataset: one entry per annotated person (rules: `mpii_writer`)."""

    WHAT: ClassVar[str] = "synthetic MPII"

    empty_prob: float = knob(0.0, "share of images without people (MPII images all show someone)")
    min_joints: int = knob(10, "an annotated person has at least this many of the 16 joints inside the image")
    min_visible_joints: int = knob(6, "an annotated person has at least this many of the 16 joints unoccluded")

    def check(self) -> None:
        super().check()
        self.require_range("min_joints", 0, MPII16.num_keypoints)
        self.require_range("min_visible_joints", 0, MPII16.num_keypoints)


# ------------------------------------------------------------------------------------ the studio
@dataclass(frozen=True, kw_only=True)
class H36MParams(SyntheticParams):
    """The synthetic Human3.6M studio: subjects filmed by calibrated cameras (`h36m_writer`).
    Subjects and actions are kept sorted; actions None means all 15."""

    WHAT: ClassVar[str] = "synthetic Human3.6M"

    subjects: tuple[int, ...] = knob((1, 5, 6, 7, 8, 9, 11), "subject numbers (1..99)", metavar="S")
    actions: tuple[int, ...] | None = knob(None, f"action_idx values {ALL_ACTIONS[0]}..{ALL_ACTIONS[-1]}", metavar="A")
    subactions: int = knob(2, "subactions (sequences) per action")
    frames: int = knob(8, "frames per sequence, 0.1 s apart")
    num_cameras: int = knob(4, "cameras round the studio")
    image_size: tuple[int, int] = knob((256, 256), "image width and height in pixels", metavar=("W", "H"))
    jpeg_quality: int = knob(92, "JPEG quality of the images")
    clutter: float = knob(0.5, "background shapes (1.0: full)")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "subjects", tuple(sorted(self.subjects)))
        object.__setattr__(self, "actions", ALL_ACTIONS if self.actions is None else tuple(sorted(self.actions)))
        self.check_sets()

    def check_sets(self) -> None:
        """Subjects and actions: distinct, in range (after sorting)."""
        if (
            not self.subjects
            or len(set(self.subjects)) != len(self.subjects)
            or not all(1 <= s <= 99 for s in self.subjects)
        ):
            self.fail("subjects", "distinct numbers in 1..99")
        if not self.actions or len(set(self.actions)) != len(self.actions) or not set(self.actions) <= set(ALL_ACTIONS):
            self.fail("actions", f"distinct action_idx in {ALL_ACTIONS[0]}..{ALL_ACTIONS[-1]}")

    def check(self) -> None:
        super().check()
        for key in ("subactions", "num_cameras"):
            self.require_range(key, 1, 99)
        self.require_range("frames", 1, 999_999)
        if min(self.image_size) < 32:
            self.fail("image_size", "at least 32 x 32 (w, h)")
        self.require_range("jpeg_quality", 1, 100)
        self.require_range("clutter", 0)
