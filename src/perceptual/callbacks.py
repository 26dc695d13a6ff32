"""Lightning callbacks and plugins the library adds to what Lightning ships."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torchvision.utils import make_grid

from perceptual.imaging.io import save_image
from perceptual.tasks.base import TransformTask


class ValidationImages(pl.Callback):
    """Log the task's validation images as TensorBoard grids and save them as PNGs.

    Each entry of the task's :meth:`~perceptual.tasks.base.TransformTask.validation_images` (e.g. content,
    stylised) becomes one row.
    """

    def __init__(self, dirpath: str, max_images: int = 4) -> None:
        self.dirpath = Path(dirpath)
        self.max_images = max_images

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: TransformTask) -> None:
        images = pl_module.validation_images()
        if trainer.sanity_checking or not images or not trainer.is_global_zero:
            return
        rows = [batch[: self.max_images].cpu() for batch in images.values()]
        size = max(r.shape[-2] for r in rows), max(r.shape[-1] for r in rows)
        rows = [torch.nn.functional.interpolate(r, size=size, mode="nearest") for r in rows]
        grid = make_grid(torch.cat(rows), nrow=rows[0].shape[0], padding=2)
        step = trainer.global_step
        save_image(grid, self.dirpath / f"step_{step:07d}.png")
        for name, batch in zip(images, rows):
            save_image(batch[0], self.dirpath / f"{name}_latest.png")
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_image"):
                logger.experiment.add_image("val/" + "|".join(images), grid, step)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file and rename: a crash never leaves a truncated ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
