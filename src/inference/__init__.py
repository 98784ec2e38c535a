"""Running trained models on images, folders, videos and webcams, from Python or `src.predict`.

from src.inference import Predictor
predictor = Predictor.load("last.ckpt")                     # once
people = predictor(image)                                   # (H, W, 3) uint8 RGB -> People
people.keypoints, people.scores, people.boxes               # numpy arrays
steady = SteadyVideo.create(predictor.keypoint_info, fps=25.0)  # videos: ids + smoothing
people = steady(predictor(frame), frame=index)              # in frame order; people.track_ids
"""

from src.inference.predictor import People, Predictor
from src.inference.steady import SteadyVideo

__all__ = ["People", "Predictor", "SteadyVideo"]
