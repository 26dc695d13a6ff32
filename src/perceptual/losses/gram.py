"""Gram-matrix style reconstruction loss (Gatys et al.; Johnson et al. 2016, eq. 3-4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from perceptual.choices import check_choice
from perceptual.losses.base import Features, LayerwiseLoss, Reference

GramNorm = Literal["paper", "mse"]


def gram_matrix(features: Tensor) -> Tensor:
    """``G = psi psi^T / (C H W)`` with psi the features reshaped to C x HW; [B, C, C].

    Computed in float32 even under autocast: low-precision Grams lose the style signal.
    """
    b, c, h, w = features.shape
    psi = features.reshape(b, c, h * w).float()
    with torch.autocast(device_type=features.device.type, enabled=False):
        return torch.bmm(psi, psi.transpose(1, 2)) / (c * h * w)


class GramStyleLoss(LayerwiseLoss):
    """Squared distance between Gram matrices, summed over layers.

    ``norm="paper"``: squared Frobenius norm of the difference (the paper's definition).
    ``norm="mse"``: its mean over the C^2 entries, as the released reference code computes it
    (an extra 1/C^2, which weights shallow layers relatively more).
    """

    def __init__(
        self,
        weight: float = 1.0,
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        layer_weights: Sequence[float] | None = None,
        norm: GramNorm = "paper",
        reference: Reference | str = Reference.STYLE,
    ) -> None:
        check_choice("norm", norm, GramNorm)
        super().__init__(weight, layers, layer_weights, reference)
        self.norm = norm

    def prepare_reference(self, features: Features) -> dict[str, Tensor]:
        return {layer: gram_matrix(features[layer]) for layer in self.layers}

    def compare(self, output: Tensor, reference: Tensor) -> Tensor:
        squared = (gram_matrix(output) - reference) ** 2
        per_sample = squared.sum(dim=(1, 2)) if self.norm == "paper" else squared.mean(dim=(1, 2))
        return per_sample.mean()
