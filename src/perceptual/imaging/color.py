"""Colour conversions and 8-bit quantisation: the SR benchmark protocol's luma and colour-preserving stylisation.

SR papers report PSNR/SSIM on the luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio swing) computed from 8-bit
images, so these use MATLAB's constants (not a full-range YCbCr) and MATLAB's rounding to uint8. Colour preservation
(:func:`keep_chroma`) uses the same luma, so "the input's colours" are measured in the same YCbCr.
"""

from __future__ import annotations

import torch
from torch import Tensor

# MATLAB rgb2ycbcr for RGB in [0, 1]: rows Y, Cb, Cr on the 0..255 scale, plus the offsets.
_YCBCR_WEIGHTS = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_YCBCR_OFFSETS = (16.0, 128.0, 128.0)
_Y_RANGE = sum(_YCBCR_WEIGHTS[0])  # 219: Y of white minus Y of black; Cb and Cr rows sum to 0 (grey has no chroma)


def _check_rgb(image: Tensor, name: str) -> None:
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name} expects [..., 3, H, W], got shape {tuple(image.shape)}")


def rgb_to_ycbcr(image: Tensor) -> Tensor:
    """YCbCr of RGB in [0, 1] as MATLAB's ``rgb2ycbcr`` computes it, on the 0..255 scale (Y in [16, 235], Cb and Cr in
    [16, 240]). [..., 3, H, W] -> [..., 3, H, W]."""
    _check_rgb(image, "rgb_to_ycbcr")
    weights = torch.tensor(_YCBCR_WEIGHTS, dtype=image.dtype, device=image.device)
    offsets = torch.tensor(_YCBCR_OFFSETS, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return offsets + torch.einsum("ij,...jhw->...ihw", weights, image)


def rgb_to_y(image: Tensor) -> Tensor:
    """Luma Y = 16 + 65.481 R + 128.553 G + 24.966 B of RGB in [0, 1], on the 0..255 scale ([16, 235]).

    Takes [..., 3, H, W] and returns [..., 1, H, W]. Y is not rounded (MATLAB rounds it for uint8 inputs); that
    difference is at most half a gray level and moves Set5/Set14 bicubic PSNRs by 0.01-0.03 dB.
    """
    _check_rgb(image, "rgb_to_y")
    weights = torch.tensor(_YCBCR_WEIGHTS[0], dtype=image.dtype, device=image.device).view(3, 1, 1)
    return _YCBCR_OFFSETS[0] + (image * weights).sum(dim=-3, keepdim=True)


def luma(image: Tensor) -> Tensor:
    """:func:`rgb_to_y` on the 0..1 scale of the image (black 0, white 1): [..., 3, H, W] -> [..., 1, H, W]. A grey
    shift of ``d`` on R, G and B moves it by exactly ``d``."""
    return (rgb_to_y(image) - _YCBCR_OFFSETS[0]) / _Y_RANGE


def keep_chroma(source: Tensor, luma_from: Tensor) -> Tensor:
    """``source``'s chroma (Cb, Cr) with the luma of ``luma_from`` (RGB in [0, 1], same shape): luminance-only
    transfer for style transfer that keeps the photo's colours (Gatys et al. 2016, "Preserving color in neural
    artistic style transfer").

    Adding the same amount to R, G and B moves only Y (the Cb and Cr rows sum to zero), so the result is ``source``
    plus a grey shift of (Y difference) / 219. Where the full shift would leave the RGB cube it is clamped, which
    keeps the chroma exactly and takes the nearest luma that the colour can have; converting Y' Cb Cr back to RGB
    and clipping would instead change the colour there. Such a shift always exists: ``source``'s own luma is one.
    """
    _check_rgb(source, "keep_chroma")
    shift = luma(luma_from) - luma(source)
    low = -source.amin(dim=-3, keepdim=True)
    high = 1 - source.amax(dim=-3, keepdim=True)
    return source + torch.maximum(torch.minimum(shift, high), low)


def quantize(image: Tensor) -> Tensor:
    """Snap values in [0, 1] to the 256 levels of an 8-bit image, as saving a PNG (or MATLAB's uint8) would.

    Rounds half away from zero like MATLAB's uint8 conversion (torch.round rounds half to even).
    """
    return torch.floor(image.clamp(0, 1) * 255 + 0.5) / 255
