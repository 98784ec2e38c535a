"""Run a trained model on an image, a folder, a video or a webcam.

    python -m src.predict ckpt_path=PATH input=IMAGE_FOLDER_VIDEO_OR_WEBCAM_INDEX
    python -m src.predict model_name=rtmpose_m_coco_256x192 detector_ckpt=BOTTOMUP.ckpt input=clip.mp4
    python -m src.predict ckpt_path=TOPDOWN.ckpt detector_ckpt=BOTTOMUP.ckpt input=clip.mp4
    python -m src.predict ckpt_path=TOPDOWN.ckpt boxes=detections.json input=images/
    python -m src.predict backend=onnx model_file=model.onnx input=images/ glob='**/*.png'
    python -m src.predict ckpt_path=POSENET.ckpt root_ckpt=ROOTNET.ckpt detector_ckpt=BOTTOMUP.ckpt input=clip.mp4

Writes to the run folder ``results.json`` (COCO keypoint results with the image's ``file_name``,
or ``frame`` for videos; 3D models add root-relative ``joints_3d``, ``root_depth`` and camera-frame
``joints_cam`` in mm, with the root depths of a RootNet ``root_ckpt`` or else the k-value), ``pictures/`` (images)
or ``annotated.mp4`` (videos and webcams, same frame rate and size), and ``summary.json`` (what
was read, people found, what was skipped and why). On videos and webcams every person gets a
``track_id`` that persists across frames and keypoints smoothed over time (``track=``, ``smooth=``,
`src.inference.steady`), drawn in a colour per track. Bottom-up models find people themselves;
top-down and 3D models take person boxes from ``boxes=`` (COCO detection results, see
`src.inference.box_files`) or from a bottom-up model, ``detector_ckpt=``. The Python API behind
it is `src.inference.Predictor`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from src import runner
from src.hub.checkpoints import published_checkpoint
from src.inference.box_files import PersonBoxes
from src.inference.outputs import PredictionWriter
from src.inference.predictor import Predictor, resolve_device
from src.inference.sources import Frame, ImageFiles, Skipped, VideoFrames, open_input
from src.inference.steady import SteadyVideo, resolve_switches, smoothing_fps

log = logging.getLogger(__name__)


def use_fast_path(cfg: DictConfig, predictor: Predictor, device: str) -> None:
    """The memory format of the predictor's networks (a checkpoint holds the one of the run that
    wrote it): this run's fast path, or NCHW with fast_path=false. Exported files run as exported."""
    enabled = bool(cfg.get("fast_path", True))
    run = runner.current_run()
    if str(cfg.get("backend", "torch")) != "torch":
        run.record(precision="32-true", channels_last=False, memory_format={"how": "exported file"})
        return
    common = dict(enabled=enabled, batch_size=int(cfg.batch_size), accelerator="cpu" if device == "cpu" else "auto")
    run.record(precision="32-true", **runner.resolve_task(predictor.task, **common))
    if predictor.detector is not None:
        run.record(detector=runner.resolve_task(predictor.detector.task, **common))
    if predictor.root is not None:
        run.record(root=runner.resolve_task(predictor.root, **common))


def steady_video(
    cfg: DictConfig, predictor: Predictor, source: ImageFiles | VideoFrames
) -> tuple[SteadyVideo | None, dict]:
    """Tracking and smoothing for this run (``track``, ``smooth``, ``fps``, ``tracking``, ``smoothing``
    of conf/predict.yaml), and what summary.json records of them."""
    track, smooth = resolve_switches(cfg.get("track"), cfg.get("smooth"), video=source.kind != "images")
    if not track:
        return None, {"tracking": False, "smoothing": False}
    fps, fps_from = smoothing_fps(cfg.get("fps"), source_fps=source.fps, reported=source.fps_reported)
    if smooth and fps_from == "default":
        what = "these images have no frame rate" if source.kind == "images" else f"{cfg.input} reports no frame rate"
        log.warning("%s: smoothing assumes %g frames per second (set fps= to give the real one)", what, fps)
    tracking = dict(cfg.get("tracking") or {})
    smoothing = dict(cfg.get("smoothing") or {})
    steady = SteadyVideo.create(predictor.keypoint_info, fps=fps, smooth=smooth, tracking=tracking, smoothing=smoothing)
    record = {
        "tracking": tracking,
        "smoothing": {**smoothing, "fps": fps, "fps_from": fps_from} if smooth else False,
    }
    return steady, record


