"""Training plumbing shared by every task: optimiser, per-term logging, validation images,
and checkpoints that carry what inference needs (the net's config, see :mod:`perceptual.checkpoints`) but not the
loss network."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from perceptual.checkpoints import CheckpointMetadata, write_metadata
from perceptual.data.batch import SKIPPED_KEY
from perceptual.losses.criterion import LossOutput, PerceptualCriterion
from perceptual.nets.base import TransformNet
from perceptual.tasks.compile import CompiledLosses, LossFunction, compile_mode

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


class TransformTask(pl.LightningModule):
    """A transformation net trained with a perceptual criterion.

    Args:
        net: the image transformation network (the only thing stylize/evaluate need); its ``config()`` goes into
            checkpoints.
        criterion: loss terms + loss network.
        optimizer: factory taking the parameters (Hydra ``_partial_: true``).
        scheduler: optional factory taking the optimiser, stepped every step.
        channels_last: NHWC memory format (faster convolutions on recent CPUs and GPUs).
        compile: compile the training step's loss, forward and backward (:mod:`perceptual.tasks.compile`): ``true``
            or a ``torch.compile`` mode (``reduce-overhead`` adds CUDA graphs).
        run_config: the run's composed config as YAML, recorded in checkpoints (``None`` outside a configured run).
    """

    task_name = "transform"
    #: whether a training step may leave trainable parameters without a gradient (StyleBank's banks): DDP must
    #: then look for them every step (``find_unused_parameters``), which a net that uses all its parameters skips
    unused_parameters = False

    def __init__(
        self,
        net: TransformNet,
        criterion: PerceptualCriterion,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        channels_last: bool = False,
        compile: bool | str = False,
        run_config: str | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.channels_last = channels_last
        self.compile_mode = compile_mode(compile)
        self.training_losses: LossFunction = self.losses  # compiled by on_fit_start when compile_mode is set
        self.run_config = run_config
        self.skipped_images = 0
        self._validation_images: dict[str, Tensor] = {}
        self.style_images: list[Tensor] = []  # set by tasks whose criterion compares with style images

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def prepare_input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def losses(self, net_input: Tensor, target: Tensor) -> LossOutput:
        """The criterion of the net's output for ``net_input`` against ``target``: a training step's forward pass."""
        return self.criterion(self.net(net_input), target=target)

    def cache_styles(self) -> None:
        """Compute the criterion's style statistics once, on the device the task runs on."""
        if self.criterion.needs_styles and not self.criterion.num_styles:
            self.criterion.set_styles([image.to(self.device) for image in self.style_images])

    def on_fit_start(self) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        self.cache_styles()
        if self.compile_mode is not None:
            self.training_losses = CompiledLosses(self.net, self.criterion, self.compile_mode, self.device)

    def on_validation_start(self) -> None:
        self.cache_styles()

    def keep_validation_images(self, images: dict[str, Tensor]) -> None:
        """Keep one validation batch's images, a row each (e.g. content, stylised), for :meth:`validation_images`."""
        self._validation_images = {name: batch.detach().float().clamp(0, 1) for name, batch in images.items()}

    def validation_images(self) -> dict[str, Tensor]:
        """The images of the last :meth:`keep_validation_images` (float, in [0, 1]); empty before the first
        validation. What :class:`~perceptual.callbacks.ValidationImages` logs and reconstructions start from."""
        return self._validation_images

    def count_skipped(self, batch: dict[str, Any]) -> bool:
        """Count unreadable images and log the running count when it grows (this process's count: a host-side
        integer, so a step without them logs nothing and waits for nothing); False when nothing in the batch was
        readable."""
        skipped = int(batch.get(SKIPPED_KEY, 0))
        if skipped:
            self.skipped_images += skipped
            self.log("data/skipped_images", float(self.skipped_images), reduce_fx="max")
        return any(key != SKIPPED_KEY for key in batch)

    def log_losses(self, stage: str, losses: LossOutput, batch_size: int) -> None:
        """Log each term and the total. Training values stay tensors on the device, read by the loggers every
        ``trainer.log_every_n_steps`` only; they are kept off the progress bar, which would read them every step and
        make the host wait for the device."""
        on_step = stage.startswith("train")  # "train", or a training branch such as StyleBank's "train_ae"
        options = {
            "on_step": on_step,
            "on_epoch": not on_step,
            "batch_size": batch_size,
            "sync_dist": not on_step,
            "add_dataloader_idx": False,
        }
        values = {f"{stage}/{name}": value.detach() for name, value in losses.terms.items()}
        self.log_dict(values, **options)
        self.log(f"{stage}/loss", losses.total.detach(), prog_bar=not on_step, **options)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def style_names(self) -> list[str]:
        """The styles the net was trained for, as configured (paths or built-in names); none by default."""
        return []

    def checkpoint_metadata(self) -> CheckpointMetadata:
        """What a checkpoint of this task records besides the weights."""
        return CheckpointMetadata(
            net=self.net.config(),
            task=self.task_name,
            styles=self.style_names(),
            loss_net=None if self.criterion.loss_net is None else self.criterion.loss_net.source.record(),
            run_config=self.run_config,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        write_metadata(checkpoint, self.checkpoint_metadata())
        checkpoint["skipped_images"] = self.skipped_images

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_images = checkpoint.get("skipped_images", 0)  # a resumed run goes on counting
