"""Write a COCO-format dataset that keeps some of another one's keypoints, renamed: the way to make
a dataset of your own layout from an existing one (and the 5-joint dataset of the custom-keypoints
tutorial, from the synthetic data).

    python -m src.keypoint_subset --out data/five_joints \\
        --keep nose=head left_wrist=left_hand right_wrist=right_hand left_ankle=left_foot right_ankle=right_foot

The source is a COCO-layout root (``annotations/person_keypoints_{train2017,val2017}.json``,
``images/{train2017,val2017}/``; without ``--source`` the synthetic dataset, generated into
``data/synthetic`` if needed). The output has the custom layout of ``data=custom``:
``annotations/{train,val}.json`` (categories with the new names and the source skeleton's limbs
between kept joints, ``num_keypoints`` recounted, people left with no labelled joint kept with 0)
and ``images/{train,val}/`` (links to the source images, or copies where links are not possible).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

SOURCE_SPLITS = {"train": "train2017", "val": "val2017"}


def parse_keep(entries: Sequence[str]) -> list[tuple[str, str]]:
    """``["nose=head", "left_wrist"]`` -> [("nose", "head"), ("left_wrist", "left_wrist")]."""
    pairs = []
    for entry in entries:
        source, _, target = entry.partition("=")
        if not source or (_ and not target):
            raise ValueError(f"--keep: {entry!r} is not SOURCE_JOINT or SOURCE_JOINT=NEW_NAME")
        pairs.append((source, target or source))
    targets = [t for _, t in pairs]
    if len(set(targets)) != len(targets):
        raise ValueError(f"--keep: the new names repeat: {targets}")
    return pairs


def subset_annotations(data: dict, keep: Sequence[tuple[str, str]], *, path: Path) -> dict:
    """A copy of a COCO keypoint file's content with only the ``keep`` joints (source name, new name)."""
    categories = [c for c in data.get("categories") or [] if "keypoints" in c]
    if not categories:
        raise ValueError(f"{path}: no category with 'keypoints'")
    names = list(categories[0]["keypoints"])
    missing = [s for s, _ in keep if s not in names]
    if missing:
        raise ValueError(f"{path}: joints {missing} are not among the category's keypoints {names}")
    index = [names.index(s) for s, _ in keep]
    new_of_old = {old: new for new, old in enumerate(index)}
    out = {key: value for key, value in data.items() if key not in ("annotations", "categories")}
    out["categories"] = []
    for cat in categories:
        skeleton = [
            [new_of_old[a - 1] + 1, new_of_old[b - 1] + 1]
            for a, b in cat.get("skeleton") or []
            if a - 1 in new_of_old and b - 1 in new_of_old
        ]
        out["categories"].append({**cat, "keypoints": [t for _, t in keep], "skeleton": skeleton})
    out["annotations"] = []
    for ann in data.get("annotations") or []:
        if "keypoints" not in ann:
            continue
        kpts = ann["keypoints"]
        kept = [v for i in index for v in kpts[3 * i : 3 * i + 3]]
        out["annotations"].append({**ann, "keypoints": kept, "num_keypoints": sum(1 for v in kept[2::3] if v > 0)})
    return out


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_subset(source: Path, out: Path, keep: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Write the subset dataset under ``out``; returns the annotation count per split."""
    counts = {}
    for split, source_split in SOURCE_SPLITS.items():
        ann_file = source / "annotations" / f"person_keypoints_{source_split}.json"
        if not ann_file.is_file():
            raise FileNotFoundError(f"{ann_file}: no such annotation file (the source must have COCO's layout)")
        data = subset_annotations(json.loads(ann_file.read_text()), keep, path=ann_file)
        for image in data.get("images") or []:
            link_or_copy(
                source / "images" / source_split / image["file_name"], out / "images" / split / image["file_name"]
            )
        target = out / "annotations" / f"{split}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        tmp.replace(target)
        counts[split] = len(data["annotations"])
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", type=Path, help="a COCO-layout root (default: the synthetic dataset in data/synthetic)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the new dataset's root")
    parser.add_argument(
        "--keep", nargs="+", required=True, help="joints to keep, SOURCE_JOINT or SOURCE_JOINT=NEW_NAME"
    )
    args = parser.parse_args(argv)
    try:
        keep = parse_keep(args.keep)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    source = args.source
    if source is None:
        from src.synthetic.generate import ensure_synthetic_coco

        source = ensure_synthetic_coco(Path("data/synthetic"))
    counts = write_subset(Path(source), args.out, keep)
    print(
        f"{args.out}: {', '.join(f'{s} {n} annotations' for s, n in counts.items())}, keypoints {[t for _, t in keep]}"
    )


if __name__ == "__main__":
    main()
