"""Lattice loss: the part of a net's error that repeats exactly every ``period`` px.

An upsampling net (super-resolution x4, the style nets' x2 x2 decoder) sees the image through a grid of its stride,
and can draw a faint pattern locked to it: the x4 feature-loss SR net's grid. That grid is 0.1-0.4 % of its error
energy, so the feature loss, although it punishes the grid ~4.5x more than noise of the same energy
(``experiments/sr/grid_sensitivity.py``), barely notices it, and TV or a pixel term remove it only by giving up the
detail along with it. This term reads the grid itself: the error averaged over each of the ``period`` x ``period``
pixel phases of the image (less its mean) is the pattern that repeats every ``period`` px; real detail averages out
over the image's cells. Its mean square costs nothing outside that ``3 period^2``-dimensional subspace.
"""

from __future__ import annotations

from torch import Tensor

from perceptual.losses.base import PIXELS, LayerwiseLoss, Reference


def periodic_tile(error: Tensor, period: int) -> Tensor:
    """The ``period`` x ``period`` tile that ``error`` [..., H, W] repeats: the mean over each pixel phase, less its
    mean, shape [..., period, period]. Rows and columns past the last whole period are left out."""
    *lead, height, width = error.shape
    rows, cols = height // period, width // period
    if rows == 0 or cols == 0:
        raise ValueError(f"an image of {height}x{width} px holds no whole {period} px period; give larger images")
    cells = error[..., : rows * period, : cols * period].reshape(*lead, rows, period, cols, period)
    phases = cells.mean(dim=(-4, -2))
    return phases - phases.mean(dim=(-2, -1), keepdim=True)


def periodic_part(error: Tensor, period: int) -> Tensor:
    """The component of ``error`` [..., H, W] (H and W multiples of ``period``) that repeats every ``period`` px."""
    *lead, height, width = error.shape
    tile = periodic_tile(error, period)
    return tile.repeat(*([1] * len(lead)), height // period, width // period)


class LatticeLoss(LayerwiseLoss):
    """Mean square of the error's ``period``-periodic part (:func:`periodic_tile`) against the aligned target:
    equal to the pixel loss restricted to patterns locked to the upsampling grid, averaged over the batch."""

    def __init__(self, weight: float = 1.0, period: int = 4, reference: Reference | str = Reference.TARGET) -> None:
        super().__init__(weight, layers=(PIXELS,), reference=reference)
        if period < 2:
            raise ValueError(f"lattice period={period}: give the net's upsampling factor (2 or more), e.g. ${{scale}}")
        self.period = int(period)

    def compare(self, output: Tensor, reference: Tensor) -> Tensor:
        # in float32: the tile is a small difference of phase means that bf16 would round away
        return periodic_tile(output.float() - reference.float(), self.period).square().mean()
