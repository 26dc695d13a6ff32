"""Style fusion for StyleBank nets at inference (Chen et al. 2017): the weights ``StyleBankNet(x, weights=)`` mixes.

A choice of banks becomes per-bank weight maps at the feature resolution:

- ``bank=i``: bank ``i`` alone (one-hot weights: exactly the single-style output).
- ``banks=[i, j, ...] weights=[...]``: linear fusion ``(sum_i w_i K_i) * F``; the weights must sum
  to 1 (equal weights when omitted).
- ``banks=[...] masks=<folder>``: region-wise fusion with one grayscale mask ``M_i`` per bank,
  matched in file-name order; each pixel goes to its brightest mask.
- ``banks=[...] regions=kmeans``: the masks are k-means regions of the content image's colours,
  one per bank, ordered from the darkest cluster centre to the brightest.

Masks are a partition of the image (every pixel in exactly one region). At the feature
resolution each cell gets the share of its ``downsample x downsample`` pixels in every region:
non-negative weights summing to 1, i.e. region-wise fusion inside regions and linear fusion on
the cells a boundary crosses. The masks weight bank *outputs*, ``sum_i M_i K_i(F)``, where the
paper writes ``sum_i K_i(M_i F)``: the same inside each region, without adding every bank's bias
over the whole image, and defined for banks deeper than one conv.

How strongly the result is applied (``strength``) is the same pixel blend with the input for every net
(:mod:`perceptual.inference.postprocess`), not a fusion option.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from perceptual.choices import check_choice
from perceptual.errors import ConfigError
from perceptual.imaging.io import list_images, load_image
from perceptual.nets.base import TransformNet
from perceptual.nets.blocks import pad_to_multiple
from perceptual.nets.stylebank import StyleBankNet

log = logging.getLogger(__name__)

FUSION_OPTIONS = ("bank", "banks", "weights", "masks", "regions", "k")  # the stylize CLI keys
Regions = Literal["kmeans"]
WEIGHT_SUM_TOLERANCE = 1e-6
KMEANS_MAX_PIXELS = 20_000  # k-means is fitted on a random subset of pixels, then labels every pixel
LUMA = np.array([0.299, 0.587, 0.114])


def kmeans_labels(image: Tensor, k: int, seed: int = 0) -> Tensor:
    """[H, W] labels 0..k-1 of k-means clusters of the pixel colours of ``image`` [3, H, W],
    numbered from the darkest cluster centre to the brightest (so a list of banks reads dark to light)."""
    from sklearn.cluster import KMeans  # slow to import; only regions=kmeans needs it

    height, width = image.shape[-2:]
    if height * width < k:
        raise ConfigError(f"k={k} regions do not fit in a {height}x{width} image")
    pixels = image.detach().float().cpu().permute(1, 2, 0).reshape(-1, 3).numpy()
    rng = np.random.default_rng(seed)
    if len(pixels) > KMEANS_MAX_PIXELS:
        sample = pixels[rng.choice(len(pixels), KMEANS_MAX_PIXELS, replace=False)]
    else:
        sample = pixels
    kmeans = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(sample)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(kmeans.cluster_centers_ @ LUMA)] = np.arange(k)
    return torch.from_numpy(rank[kmeans.predict(pixels)]).reshape(height, width)


def mask_labels(masks: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
    """[H, W] labels: each pixel goes to the brightest of the grayscale ``masks`` [1, h, w] there
    (resized to ``size``; ties go to the first mask)."""
    resized = [F.interpolate(mask[None].float(), size=size, mode="bilinear", align_corners=False) for mask in masks]
    return torch.cat(resized).argmax(dim=0)[0]


def one_hot(labels: Tensor, k: int) -> Tensor:
    """[..., H, W] labels -> [..., k, H, W] float masks: a partition, one region per pixel."""
    return F.one_hot(labels, k).movedim(-1, -3).float()


def feature_weights(masks: Tensor, downsample: int) -> Tensor:
    """[B, k, H, W] masks at the feature resolution: padded as the net pads its input, then the share
    of each region in every ``downsample x downsample`` cell (non-negative, summing to 1 for a partition)."""
    padded, _ = pad_to_multiple(masks, downsample)
    return F.avg_pool2d(padded, downsample)


class StyleBankFusion:
    """Turns the user's choice of banks into ``weights`` for :class:`StyleBankNet` (see the module doc).

    Args:
        net: the StyleBank net (its number of banks and downsampling factor).
        bank: one bank (default 0 when neither ``bank`` nor ``banks`` is given).
        banks: banks to fuse; with ``weights``, ``masks`` or ``regions``.
        weights: linear-fusion weights, one per entry of ``banks``, summing to 1.
        masks: folder of grayscale mask images, one per entry of ``banks`` in file-name order.
        regions: ``kmeans``: masks from k-means on each content image's colours.
        k: number of k-means regions; must equal the number of banks (default).
    """

    def __init__(
        self,
        net: StyleBankNet,
        bank: int | None = None,
        banks: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        masks: str | Path | None = None,
        regions: Regions | None = None,
        k: int | None = None,
    ) -> None:
        self.num_styles = net.num_styles
        self.downsample = net.downsample
        if bank is not None and banks is not None:
            raise ConfigError("pass bank=<i> for one bank or banks=[i,j,...] to fuse banks, not both")
        if banks is None and any(option is not None for option in (weights, masks, regions, k)):
            raise ConfigError("weights, masks, regions and k fuse banks: also pass banks=[i,j,...]")
        self.banks = [int(b) for b in banks] if banks is not None else [0 if bank is None else int(bank)]
        for index in self.banks:
            if not 0 <= index < self.num_styles:
                last = self.num_styles - 1
                raise ConfigError(f"bank {index} out of range: the checkpoint has style banks 0..{last}")
        if not self.banks:
            raise ConfigError("banks=[] is empty; pass banks=[i,j,...]")
        if masks is not None and regions is not None:
            raise ConfigError("pass masks=<folder> or regions=kmeans, not both")
        if (masks is not None or regions is not None) and weights is not None:
            raise ConfigError("weights are for linear fusion; region-wise fusion (masks/regions) takes none")
        self.regions = regions
        self.masks: list[Tensor] | None = None
        self.linear: Tensor | None = None
        if regions is not None:
            check_choice("regions", regions, Regions)
            if k is not None and k != len(self.banks):
                raise ConfigError(f"k={k} regions for {len(self.banks)} banks; give one bank per region")
        elif k is not None:
            raise ConfigError("k is the number of regions for regions=kmeans")
        elif masks is not None:
            self.masks = [load_image(path).mean(dim=0, keepdim=True) for path in list_images(masks, recursive=False)]
            if len(self.masks) != len(self.banks):
                raise ConfigError(f"masks={masks} holds {len(self.masks)} mask image(s) for {len(self.banks)} banks")
        else:
            shares = [1.0 / len(self.banks)] * len(self.banks) if weights is None else [float(w) for w in weights]
            if len(shares) != len(self.banks):
                raise ConfigError(f"{len(shares)} weights for {len(self.banks)} banks; give one weight per bank")
            if not math.isclose(sum(shares), 1.0, abs_tol=WEIGHT_SUM_TOLERANCE):
                raise ConfigError(f"weights={shares} sum to {sum(shares):g}; linear fusion needs weights summing to 1")
            self.linear = torch.tensor(shares).view(1, -1, 1, 1)

    def region_masks(self, images: Tensor) -> Tensor:
        """[B, len(banks), H, W] one-hot masks of ``images`` [B, 3, H, W] (region-wise fusion only)."""
        size = tuple(images.shape[-2:])
        if self.masks is not None:
            return one_hot(mask_labels(self.masks, size), len(self.banks)).expand(images.shape[0], -1, -1, -1)
        if self.regions is None:
            raise ValueError("region masks need masks=<folder> or regions=kmeans")
        return one_hot(torch.stack([kmeans_labels(image, len(self.banks)) for image in images]), len(self.banks))

    def __call__(self, images: Tensor) -> Tensor:
        """Weights [B|1, num_styles, h|1, w|1] for ``images``, one channel per bank."""
        shares = self.linear if self.linear is not None else feature_weights(self.region_masks(images), self.downsample)
        weights = shares.new_zeros(shares.shape[0], self.num_styles, *shares.shape[2:])
        return weights.index_add_(1, torch.tensor(self.banks), shares)


def with_fusion(
    apply: Callable[..., Tensor], net: TransformNet, options: Mapping[str, Any]
) -> Callable[[Tensor], Tensor]:
    """``apply`` (e.g. a :class:`~perceptual.inference.runner.Runner` of ``net``) with the fusion ``options``
    (keys of :data:`FUSION_OPTIONS`, ``None`` = unset) turned into ``weights`` per batch.

    Nets other than StyleBank take no options and get ``apply`` unchanged.
    """
    chosen = {key: value for key, value in options.items() if value is not None}
    if not net.capabilities.fusion:
        if chosen:
            keys = ", ".join(f"{key}=" for key in chosen)
            raise ConfigError(f"{keys} only apply to StyleBank checkpoints; this one holds a {type(net).__name__}")
        return apply
    if not chosen:
        log.info("StyleBank checkpoint with %d style banks: using bank 0 (pass bank=<i>)", net.num_styles)
    fusion = StyleBankFusion(net, **chosen)
    return lambda images: apply(images, weights=fusion(images))
