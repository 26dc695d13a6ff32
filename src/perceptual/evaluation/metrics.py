"""PSNR and SSIM as the super-resolution literature reports them.

The protocol (SRCNN, VDSR, SelfExSR, Johnson et al. ...): 8-bit RGB output and ground truth, luma of MATLAB's
``rgb2ycbcr`` on the 0..255 scale, ``scale`` pixels cropped from every border, one PSNR / SSIM per image, and the mean
of those per-image values over the benchmark (not the PSNR of the pooled MSE). Nothing here quantises: pass net
outputs through ``perceptual.imaging.color.quantize`` first to score what a saved 8-bit image would score.

SSIM is Wang et al.'s ``ssim_index.m``: 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid'
filtering, population (not sample) covariances; it equals scikit-image's ``structural_similarity(
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``. torchmetrics' SSIM is not used:
it reflection-pads the image and averages the SSIM map over the padded border too, which moves Set5 values by up to
4e-3.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from perceptual.imaging.color import rgb_to_y

DATA_RANGE = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def crop_border(image: Tensor, n: int) -> Tensor:
    """Drop ``n`` pixels from each side of [..., H, W]: SR nets are not judged on the borders they cannot see past."""
    if n < 0:
        raise ValueError(f"crop_border needs n >= 0, got {n}")
    height, width = image.shape[-2:]
    if 2 * n >= min(height, width):
        raise ValueError(f"cannot crop {n} pixels per side from a {height}x{width} image")
    return image[..., n : height - n, n : width - n] if n else image


def _prepare(sr: Tensor, hr: Tensor, crop: int) -> tuple[Tensor, Tensor]:
    """RGB in [0, 1] -> cropped float64 Y planes on the 0..255 scale."""
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if sr.dim() != 4:
        raise ValueError(f"expected [B, C, H, W] images, got shape {tuple(sr.shape)}")
    # float64: E[x^2] - E[x]^2 in SSIM cancels badly in float32 at 0..255 magnitudes.
    sr, hr = rgb_to_y(sr.double()), rgb_to_y(hr.double())
    return crop_border(sr, crop), crop_border(hr, crop)


def psnr(a: Tensor, b: Tensor, data_range: float = DATA_RANGE) -> Tensor:
    """Per-image PSNR in dB of [B, C, H, W] images (MSE over C, H, W); ``inf`` for identical images."""
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def _window_matrix(length: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """'Valid' filtering with the 11-tap Gaussian (sigma 1.5) along one axis, as a [length - 10, length] matrix.

    The 2-D window (MATLAB's ``fspecial('gaussian', 11, 1.5)``) is separable, and two banded matmuls are much faster
    than an 11x11 conv2d in float64 on CPU (~10x at 512x512).
    """
    offsets = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - (SSIM_WINDOW - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    taps = taps / taps.sum()
    rows = length - SSIM_WINDOW + 1
    columns = torch.arange(rows, device=device)[:, None] + torch.arange(SSIM_WINDOW, device=device)
    matrix = torch.zeros(rows, length, dtype=dtype, device=device)
    return matrix.scatter_(1, columns, taps.expand(rows, -1))


def ssim(a: Tensor, b: Tensor, data_range: float = DATA_RANGE) -> Tensor:
    """Per-image SSIM of [B, C, H, W] images: mean of the 'valid' SSIM map over channels and positions."""
    height, width = a.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {height}x{width}")
    filter_h = _window_matrix(height, a.dtype, a.device)
    filter_w = _window_matrix(width, a.dtype, a.device)
    mu_a, mu_b, e_aa, e_bb, e_ab = (filter_h @ x @ filter_w.T for x in (a, b, a * a, b * b, a * b))
    var_a, var_b, cov = e_aa - mu_a**2, e_bb - mu_b**2, e_ab - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(dim=1)


def psnr_y(sr: Tensor, hr: Tensor, crop: int) -> Tensor:
    """Per-image PSNR (dB, float64 [B]) on Y of RGB [B, 3, H, W] images in [0, 1] under the SR protocol."""
    return psnr(*_prepare(sr, hr, crop))


def ssim_y(sr: Tensor, hr: Tensor, crop: int) -> Tensor:
    """Per-image SSIM (float64 [B]) on Y of RGB [B, 3, H, W] images in [0, 1] under the SR protocol (for RGB
    channels, :func:`ssim` of the images scaled to 0..255)."""
    return ssim(*_prepare(sr, hr, crop))


def mean_gradient(planes: Tensor) -> Tensor:
    """Mean forward-difference gradient magnitude per image of [B, 1, H, W] planes."""
    gy = planes[..., 1:, :-1] - planes[..., :-1, :-1]
    gx = planes[..., :-1, 1:] - planes[..., :-1, :-1]
    return (gx**2 + gy**2).sqrt().flatten(1).mean(dim=1)


def sharpness_y(sr: Tensor, hr: Tensor, crop: int) -> Tensor:
    """Mean gradient magnitude of the output's Y over the HR image's, per image (float64 [B]).

    1 = as much fine detail as the ground truth, < 1 blurrier: the figure that shows what PSNR hides, that a
    perceptual-loss net restores sharper detail than a pixel-loss net of higher PSNR (Johnson et al. 2016).
    """
    sr_y, hr_y = _prepare(sr, hr, crop)
    return mean_gradient(sr_y) / mean_gradient(hr_y).clamp_min(1e-12)


class _PerImageMean(Metric):
    """Mean over images of a per-image score; sum + count states so DDP sync (a sum) gives the global mean."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, crop_border: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crop_border = int(crop_border)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, sr: Tensor, hr: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, sr: Tensor, hr: Tensor) -> None:
        scores = self.score(sr, hr)
        self.total += scores.sum()
        self.count += scores.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


class SRPSNR(_PerImageMean):
    """Mean per-image PSNR (dB) on Y with ``crop_border`` pixels removed per side; inputs RGB [B, 3, H, W] in [0, 1]."""

    def score(self, sr: Tensor, hr: Tensor) -> Tensor:
        return psnr_y(sr, hr, self.crop_border)


class SRSSIM(_PerImageMean):
    """Mean per-image SSIM on Y with ``crop_border`` pixels removed per side; inputs RGB [B, 3, H, W] in [0, 1]."""

    def score(self, sr: Tensor, hr: Tensor) -> Tensor:
        return ssim_y(sr, hr, self.crop_border)
