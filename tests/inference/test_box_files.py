"""Person boxes files are read by image or frame key, whatever the order of their entries."""

from __future__ import annotations

import json
import logging

import numpy as np

from src.inference.box_files import PersonBoxes


def test_frames_out_of_order_and_repeated_are_read_by_frame_number(tmp_path, caplog):
    entries = [
        {"frame": 2, "bbox": [20, 20, 10, 10], "score": 0.9},
        {"frame": 0, "bbox": [0, 0, 10, 10], "score": 0.8},
        {"frame": 1, "bbox": [10, 10, 10, 10], "score": 0.7},
        {"frame": 0, "bbox": [5, 5, 10, 10], "score": 0.6},  # frame 0 again, another person
        {"frame": 2, "bbox": [20, 20, 10, 10], "score": 0.9},  # an exact repeat (a concatenated file)
    ]
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(entries))
    with caplog.at_level(logging.WARNING):
        boxes = PersonBoxes(path)
    np.testing.assert_allclose(boxes.for_frame("", 0, video=True)[:, 0], [0, 5])
    np.testing.assert_allclose(boxes.for_frame("", 1, video=True)[:, 4], [0.7])
    assert len(boxes.for_frame("", 2, video=True)) == 1
    assert len(boxes.for_frame("", 3, video=True)) == 0
    assert "1 entries repeat another exactly" in caplog.text and str(path) in caplog.text
