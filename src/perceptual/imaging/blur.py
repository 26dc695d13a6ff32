"""Gaussian low-pass filtering with a kernel sized from sigma (3 sigma on each side)."""

from __future__ import annotations

from torch import Tensor
from torchvision.transforms.v2 import functional as TF


def gaussian_blur(image: Tensor, sigma: float | None) -> Tensor:
    """Blur [..., H, W] with a Gaussian of ``sigma`` pixels; ``None`` or 0 returns the image unchanged."""
    if not sigma or sigma <= 0:
        return image
    kernel = 2 * round(3 * sigma) + 1
    return TF.gaussian_blur(image, [kernel, kernel], [sigma, sigma])
