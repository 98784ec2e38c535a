"""Run a trained model on a folder of images.

    python -m src.predict ckpt_path=PATH input=FOLDER_OR_IMAGE [boxes=person_boxes.json]

Writes to the run folder: ``results.json`` (COCO keypoint results, one entry per person, with
the image's ``file_name``), ``images.json`` (the image ids used) and ``pictures/`` (skeletons
drawn on the images). Bottom-up models find the people themselves; top-down and 3D models need
person boxes: a JSON list of ``{"file_name": ..., "bbox": [x, y, w, h], "score": ...}``.

3D models add to each person ``joints_3d``: K x [X, Y, Z] root-relative camera-frame joints in
mm, and their pictures show the 2D projection beside a 3D view of the skeletons. Images carry no
camera calibration and no root depth, so the back-projection uses one defined choice: the focal
length ``focal`` (pixels; default the image width) and the principal point at the image centre,
and the root depth at which the model's 3D box (``bbox_3d_depth`` mm, 2000) would fill the crop
box, ``Z = f sqrt(2000^2 / (w h))`` (RootNet's k-value without its learned correction). Root-
relative x, y then scale with ``Z / f``, which does not depend on ``f``: the choice of ``focal``
only changes the perspective terms. ``results.json`` records ``root_depth`` and ``focal`` used.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import cv2
import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from src.data.image_io import read_image
from src.data.topdown_dataset import TopDownDataset
from src.geometry import box_xywh_to_center_scale
from src.metrics.coco_eval import build_coco_results, select_instances
from src.metrics.rescoring import rescore_instances
from src.tasks.loading import load_task
from src.utils.drawing import draw_keypoint_info
from src.utils.run_io import write_json_atomic
from src.utils.skeleton3d import draw_skeleton_3d

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(path: str | Path) -> list[Path]:
    """One image file, or the images of a folder (sorted by name)."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input not found: {path} (give an image file or a folder of images)")
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
    return images


def predict_bottomup(model, images: list[Path], *, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image: people (P, K, 3) in image pixels and their scores (P,)."""
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = [read_image(p, color_rgb=True) for p in images[start : start + batch_size]]
        outputs.extend((people[:, :, :3], scores) for people, scores in model.predict_people(chunk))
    return outputs


def load_boxes(boxes_file: str | Path, images: list[Path]) -> dict[str, list[tuple[list[float], float]]]:
    """Person boxes per file name from a JSON list of {file_name, bbox [x, y, w, h], score}."""
    path = Path(boxes_file)
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read person boxes from {path}: {err}") from err
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of person boxes")
    names = {p.name for p in images}
    boxes: dict[str, list[tuple[list[float], float]]] = defaultdict(list)
    for i, entry in enumerate(entries):
        try:
            name, bbox, score = entry["file_name"], [float(v) for v in entry["bbox"]], float(entry.get("score", 1.0))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: entry {i} needs file_name, bbox [x, y, w, h] and optionally score") from err
        if len(bbox) != 4:
            raise ValueError(f"{path}: entry {i} has a bbox of {len(bbox)} numbers, expected 4")
        if name in names:
            boxes[name].append((bbox, score))
    return boxes


def predict_topdown(
    model, images: list[Path], boxes_file: str, *, batch_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Crops from the person boxes -> rescored, OKS-NMS-filtered people per image."""
    boxes = load_boxes(boxes_file, images)
    input_w, input_h = model.codec.input_size
    k = model.keypoint_info.num_keypoints
    records = []
    for image_id, path in enumerate(images):
        for bbox, score in boxes.get(path.name, []):
            center, scale = box_xywh_to_center_scale(np.asarray(bbox, np.float32), aspect_ratio=input_w / input_h)
            records.append(
                {
                    "sample_id": len(records),
                    "image_id": image_id,
                    "image_file": str(path),
                    "center": center,
                    "scale": scale,
                    "area": float(np.prod(scale) * 200.0**2),
                    "box_score": score,
                    "keypoints": np.zeros((k, 2), np.float32),
                    "visible": np.zeros(k, np.float32),
                }
            )
    per_image: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, k, 3), np.float32), np.zeros(0, np.float32))] * len(
        images
    )
    if not records:
        log.warning("no person boxes matched the input images")
        return per_image
    dataset = TopDownDataset(records, codec=model.codec, keypoint_info=model.keypoint_info, training=False)
    keypoints, image_ids = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        out = model.predict_step(batch, 0)
        keypoints.append(out["keypoints"].numpy())
        image_ids.append(out["image_id"].numpy())
    kpts = np.concatenate(keypoints)
    ids = np.concatenate(image_ids)
    ev = model.hparams.evaluation
    box_scores = np.array([r["box_score"] for r in records], np.float32)
    scores = rescore_instances(kpts[:, :, 2], box_scores, in_vis_thr=ev["in_vis_thr"]) if ev["rescore"] else box_scores
    areas = np.array([r["area"] for r in records], np.float32)
    keep = select_instances(
        ids, kpts, areas, scores, sigmas=model.keypoint_info.sigmas, oks_thr=ev["oks_thr"], use_nms=ev["use_nms"]
    )
    for image_id in range(len(images)):
        chosen = [i for i in keep if ids[i] == image_id]
        per_image[image_id] = (kpts[chosen], scores[chosen])
    return per_image


