"""Single-image super-resolution (Johnson et al. 2016) with PSNR/SSIM on every validation set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from perceptual.data.batch import HR_KEY, LR_KEY
from perceptual.errors import ConfigError
from perceptual.evaluation.metrics import SRPSNR, SRSSIM
from perceptual.imaging.color import quantize
from perceptual.imaging.resize import imresize
from perceptual.nets.johnson import check_scale
from perceptual.tasks.base import TransformTask


class SuperResolutionTask(TransformTask):
    """Train ``net`` so that ``criterion(net(lr), target=hr)`` is small; batches hold LR and HR images.

    Validation logs ``val/psnr`` and ``val/ssim`` (Y channel, ``scale`` border pixels cropped, outputs
    quantised to 8 bit as saved images are) on the held-out crops and ``val/<name>/psnr|ssim`` on each
    benchmark set; the metrics are torchmetrics, synced across processes.

    Args:
        scale: the upscaling factor (the net's).
        val_sets: names of the benchmark validation sets (``data.val_sets``), in the order of their loaders, which
            follow the held-out crops' loader.
        **kwargs: see :class:`TransformTask`.
    """

    task_name = "sr"

    def __init__(self, scale: int, val_sets: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = check_scale(scale)
        self.val_set_names = ["", *val_sets]  # "": the held-out crops
        self.val_metrics = nn.ModuleDict(
            {
                name or "crops": nn.ModuleDict({"psnr": SRPSNR(self.scale), "ssim": SRSSIM(self.scale)})
                for name in self.val_set_names
            }
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not self.count_skipped(batch):
            return None
        lr, hr = self.prepare_input(batch[LR_KEY]), batch[HR_KEY]
        losses = self.training_losses(lr, hr)
        self.log_losses("train", losses, lr.shape[0])
        return losses.total

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if LR_KEY not in batch:
            return
        if dataloader_idx >= len(self.val_set_names):
            raise ConfigError(
                f"validation loader {dataloader_idx} has no name; set task.val_sets to the names of data.val_sets"
            )
        lr, hr = self.prepare_input(batch[LR_KEY]), batch[HR_KEY]
        sr = self.net(lr)
        name = self.val_set_names[dataloader_idx]
        if dataloader_idx == 0:
            self.log_losses("val", self.criterion(sr, target=hr), lr.shape[0])
            if batch_idx == 0:
                bicubic = imresize(lr.float(), size=tuple(hr.shape[-2:])).clamp(0, 1)
                self.keep_validation_images({"bicubic": bicubic, "output": sr, "hr": hr})
        metrics = self.val_metrics[name or "crops"]
        sr_8bit = quantize(sr.detach().float())
        prefix = f"val/{name}/" if name else "val/"
        for key, metric in metrics.items():
            metric.update(sr_8bit, hr.float())
            self.log(prefix + key, metric, on_epoch=True, batch_size=lr.shape[0], add_dataloader_idx=False)