@runner.task
def predict(cfg: DictConfig) -> Path:
    """Run ``cfg`` (conf/predict.yaml); returns the output folder."""
    backend = str(cfg.get("backend", "torch"))
    if cfg.get("model_name") and cfg.get("ckpt_path"):
        raise ValueError(f"give ckpt_path={cfg.ckpt_path} or model_name={cfg.model_name}, not both")
    ckpt_path = published_checkpoint(str(cfg.model_name)) if cfg.get("model_name") else cfg.get("ckpt_path")
    if backend == "torch" and not ckpt_path:
        raise ValueError(
            "python -m src.predict needs ckpt_path=PATH, model_name=NAME (python -m src.zoo lists them) or "
            "backend=onnx model_file=PATH, and input=..."
        )
    if cfg.get("input") is None or str(cfg.input) == "":
        raise ValueError("python -m src.predict needs input=IMAGE, FOLDER, VIDEO or a webcam index")
    device = resolve_device(str(cfg.get("device", "auto")))
    predictor = Predictor.load(
        ckpt_path,
        backend=backend,
        model_file=cfg.get("model_file"),
        detector_ckpt=cfg.get("detector_ckpt"),
        root_ckpt=cfg.get("root_ckpt"),
        device=device,
        batch_size=int(cfg.batch_size),
        focal=cfg.get("focal"),
        **({"detector_padding": float(cfg.detector_padding)} if cfg.get("detector_padding") is not None else {}),
    )
    use_fast_path(cfg, predictor, device)
    person_boxes = PersonBoxes(cfg.boxes) if cfg.get("boxes") else None
    if predictor.needs_boxes and person_boxes is None:
        raise ValueError(
            f"{predictor.name} is a model of person crops: give person boxes, boxes=FILE (COCO detection results with "
            "file_name or frame) or a bottom-up model as detector_ckpt=PATH"
        )
    source = open_input(cfg.input, glob=str(cfg.glob), max_frames=cfg.get("max_frames"))
    video = source.kind != "images"
    steady, steady_record = steady_video(cfg, predictor, source)
    output_dir = Path(cfg.paths.output_dir)
    writer = PredictionWriter(
        output_dir,
        kind=source.kind,
        fps=float(cfg.fps) if cfg.get("fps") is not None else source.fps,
        keypoint_info=predictor.keypoint_info,
        max_pictures=int(cfg.max_pictures),
        score_thr=float(cfg.score_thr),
    )
    unit = "frame" if video else "image"
    progress = tqdm(total=len(source) or None, unit=unit, disable=not cfg.get("progress", True), dynamic_ncols=True)
    pending: list[Frame] = []

    def flush() -> None:
        if not pending:
            return
        boxes = None
        if person_boxes is not None:
            boxes = [person_boxes.for_frame(f.name, f.index, video=video) for f in pending]
        for frame, people in zip(pending, predictor([f.image for f in pending], boxes, color="bgr")):
            writer.add(frame, people if steady is None else steady(people, frame.index))
        progress.update(len(pending))
        progress.set_postfix(people=len(writer.results))
        pending.clear()

    start = time.perf_counter()
    try:
        for item in source:
            if isinstance(item, Skipped):
                log.warning("skipped %s: %s", item.name, item.reason)
                writer.skip(item)
                progress.update(1)
                continue
            pending.append(item)
            if len(pending) >= int(cfg.batch_size):
                flush()
        flush()
    except KeyboardInterrupt:
        log.warning("interrupted: writing the results of the %d %ss done so far", writer.read, unit)
    finally:
        progress.close()
        if steady is not None:
            steady_record["tracking"] = {**steady_record["tracking"], "tracks": steady.tracker.next_id}
        summary = writer.close(input_spec=str(cfg.input), seconds=time.perf_counter() - start, extra=steady_record)
    skipped = summary["skipped"]
    print(
        f"{summary.get('frames', summary.get('images'))} {unit}s read, {summary['people']} people found, "
        f"{len(skipped)} skipped -> {output_dir}"
    )
    for entry in skipped[:10]:
        print(f"  skipped {entry['name']}: {entry['reason']}")
    if len(skipped) > 10:
        print(f"  ... and {len(skipped) - 10} more (summary.json lists them all)")
    return output_dir


@runner.main("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
