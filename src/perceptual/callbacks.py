"""Lightning callbacks and plugins the library adds to what Lightning ships."""

from __future__ import annotations

import atexit
import glob
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torchvision.utils import make_grid

from perceptual.errors import TrainingDivergedError
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


class RandomState(pl.Callback):
    """Keeps the global random streams (torch CPU and CUDA, NumPy, Python) in checkpoints, for a resumed run to draw
    the numbers the uninterrupted one would have drawn (e.g. the contextual loss's sampled positions).

    Validation also runs on a stream of its own: training continues after it as if it had not run, so a resumed
    run, which skips the validation its checkpoint was taken before, matches too. Data sampling has its own seeds
    (:mod:`perceptual.data.resumable`); this covers what the training step itself draws.
    """

    def __init__(self) -> None:
        self.to_restore: dict[str, Any] | None = None
        self.before_validation: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return random_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.to_restore = state_dict  # applied when training starts, after everything that set up the run drew

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.to_restore is not None:
            set_random_state(self.to_restore)
            self.to_restore = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.before_validation = random_state()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.before_validation is not None:
            set_random_state(self.before_validation)
            self.before_validation = None


def random_state() -> dict[str, Any]:
    """The global random states as tensors, lists and numbers (what ``torch.load(weights_only=True)`` accepts)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, keys.tolist(), position, has_gauss, gauss],
        "python": random.getstate(),
    }


def set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


class DivergenceGuard(pl.Callback):
    """Stops a training whose loss or weights stop being finite, before a checkpoint keeps them.

    Why: one non-finite gradient (an overflow in reduced precision, a learning rate too high) makes every weight NaN;
    the run would go on for hours and overwrite ``last.ckpt`` with them. The loss is read every
    ``trainer.log_every_n_steps`` steps, when the loggers read it anyway (no extra host sync per step), and the weights
    before each checkpoint is written.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % trainer.log_every_n_steps:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        finite = not isinstance(loss, torch.Tensor) or bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(not finite, all=False):  # any process: all stop together
            raise TrainingDivergedError(_diverged_message(trainer, "the training loss"))

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if not all(bool(torch.isfinite(p.detach()).all()) for p in pl_module.parameters()):
            raise TrainingDivergedError(_diverged_message(trainer, "a weight"))


class ProcessGroupTeardown(pl.Callback):
    """Destroys a gloo process group (CPU data parallel, ``trainer=ddp_cpu``) before the interpreter shuts down.

    Why: Lightning does this at exit for NCCL only. A gloo group left to the interpreter's finalisation can abort a
    finished process ("terminate called without an active exception", SIGABRT: gloo's worker threads still hold
    tensors when Python is torn down; pytorch/pytorch#190489), which fails a run or a test after its work is done.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        distributed = torch.distributed
        if distributed.is_available() and distributed.is_initialized() and distributed.get_backend() == "gloo":
            atexit.unregister(_destroy_process_group)  # once per process, however many fits it runs
            atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _diverged_message(trainer: pl.Trainer, what: str) -> str:
    last = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    resume = f"resume from ckpt_path={last} (saved before it)" if last else "start again"
    return (
        f"training diverged by step {trainer.global_step}: {what} is not finite; {resume} with "
        "trainer.precision=32-true, task.compile=false or a lower task.optimizer.lr"
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint files that survive a kill at any moment.

    Each checkpoint is written to a temporary file in its own folder, flushed to disk (fsync), then renamed over the
    old one (``os.replace`` is atomic on POSIX): ``last.ckpt`` is always either the previous or the new checkpoint.
    Lightning's own saving writes to a file in the system's temporary folder and moves it into place, which is a
    copy (a kill can truncate it) when that folder is on another file system, and it does not fsync.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(glob.escape(f".{path.name}.") + "*.tmp"):  # left behind by a killed run
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
            _fsync_folder(path.parent)  # make the rename itself durable
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
