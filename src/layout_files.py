"""Keypoint layouts from YAML files (or mappings), for datasets with their own keypoints.

A layout file (see ``docs/custom-keypoints.md``) declares:

- ``name``: the layout's name (the file's stem when absent);
- ``keypoints``: the K joint names in channel order, or ``from_json: <COCO-format file>`` (relative to
  the YAML file) to take the names and the skeleton from the file's keypoint category;
- ``flip_pairs``: (left, right) pairs by name or index, or ``auto`` to pair names that differ only
  in a side prefix or suffix (``flip_rule``, default ``{left: left_, right: right_}``); the derived
  pairs are logged;
- ``skeleton``: limbs as name or index pairs;
- ``upper_body`` / ``lower_body``: the halves of half-body augmentation (names or indices; empty
  when absent, which turns half-body augmentation into a no-op);
- ``joint_weights``: a list of K loss weights or a {name: weight} mapping (others 1.0);
- ``sigmas``: OKS sigmas, a list of K or a {name: sigma} mapping covering every joint; without
  them training works and the COCO metric uses a uniform default with a warning;
- ``colors``: RGB per joint (a list of K, or {name: [r, g, b]}, others default), for drawing;
- ``parts``: named groups of joints ({part: [names or indices]}) for per-part metrics.

Every problem is a `LayoutError` naming the file, the key and the entry.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from src.keypoint_info import KeypointInfo

log = logging.getLogger(__name__)

#: Where layouts named without a path are looked up (``data.layout=coco_wholebody``).
LAYOUT_DIR = Path(__file__).resolve().parent.parent / "conf" / "layouts"
KNOWN_KEYS = frozenset(
    {
        "name",
        "keypoints",
        "from_json",
        "category_id",
        "flip_pairs",
        "flip_rule",
        "skeleton",
        "upper_body",
        "lower_body",
        "joint_weights",
        "sigmas",
        "colors",
        "parts",
    }
)
DEFAULT_FLIP_RULE = {"left": "left_", "right": "right_"}


class LayoutError(ValueError):
    """A layout file (or mapping) that cannot describe keypoints; the message names file, key and entry."""


def layout_path(name: str) -> Path | None:
    """The YAML file a layout name or path refers to: an existing path, or ``conf/layouts/<name>.yaml``."""
    candidate = Path(str(name)).expanduser()
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    named = LAYOUT_DIR / f"{name}.yaml"
    return named if named.is_file() else None


def load_layout_file(path: str | Path) -> KeypointInfo:
    """The layout a YAML file declares (see the module docstring). Read once per file version: the
    config (``data.num_keypoints``), the datamodule and the model all ask for it, and a layout with
    ``from_json`` reads a whole annotation file (whose later changes a running process does not see)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LayoutError(f"{path}: no such layout file")
    stat = path.stat()
    return _read_layout_file(str(path.resolve()), str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _read_layout_file(resolved: str, shown: str, mtime_ns: int, size: int) -> KeypointInfo:
    """`load_layout_file`'s work, cached by the file's identity and version (the returned
    `KeypointInfo` is immutable)."""
    del resolved, mtime_ns, size  # the cache key only
    path = Path(shown)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise LayoutError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, Mapping):
        raise LayoutError(f"{path}: a layout file holds a mapping of keys (keypoints, flip_pairs, ...)")
    return layout_from_mapping(data, origin=str(path), base_dir=path.parent, default_name=path.stem)


def layout_from_mapping(
    data: Mapping[str, Any], *, origin: str = "layout", base_dir: Path | None = None, default_name: str = "custom"
) -> KeypointInfo:
    """A `KeypointInfo` from a mapping with the keys of the module docstring.

    Args:
        data: the layout's keys.
        origin: what to call the source in messages (the file's path).
        base_dir: the folder ``from_json`` is resolved against (the YAML file's).
        default_name: the name when ``name`` is absent.
    """
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise LayoutError(f"{origin}: unknown key(s) {unknown}; a layout has {sorted(KNOWN_KEYS)}")
    data = dict(data)
    name = str(data.get("name") or default_name)
    if "from_json" in data:
        if "keypoints" in data:
            raise LayoutError(f"{origin}: give either 'keypoints' or 'from_json', not both")
        names, skeleton = category_layout(
            resolve_against(base_dir, data["from_json"]), category_id=data.get("category_id"), origin=origin
        )
        data["keypoints"] = names
        data.setdefault("skeleton", skeleton)
    names = keypoint_names(data.get("keypoints"), origin)
    index = {n: i for i, n in enumerate(names)}
    flip_pairs = _flip_pairs(data.get("flip_pairs", ()), data.get("flip_rule"), names, index, origin)
    skeleton = _pairs(data.get("skeleton") or (), index, origin, "skeleton")
    upper = _indices(data.get("upper_body") or (), index, origin, "upper_body")
    lower = _indices(data.get("lower_body") or (), index, origin, "lower_body")
    weights = _per_joint(data.get("joint_weights"), names, index, origin, "joint_weights", default=1.0)
    sigmas = _per_joint(data.get("sigmas"), names, index, origin, "sigmas", default=None)
    if sigmas is not None and min(sigmas) <= 0:
        bad = [names[i] for i, s in enumerate(sigmas) if s <= 0]
        raise LayoutError(f"{origin}: sigmas: must be > 0, not for {bad}")
    if min(weights) < 0:
        raise LayoutError(
            f"{origin}: joint_weights: must be >= 0, not for {[n for n, w in zip(names, weights) if w < 0]}"
        )
    colors = _colors(data.get("colors"), names, index, origin)
    parts = _parts(data.get("parts"), index, origin)
    try:
        return KeypointInfo(
            name=name,
            keypoint_names=names,
            flip_pairs=flip_pairs,
            skeleton=skeleton,
            upper_body_ids=upper,
            lower_body_ids=lower,
            sigmas=sigmas,
            joint_weights=weights,
            colors=colors,
            parts=parts,
        )
    except ValueError as err:
        raise LayoutError(f"{origin}: {err}") from err


