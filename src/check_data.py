"""Check a dataset as the training would read it, before a long run finds its problems.

    python -m src.check_data data=coco data.root=/data/coco [model=higherhrnet]

Loads both splits with the reader and the dataset of the model's paradigm (so every error a
training run would stop with shows up here, with the same message), then checks the annotation
files (COCO-format sources: duplicate ids, joint counts, NaN or out-of-image keypoints, empty
boxes, people without keypoints; the layout against the file: the categories' joint names, joints
that no annotation labels) and every image the records use (missing, empty or corrupt
files, truncated JPEGs, EXIF orientation tags, sizes that differ from the annotation). Prints, per
kind of problem, how many and the first few; writes them all to ``check_data.json`` in the run
folder; exits with status 1 when training would fail or learn from wrong data (`checks.KINDS`).
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from src import runner
from src.layouts import get_keypoint_info
from src.paradigms import get_paradigm
from src.readers.checks import KINDS, Finding, check_coco_annotations, check_image
from src.readers.errors import DatasetNotFoundError
from src.utils.run_io import write_json_atomic

log = logging.getLogger(__name__)
SHOWN = 5
#: Exit status when the data is not there at all (1: it is there, with fatal problems).
NO_DATA = 2


def scan(cfg: DictConfig) -> list[Finding]:
    """Every finding of the data config's reader, read for the model config's paradigm."""
    reader = instantiate(cfg.data.reader)
    splits = tuple(getattr(reader, "splits", ("train", "val")))  # MuCo-3DHP: a training set only
    reader.prepare(splits=splits)
    info = get_keypoint_info(cfg.data.layout)
    task_class = get_class(cfg.model._target_)
    dataset_class = get_class(get_paradigm(task_class.paradigm).dataset)
    codec = instantiate(cfg.model.codec)
    findings: list[Finding] = []
    sizes: dict[str, tuple[int, int] | None] = {}
    for split, training in (("train", True), ("val", False)):
        if split not in splits:
            continue
        try:
            records = dataset_class.read_records(reader, training=training, codec=codec, keypoint_info=info)
        except (ValueError, OSError, KeyError, TypeError) as err:
            findings.append(Finding("annotation error", f"{split} split", str(err)))
            records = []
        for record in records:
            sizes.setdefault(str(record["image_file"]), None)
        if hasattr(reader, "ann_files") and hasattr(reader, "image_dirs"):
            found, images = check_coco_annotations(
                reader.ann_files[split],
                reader.image_dirs[split],
                info.num_keypoints,
                keypoint_names=info.keypoint_names,
                keypoint_fields=getattr(reader, "keypoint_fields", None),
            )
            findings.extend(found)
            for path, size in images.values():  # every listed image: whole-image models read them all
                sizes[str(path)] = size
    for path, size in sorted(sizes.items()):
        findings.extend(check_image(path, size))
    return findings


def report(findings: list[Finding]) -> tuple[str, bool]:
    """The printed summary and whether anything fatal was found."""
    by_kind: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_kind[finding.kind].append(finding)
    if not by_kind:
        return "no problems found", False
    lines = []
    for kind, (fatal, meaning) in KINDS.items():
        if kind not in by_kind:
            continue
        items = by_kind[kind]
        lines.append(f"{'ERROR' if fatal else 'warning'}: {kind}: {len(items)} ({meaning})")
        for item in items[:SHOWN]:
            lines.append(f"    {item.where}" + (f": {item.detail}" if item.detail else ""))
        if len(items) > SHOWN:
            lines.append(f"    ... and {len(items) - SHOWN} more (check_data.json lists them all)")
    return "\n".join(lines), any(f.fatal for f in findings)


@runner.task
def check(cfg: DictConfig) -> int:
    """Run the checks of ``cfg``; returns the exit status (0 fine, 1 fatal problems, 2 no data)."""
    output_dir = Path(cfg.paths.output_dir)
    try:
        findings = scan(cfg)
    except DatasetNotFoundError as err:
        runner.report_error(err)
        return NO_DATA
    text, fatal = report(findings)
    write_json_atomic(
        output_dir / "check_data.json",
        [{"kind": f.kind, "fatal": f.fatal, "where": f.where, "detail": f.detail} for f in findings],
    )
    print(text)
    print(f"data={cfg.data.name}: " + ("training would fail or learn from wrong data" if fatal else "ready to train"))
    return 1 if fatal else 0


@runner.main("check_data", status=lambda err: NO_DATA if isinstance(err, DatasetNotFoundError) else 1)
def main(cfg: DictConfig) -> Any:
    sys.exit(check(cfg))


if __name__ == "__main__":
    main()
