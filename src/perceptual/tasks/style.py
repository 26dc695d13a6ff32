"""Real-time style transfer (Johnson et al. 2016): one net per style, trained on content photos."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from perceptual.data.batch import IMAGE_KEY
from perceptual.data.sample import resolve_image
from perceptual.tasks.base import TransformTask


class StyleTransferTask(TransformTask):
    """Train ``net`` so that ``criterion(net(x), target=x)`` (content + style + TV) is small.

    Args:
        style: style image path or built-in name (``mosaic``).
        style_size: resize the style image's shorter side (``None`` keeps it).
        **kwargs: see :class:`TransformTask`.
    """

    task_name = "style"

    def __init__(self, style: str, style_size: int | None = 256, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.style = style
        self.style_images = [resolve_image(style, "style", style_size)]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not self.count_skipped(batch):
            return None
        content = self.prepare_input(batch[IMAGE_KEY])
        losses = self.training_losses(content, content)
        self.log_losses("train", losses, content.shape[0])
        return losses.total

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if IMAGE_KEY not in batch:
            return
        content = self.prepare_input(batch[IMAGE_KEY])
        output = self.net(content)
        self.log_losses("val", self.criterion(output, target=content), content.shape[0])
        if batch_idx == 0:
            self.keep_validation_images({"content": content, "stylised": output})

    def style_names(self) -> list[str]:
        return [self.style]
