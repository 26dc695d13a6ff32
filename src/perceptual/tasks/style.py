"""Real-time style transfer (Johnson et al. 2016): one net per style, trained on content photos."""

from __future__ import annotations

import itertools
from typing import Any

from torch import Tensor

from perceptual.data.batch import IMAGE_KEY
from perceptual.data.sample import resolve_image
from perceptual.errors import ConfigError
from perceptual.losses.criterion import LossOutput
from perceptual.tasks.base import TransformTask

SHIFT_MARGIN = 16  # output pixels per side left out of the shift term: the two crops' reflection padding differs there


class StyleTransferTask(TransformTask):
    """Train ``net`` so that ``criterion(net(x), target=x)`` (content + style + TV) is small.

    Args:
        style: style image path or built-in name (``mosaic``).
        style_size: resize the style image's shorter side (``None`` keeps it).
        shift_consistency: weight of the shift term (0: off). A net that downsamples by its stride paints its texture
            at that stride's phase, not the photo's: one pixel of shift gives other strokes, a lattice locked to the
            output grid that the Gram terms cannot see (they ignore position) and video flickers with. The term is
            the mean squared difference between the net's outputs for two crops of the photo, one shifted by an offset
            that is not a multiple of the stride, on the region they share; it rewards texture that moves with the
            photo.
        **kwargs: see :class:`TransformTask`.
    """

    task_name = "style"

    def __init__(self, style: str, style_size: int | None = 256, shift_consistency: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if shift_consistency < 0:
            raise ConfigError(f"task.shift_consistency={shift_consistency} is negative; use 0 (off) or a weight > 0")
        self.style = style
        self.style_images = [resolve_image(style, "style", style_size)]
        self.shift_consistency = shift_consistency
        stride = self.net.capabilities.stride
        # every offset within one stride cell but (0, 0), taken in turn by step: deterministic, so resuming repeats it
        self.shift_offsets = [offset for offset in itertools.product(range(stride), repeat=2) if any(offset)]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not self.count_skipped(batch):
            return None
        content = self.prepare_input(batch[IMAGE_KEY])
        losses = self.training_losses(content, content)
        if self.shift_consistency and self.shift_offsets:
            offset = self.shift_offsets[self.global_step % len(self.shift_offsets)]
            shift = self.shift_consistency * self.shift_difference(content, offset)
            losses = LossOutput(losses.total + shift, {**losses.terms, "shift": shift})
        self.log_losses("train", losses, content.shape[0])
        return losses.total

    def shift_difference(self, content: Tensor, offset: tuple[int, int]) -> Tensor:
        """Mean squared difference between the net's outputs for the central half of ``content`` and for that crop
        moved by ``offset`` (rows, columns), where they overlap (half-size crops: the term costs half a net pass)."""
        dy, dx = offset
        stride = self.net.capabilities.stride
        height, width = (side // 2 // stride * stride for side in content.shape[-2:])
        top, left = (content.shape[-2] - height) // 2, (content.shape[-1] - width) // 2
        if min(height, width) - stride <= 2 * SHIFT_MARGIN:
            raise ConfigError(
                f"task.shift_consistency needs crops of at least {4 * SHIFT_MARGIN + 4 * stride} px; "
                f"these are {tuple(content.shape[-2:])}: raise data.image_size or set task.shift_consistency=0"
            )
        # The eager net, also under task.compile: the compiled one would recompile for the half-size crops with
        # dynamic spatial sizes, which torch 2.14's Inductor fails on for the net's padding arithmetic.
        here = self.net(content[..., top : top + height, left : left + width])
        moved = self.net(content[..., top + dy : top + dy + height, left + dx : left + dx + width])
        # moved[p] shows the photo at here[p + (dy, dx)]
        m = SHIFT_MARGIN
        a = here[..., dy + m : height - m, dx + m : width - m]
        b = moved[..., m : height - dy - m, m : width - dx - m]
        return (a.float() - b.float()).square().mean()

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