def box_records_3d(
    images: list[Path],
    boxes: dict[str, list[tuple[list[float], float]]],
    *,
    k: int,
    aspect_ratio: float,
    bbox_3d_depth: float,
    focal: float | None,
) -> list[dict]:
    """Records of `Pose3DDataset` for person boxes on uncalibrated images (see the module docstring)."""
    from src.data.h36m import process_bbox

    records = []
    for image_id, path in enumerate(images):
        entries = boxes.get(path.name, [])
        if not entries:
            continue
        try:  # the size as the dataset will read the image (EXIF orientation ignored)
            height, width = read_image(path, color_rgb=False).shape[:2]
        except (OSError, ValueError) as err:
            log.warning("%s: %s; skipped", path, err)
            continue
        f = float(focal) if focal else float(width)
        crops, keep = process_bbox(np.array([b for b, _ in entries]), width, height, aspect_ratio)
        for (bbox, score), crop, kept in zip(entries, crops, keep):
            if not kept:
                log.warning("%s: box %s is empty inside the image; skipped", path.name, bbox)
                continue
            records.append(
                {
                    "sample_id": len(records),
                    "image_id": image_id,
                    "image_file": str(path),
                    "bbox": crop.astype(np.float32),
                    "joints_img": np.zeros((k, 3), np.float32),
                    "joints_cam": np.zeros((k, 3), np.float32),
                    "visible": np.zeros(k, np.float32),
                    "root_depth": f * bbox_3d_depth / float(np.sqrt(crop[2] * crop[3])),
                    "f": np.array([f, f], np.float32),
                    "c": np.array([(width - 1) / 2, (height - 1) / 2], np.float32),
                    "have_depth": 0.0,
                    "score": score,
                    "input_box": bbox,
                }
            )
    return records


def predict_pose3d(model, images: list[Path], boxes_file: str, *, batch_size: int, focal: float | None) -> list[dict]:
    """Per person box: image keypoints (K, 3), root-relative camera joints (K, 3) in mm and the
    back-projection choices, as dicts with the image id."""
    from src.data.pose3d_dataset import Pose3DDataset

    input_w, input_h = model.codec.input_size
    records = box_records_3d(
        images,
        load_boxes(boxes_file, images),
        k=model.keypoint_info.num_keypoints,
        aspect_ratio=input_w / input_h,
        bbox_3d_depth=float(model.codec.bbox_3d_depth),
        focal=focal,
    )
    if not records:
        log.warning("no person boxes matched the input images")
        return []
    dataset = Pose3DDataset(records, codec=model.codec, keypoint_info=model.keypoint_info, training=False)
    people = []
    for batch in DataLoader(dataset, batch_size=batch_size):
        out = model.predict_step(batch, 0)
        for i, sid in enumerate(out["sample_id"].tolist()):
            r = records[sid]
            people.append(
                {
                    "image_id": r["image_id"],
                    "bbox": [float(v) for v in r["input_box"]],
                    "score": float(r["score"]),
                    "keypoints": out["keypoints"][i].numpy(),
                    "joints_3d": out["joints_cam"][i].numpy(),
                    "root_depth": float(r["root_depth"]),
                    "focal": float(r["f"][0]),
                }
            )
    return people


