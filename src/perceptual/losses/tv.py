"""Total variation regulariser on the output image (Mahendran & Vedaldi; Johnson et al. 2016)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from perceptual.losses.base import PIXELS, Features, LossTerm


def total_variation(image: Tensor, power: float = 2.0) -> Tensor:
    """Sum over pixels of ``|dx|^p + |dy|^p`` between neighbours, averaged over the batch.

    ``power=2`` matches the reference implementation's squared differences; ``power=1`` is the
    anisotropic L1 form many ports use.
    """
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().pow(power)
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().pow(power)
    return (dx.flatten(1).sum(1) + dy.flatten(1).sum(1)).mean()


class TotalVariationLoss(LossTerm):
    """Encourages spatial smoothness of the output; needs no reference."""

    def __init__(self, weight: float = 1e-6, power: float = 2.0) -> None:
        super().__init__(weight, layers=(PIXELS,), reference=None)
        self.power = power

    def forward(self, output: Features, reference: Mapping[str, Tensor] | None = None) -> Tensor:
        return total_variation(output[PIXELS], self.power)
