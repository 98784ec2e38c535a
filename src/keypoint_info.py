"""The description of one keypoint layout (`KeypointInfo`); the built-in layouts and the lookup by
name are in `src.layouts`, layouts from YAML files in `src.layout_files`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeypointInfo:
    """Metadata of one keypoint layout.

    Attributes:
        name: registry name ("coco17", "mpii16", "h36m17").
        keypoint_names: K names, in channel order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        skeleton: (a, b) index pairs drawn as limbs.
        upper_body_ids / lower_body_ids: the two halves used by half-body augmentation.
        sigmas: K per-keypoint OKS sigmas, or None where the layout has no OKS definition.
        joint_weights: K loss weights (1.0 where the official recipe does not weight).
        colors: K RGB colours for drawing, or None (colours by body side).
        parts: named groups of keypoint indices (COCO-WholeBody's body, foot, face, hands) for
            per-part metrics; empty for single-part layouts.
    """

    name: str
    keypoint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    upper_body_ids: tuple[int, ...]
    lower_body_ids: tuple[int, ...]
    sigmas: tuple[float, ...] | None
    joint_weights: tuple[float, ...]
    colors: tuple[tuple[int, int, int], ...] | None = None
    parts: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        for field, values in (("joint_weights", self.joint_weights), ("sigmas", self.sigmas), ("colors", self.colors)):
            if values is not None and len(values) != k:
                raise ValueError(f"{self.name}: {field} has {len(values)} entries for {k} keypoints")
        for field, pairs in (("flip_pairs", self.flip_pairs), ("skeleton", self.skeleton)):
            for a, b in pairs:
                if not (0 <= a < k and 0 <= b < k):
                    raise ValueError(f"{self.name}: {field} pair ({a}, {b}) out of range for {k} keypoints")
        flipped = [j for pair in self.flip_pairs for j in pair]
        if len(set(flipped)) != len(flipped):
            raise ValueError(f"{self.name}: flip_pairs name a keypoint twice: {self.flip_pairs}")
        for field, ids in (("upper_body_ids", self.upper_body_ids), ("lower_body_ids", self.lower_body_ids)):
            if any(not 0 <= i < k for i in ids):
                raise ValueError(f"{self.name}: {field} {ids} out of range for {k} keypoints")
        for part, ids in self.parts:
            if not ids or any(not 0 <= i < k for i in ids):
                raise ValueError(f"{self.name}: part {part!r} indices {ids} out of range for {k} keypoints")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation p such that flipped[k] = original[p[k]]."""
        perm = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)