def write_pose3d(model, images: list[Path], people: list[dict], output_dir: Path, *, max_pictures: int) -> int:
    """results.json and the pictures of a 3D model's predictions; returns the number of people."""
    results = [
        {
            "image_id": p["image_id"],
            "file_name": images[p["image_id"]].name,
            "category_id": 1,
            "bbox": p["bbox"],
            "score": p["score"],
            "keypoints": [round(float(v), 2) for v in p["keypoints"].reshape(-1)],
            "joints_3d": np.round(p["joints_3d"].astype(np.float64), 1).tolist(),
            "root_depth": round(p["root_depth"], 1),
            "focal": round(p["focal"], 2),
        }
        for p in people
    ]
    write_json_atomic(output_dir / "results.json", results)
    pictures = output_dir / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    for image_id, path in list(enumerate(images))[:max_pictures]:
        mine = [p for p in people if p["image_id"] == image_id]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if mine:
            image = draw_keypoint_info(image, np.stack([p["keypoints"] for p in mine]), model.keypoint_info)
        side = draw_skeleton_3d(
            np.stack([p["joints_3d"] for p in mine]) if mine else np.zeros((0, model.keypoint_info.num_keypoints, 3)),
            model.keypoint_info,
            size=image.shape[0],
        )
        cv2.imwrite(str(pictures / f"{path.stem}.jpg"), np.concatenate([image, side], axis=1))
    return len(results)


def predict(cfg: DictConfig) -> Path:
    if not cfg.get("ckpt_path"):
        raise ValueError("python -m src.predict needs ckpt_path=PATH and input=FOLDER_OR_IMAGE")
    if not cfg.get("input"):
        raise ValueError("python -m src.predict needs input=FOLDER_OR_IMAGE")
    output_dir = Path(cfg.paths.output_dir)
    model = load_task(cfg.ckpt_path).eval()
    images = list_images(cfg.input)
    if model.output_3d:
        if not cfg.get("boxes"):
            raise ValueError(
                f"{model.hparams.name} is a 3D model of person crops: it needs person boxes, "
                "boxes=FILE with a JSON list of {file_name, bbox: [x, y, w, h], score}"
            )
        with torch.no_grad():
            people = predict_pose3d(model, images, cfg.boxes, batch_size=int(cfg.batch_size), focal=cfg.get("focal"))
        count = write_pose3d(model, images, people, output_dir, max_pictures=int(cfg.max_pictures))
        write_json_atomic(output_dir / "images.json", [{"id": i, "file_name": p.name} for i, p in enumerate(images)])
        pictures = output_dir / "pictures"
        print(f"{count} people in {len(images)} images -> {output_dir / 'results.json'}, pictures in {pictures}")
        return output_dir
    with torch.no_grad():
        if not model.needs_boxes:
            per_image = predict_bottomup(model, images, batch_size=int(cfg.batch_size))
        elif cfg.get("boxes"):
            per_image = predict_topdown(model, images, cfg.boxes, batch_size=int(cfg.batch_size))
        else:
            raise ValueError(
                f"{model.hparams.name} is a top-down model: it needs person boxes, "
                "boxes=FILE with a JSON list of {file_name, bbox: [x, y, w, h], score}"
            )
    results = []
    for image_id, (path, (people, scores)) in enumerate(zip(images, per_image)):
        for entry in build_coco_results(np.full(len(people), image_id), people, scores):
            results.append({**entry, "file_name": path.name})
    write_json_atomic(output_dir / "results.json", results)
    write_json_atomic(output_dir / "images.json", [{"id": i, "file_name": p.name} for i, p in enumerate(images)])
    pictures = output_dir / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    for path, (people, _) in list(zip(images, per_image))[: int(cfg.max_pictures)]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        drawn = (
            draw_keypoint_info(image, people, model.keypoint_info, score_thr=float(cfg.score_thr))
            if len(people)
            else image
        )
        cv2.imwrite(str(pictures / f"{path.stem}.jpg"), drawn)
    log.info("%d people in %d images; results in %s", len(results), len(images), output_dir)
    print(f"{len(results)} people in {len(images)} images -> {output_dir / 'results.json'}, pictures in {pictures}")
    return output_dir


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
