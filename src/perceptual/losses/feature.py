"""Feature reconstruction and pixel losses (Johnson et al. 2016, eq. 2 and the pixel baseline)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from perceptual.imaging.blur import gaussian_blur
from perceptual.losses.base import PIXELS, Features, LayerwiseLoss, Reference


class FeatureLoss(LayerwiseLoss):
    """``||phi_j(y_hat) - phi_j(y)||_2^2 / (C_j H_j W_j)`` per layer, averaged over the batch."""

    def __init__(
        self,
        weight: float = 1.0,
        layers: Sequence[str] = ("relu2_2",),
        layer_weights: Sequence[float] | None = None,
        reference: Reference | str = Reference.TARGET,
    ) -> None:
        super().__init__(weight, layers, layer_weights, reference)

    def compare(self, output: Tensor, reference: Tensor) -> Tensor:
        return F.mse_loss(output, reference.to(output.dtype))


class PixelLoss(FeatureLoss):
    """``||y_hat - y||^2 / (CHW)``: the feature loss at the image itself.

    ``blur_sigma`` compares Gaussian-blurred (low-frequency) images, as the contextual-loss SR
    recipe does to keep colours faithful while the contextual term handles texture.
    """

    def __init__(
        self, weight: float = 1.0, blur_sigma: float | None = None, reference: Reference | str = Reference.TARGET
    ) -> None:
        super().__init__(weight, layers=(PIXELS,), reference=reference)
        self.blur_sigma = blur_sigma

    def prepare_reference(self, features: Features) -> dict[str, Tensor]:
        return {PIXELS: gaussian_blur(features[PIXELS], self.blur_sigma)}

    def compare(self, output: Tensor, reference: Tensor) -> Tensor:
        return super().compare(gaussian_blur(output, self.blur_sigma), reference)