def resolve_against(base_dir: Path | None, path: str | Path) -> Path:
    p = Path(str(path)).expanduser()
    return p if p.is_absolute() or base_dir is None else base_dir / p


def category_layout(
    json_file: Path, *, category_id: int | None = None, origin: str = "layout"
) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """(keypoint names, 0-based skeleton) of a COCO-format file's keypoint category: the one with
    ``category_id``, or the only layout its keypoint categories share (several categories with the
    same keypoints, as AP-10K's species, are one layout). COCO skeletons are 1-based."""
    if not json_file.is_file():
        raise LayoutError(f"{origin}: from_json: no such file {json_file}")
    try:
        data = json.loads(json_file.read_text())
    except (OSError, ValueError) as err:
        raise LayoutError(f"{origin}: from_json: {json_file} is not readable JSON ({err})") from err
    categories = [c for c in data.get("categories") or [] if isinstance(c, Mapping) and "keypoints" in c]
    if category_id is not None:
        categories = [c for c in categories if c.get("id") == category_id]
    if not categories:
        which = f"category {category_id}" if category_id is not None else "a category with 'keypoints'"
        raise LayoutError(f"{origin}: from_json: {json_file} has no {which}")
    layouts = {(tuple(map(str, c["keypoints"])), tuple(tuple(p) for p in c.get("skeleton") or ())) for c in categories}
    if len(layouts) > 1:
        ids = [c.get("id") for c in categories]
        raise LayoutError(
            f"{origin}: from_json: the keypoint categories of {json_file} ({ids}) declare different keypoints "
            "or skeletons; name one with category_id"
        )
    names, skeleton = layouts.pop()
    k = len(names)
    zero_based = []
    for a, b in skeleton:
        if not (1 <= int(a) <= k and 1 <= int(b) <= k):
            raise LayoutError(
                f"{origin}: from_json: {json_file}: skeleton pair [{a}, {b}] is out of range for {k} keypoints "
                "(COCO skeletons count from 1)"
            )
        zero_based.append((int(a) - 1, int(b) - 1))
    return names, tuple(zero_based)


def keypoint_names(value: Any, origin: str) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise LayoutError(f"{origin}: keypoints: a non-empty list of joint names is needed, got {value!r}")
    names = tuple(str(v) for v in value)
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise LayoutError(f"{origin}: keypoints: duplicate name {n!r} at {seen[n]} and {i}")
        seen[n] = i
    return names


def _joint(entry: Any, index: Mapping[str, int], origin: str, key: str) -> int:
    """A joint given by name or 0-based index."""
    if isinstance(entry, bool):
        raise LayoutError(f"{origin}: {key}: {entry!r} is not a joint name or index")
    if isinstance(entry, int):
        if not 0 <= entry < len(index):
            raise LayoutError(f"{origin}: {key}: index {entry} is out of range for {len(index)} keypoints")
        return entry
    if str(entry) not in index:
        raise LayoutError(f"{origin}: {key}: unknown joint {entry!r}; the keypoints are {list(index)}")
    return index[str(entry)]


def _pairs(value: Any, index: Mapping[str, int], origin: str, key: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise LayoutError(f"{origin}: {key}: a list of [a, b] pairs is needed, got {value!r}")
    pairs = []
    for entry in value:
        if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) != 2:
            raise LayoutError(f"{origin}: {key}: entry {entry!r} is not a pair [a, b]")
        pairs.append((_joint(entry[0], index, origin, key), _joint(entry[1], index, origin, key)))
    return tuple(pairs)


def _indices(value: Any, index: Mapping[str, int], origin: str, key: str) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise LayoutError(f"{origin}: {key}: a list of joints is needed, got {value!r}")
    return tuple(_joint(v, index, origin, key) for v in value)


