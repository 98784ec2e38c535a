"""Running trained models on images, folders, videos and webcams, from Python or `src.predict`.

from src.inference import Predictor
predictor = Predictor.load("last.ckpt")                     # once
people = predictor(image)                                   # (H, W, 3) uint8 RGB -> People
people.keypoints, people.scores, people.boxes               # numpy arrays
"""

from src.inference.predictor import People, Predictor

__all__ = ["People", "Predictor"]
