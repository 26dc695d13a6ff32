"""Single-image super-resolution (Johnson et al. 2016) with PSNR/SSIM on every validation set."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from perceptual.imaging.color import quantize
from perceptual.imaging.resize import imresize
from perceptual.metrics import SRPSNR, SRSSIM
from perceptual.nets.johnson import check_scale
from perceptual.tasks.base import TransformTask


class SuperResolutionTask(TransformTask):
    """Train ``net`` so that ``criterion(net(lr), target=hr)`` is small; batches are ``{"lr", "hr"}``.

    Validation logs ``val/psnr`` and ``val/ssim`` (Y channel, ``scale`` border pixels cropped, outputs
    quantised to 8 bit as saved images are) on the held-out crops and ``val/<name>/psnr|ssim`` on each
    benchmark set of the DataModule; the metrics are torchmetrics, synced across processes.
    """

    task_name = "sr"

    def __init__(self, scale: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = check_scale(scale)
        self.val_set_names: list[str] = [""]
        self.val_metrics = nn.ModuleDict()

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self.trainer is not None else None
        self.val_set_names = list(getattr(datamodule, "val_set_names", [""]))
        for name in self.val_set_names:
            key = name or "crops"
            if key not in self.val_metrics:
                self.val_metrics[key] = nn.ModuleDict({"psnr": SRPSNR(self.scale), "ssim": SRSSIM(self.scale)})

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not self.count_skipped(batch):
            return None
        lr, hr = self.prepare_input(batch["lr"]), batch["hr"]
        losses = self.criterion(self.net(lr), target=hr)
        self.log_losses("train", losses, lr.shape[0])
        return losses.total

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if "lr" not in batch:
            return
        lr, hr = self.prepare_input(batch["lr"]), batch["hr"]
        sr = self.net(lr)
        name = self.val_set_names[dataloader_idx]
        if dataloader_idx == 0:
            self.log_losses("val", self.criterion(sr, target=hr), lr.shape[0])
            if batch_idx == 0:
                bicubic = imresize(lr.float(), size=tuple(hr.shape[-2:])).clamp(0, 1)
                self.validation_images = {"bicubic": bicubic, "output": sr.detach().float().clamp(0, 1), "hr": hr}
        metrics = self.val_metrics[name or "crops"]
        sr_8bit = quantize(sr.detach().float())
        prefix = f"val/{name}/" if name else "val/"
        for key, metric in metrics.items():
            metric.update(sr_8bit, hr.float())
            self.log(prefix + key, metric, on_epoch=True, batch_size=lr.shape[0], add_dataloader_idx=False)
