"""benchmarks.absolute_video end to end on tiny random checkpoints and a few frames: the results file's
bookkeeping (no figure of an untrained model is asserted) and its rendering into the docs."""

from __future__ import annotations

import json

from benchmarks import absolute_video
from tests.helpers import docs_results_hook, random_checkpoint

results = docs_results_hook()


def test_the_benchmark_writes_a_file_the_docs_render(tmp_path):
    pose = random_checkpoint("pose3d", tmp_path / "pose.ckpt", tmp_path)
    root = random_checkpoint("root3d", tmp_path / "root.ckpt", tmp_path)
    out = tmp_path / "benchmarks" / "results" / "absolute_video"
    record = absolute_video.main(
        ["--pose-ckpt", str(pose), "--root-ckpt", str(root), "--frames", "4", "--image-size", "160", "128",
         "--out", str(out)]
    )  # fmt: skip
    files = list(out.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == record
    assert record["frames"] == 4 and len(record["per_frame"]) == 4 and record["people"] == 3
    assert 0 <= record["frames_in_order"] <= record["frames_with_every_person"] <= 4
    assert all(len(f["true"]) == 3 and len(f["predicted"]) == 3 for f in record["per_frame"])
    lo, hi = zip(*record["true_depth_range_mm"])
    assert list(lo) == sorted(lo) and all(a <= b for a, b in zip(lo, hi))
    text = results.render_absolute_video(out)
    assert f"**{record['frames_in_order']} of 4 frames**" in text and record["date"] in text
