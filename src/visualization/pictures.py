"""Pictures of predictions on a fixed set of validation images, logged every few epochs.

``PredictionPictures`` asks the LightningModule for one picture per validation sample
(``module.prediction_pictures``: the input with the predicted skeletons, next to the predicted
heatmaps), tiles them, writes ``<dirpath>/epoch_XXX.jpg`` and sends the picture to the loggers
that take images (TensorBoard, Weights & Biases). The samples are the same at every epoch, so
the pictures show how the model learns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from src.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from src.visualization.skeletons import make_image_grid, save_image_grid

log = logging.getLogger(__name__)


def denormalize(image: torch.Tensor) -> np.ndarray:
    """Normalised (3, H, W) tensor -> (H, W, 3) uint8 in the same channel order; a uint8 tensor
    (``data.normalize_on_device``) holds the pixels already."""
    if image.dtype == torch.uint8:
        return np.ascontiguousarray(image.detach().cpu().permute(1, 2, 0).numpy())
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (image.detach().float().cpu() * std + mean).clamp(0, 1) * 255.0
    return np.ascontiguousarray(pixels.round().byte().permute(1, 2, 0).numpy())


class PredictionPictures(Callback):
    """Log predicted skeletons and heatmaps of ``num_images`` fixed validation samples.

    Args:
        dirpath: folder of the picture files (the run folder's ``pictures/``).
        every_n_epochs: after the validation of every n-th epoch (and of the last one).
        num_images: samples spread evenly over the validation set.
        ncols: pictures per row of the tiled image.
    """

    def __init__(self, dirpath: str, every_n_epochs: int = 5, num_images: int = 8, ncols: int = 4) -> None:
        if every_n_epochs < 1 or num_images < 1:
            raise ValueError(f"every_n_epochs and num_images must be >= 1, got {every_n_epochs}, {num_images}")
        self.dirpath = Path(dirpath)
        self.every_n_epochs = int(every_n_epochs)
        self.num_images = int(num_images)
        self.ncols = int(ncols)
        self.written: list[Path] = []

    def _due(self, trainer: Trainer) -> bool:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return False
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        return epoch % self.every_n_epochs == 0 or last

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._due(trainer) or not hasattr(pl_module, "prediction_pictures"):
            return
        datamodule = trainer.datamodule
        dataset = datamodule.val_dataset
        n = min(self.num_images, len(dataset))
        if n == 0:
            return
        indices = np.unique(np.linspace(0, len(dataset) - 1, n).round().astype(int))
        with torch.inference_mode():
            tiles = pl_module.prediction_pictures(
                [dataset[int(i)] for i in indices], color_rgb=bool(getattr(datamodule, "color_rgb", True))
            )
        path = save_image_grid(tiles, self.dirpath / f"epoch_{trainer.current_epoch:03d}.jpg", ncols=self.ncols)
        self.written.append(path)
        rgb = cv2.cvtColor(make_image_grid(tiles, self.ncols), cv2.COLOR_BGR2RGB)
        for logger in trainer.loggers:
            send_picture(logger, "val/predictions", rgb, trainer.global_step)


def send_picture(logger: object, key: str, rgb: np.ndarray, step: int) -> None:
    """Hand an (H, W, 3) RGB picture to a logger that takes images; others are skipped."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    if isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, rgb, global_step=step, dataformats="HWC")
    elif isinstance(logger, WandbLogger):
        logger.log_image(key=key, images=[rgb], step=step)