def derive_flip_pairs(
    names: Sequence[str], *, left: str = "left_", right: str = "right_"
) -> tuple[tuple[int, int], ...]:
    """Pairs of joints whose names differ only by ``left`` / ``right`` at the start or the end
    ("left_wrist" / "right_wrist", "wrist_left" / "wrist_right" with rule ``_left`` / ``_right``)."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        for mate in (
            right + n[len(left) :] if n.startswith(left) else None,
            n[: -len(left)] + right if n.endswith(left) else None,
        ):
            if mate is not None and mate in index and mate != n:
                pairs.append((i, index[mate]))
                break
    return tuple(pairs)


def _flip_pairs(
    value: Any, rule: Any, names: tuple[str, ...], index: Mapping[str, int], origin: str
) -> tuple[tuple[int, int], ...]:
    if value == "auto":
        rule = dict(DEFAULT_FLIP_RULE, **(rule or {}))
        if set(rule) != {"left", "right"} or not all(isinstance(v, str) and v for v in rule.values()):
            raise LayoutError(f"{origin}: flip_rule: needs non-empty 'left' and 'right' strings, got {rule!r}")
        pairs = derive_flip_pairs(names, left=rule["left"], right=rule["right"])
        log.info(
            "%s: flip pairs derived from the names (%s / %s): %s",
            origin,
            rule["left"],
            rule["right"],
            ", ".join(f"{names[a]}<->{names[b]}" for a, b in pairs) or "none",
        )
    else:
        if rule is not None:
            raise LayoutError(f"{origin}: flip_rule: only used with flip_pairs: auto")
        pairs = _pairs(value or (), index, origin, "flip_pairs")
    used: dict[int, int] = {}
    for a, b in pairs:
        if a == b:
            raise LayoutError(f"{origin}: flip_pairs: {names[a]!r} is paired with itself")
        for j in (a, b):
            if j in used:
                raise LayoutError(f"{origin}: flip_pairs: {names[j]!r} appears in more than one pair")
            used[j] = 1
    return pairs


def _per_joint(
    value: Any, names: tuple[str, ...], index: Mapping[str, int], origin: str, key: str, *, default: float | None
) -> tuple[float, ...] | None:
    """K floats from a list of K or a {joint: value} mapping (joints left out take ``default``;
    with ``default=None`` the mapping must cover every joint). None stays None when no default."""
    if value is None:
        return None if default is None else (float(default),) * len(names)
    if isinstance(value, Mapping):
        values: list[float | None] = [default] * len(names)
        for joint, v in value.items():
            values[_joint(joint, index, origin, key)] = _number(v, origin, key, joint)
        missing = [names[i] for i, v in enumerate(values) if v is None]
        if missing:
            raise LayoutError(f"{origin}: {key}: no value for {missing}")
        return tuple(float(v) for v in values)  # type: ignore[arg-type]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise LayoutError(f"{origin}: {key}: a list of {len(names)} numbers or a {{joint: number}} mapping is needed")
    if len(value) != len(names):
        raise LayoutError(f"{origin}: {key}: {len(value)} entries for {len(names)} keypoints")
    return tuple(_number(v, origin, key, names[i]) for i, v in enumerate(value))


def _number(value: Any, origin: str, key: str, joint: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LayoutError(f"{origin}: {key}: {joint!r}: {value!r} is not a number") from None


def _colors(
    value: Any, names: tuple[str, ...], index: Mapping[str, int], origin: str
) -> tuple[tuple[int, int, int], ...] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        entries: dict[int, Any] = {_joint(j, index, origin, "colors"): c for j, c in value.items()}
        return tuple(_rgb(entries.get(i, (255, 255, 255)), origin, names[i]) for i in range(len(names)))
    if not isinstance(value, Sequence) or len(value) != len(names):
        raise LayoutError(
            f"{origin}: colors: a list of {len(names)} [r, g, b] or a {{joint: [r, g, b]}} mapping is needed"
        )
    return tuple(_rgb(c, origin, names[i]) for i, c in enumerate(value))


def _rgb(value: Any, origin: str, joint: str) -> tuple[int, int, int]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 3
        or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)
    ):
        raise LayoutError(f"{origin}: colors: {joint!r}: {value!r} is not [r, g, b] with integers 0-255")
    return (int(value[0]), int(value[1]), int(value[2]))


def _parts(value: Any, index: Mapping[str, int], origin: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise LayoutError(f"{origin}: parts: a {{part: [joints]}} mapping is needed, got {value!r}")
    parts = []
    for part, joints in value.items():
        ids = _indices(joints, index, origin, f"parts.{part}")
        if not ids:
            raise LayoutError(f"{origin}: parts.{part}: no joints")
        parts.append((str(part), ids))
    return tuple(parts)


def layout_to_mapping(info: KeypointInfo) -> dict[str, Any]:
    """A plain mapping that `layout_from_mapping` turns back into ``info`` (stored in checkpoints, so
    that a model trained on a layout file needs no file to predict)."""
    data: dict[str, Any] = {
        "name": info.name,
        "keypoints": list(info.keypoint_names),
        "flip_pairs": [list(p) for p in info.flip_pairs],
        "skeleton": [list(p) for p in info.skeleton],
        "upper_body": list(info.upper_body_ids),
        "lower_body": list(info.lower_body_ids),
        "joint_weights": list(info.joint_weights),
    }
    if info.sigmas is not None:
        data["sigmas"] = list(info.sigmas)
    if info.colors is not None:
        data["colors"] = [list(c) for c in info.colors]
    if info.parts:
        data["parts"] = {name: list(ids) for name, ids in info.parts}
    return data
