"""Colour conversions and 8-bit quantisation used by the SR benchmark protocol.

SR papers report PSNR/SSIM on the luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio swing) computed from 8-bit
images, so these use MATLAB's constants (not a full-range YCbCr) and MATLAB's rounding to uint8.
"""

from __future__ import annotations

import torch
from torch import Tensor

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr first row, for RGB in [0, 1]
_Y_OFFSET = 16.0


def rgb_to_y(image: Tensor) -> Tensor:
    """Luma Y = 16 + 65.481 R + 128.553 G + 24.966 B of RGB in [0, 1], on the 0..255 scale ([16, 235]).

    Takes [..., 3, H, W] and returns [..., 1, H, W]. Y is not rounded (MATLAB rounds it for uint8 inputs); that
    difference is at most half a gray level and moves Set5/Set14 bicubic PSNRs by 0.01-0.03 dB.
    """
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects [..., 3, H, W], got shape {tuple(image.shape)}")
    weights = torch.tensor(_Y_WEIGHTS, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return _Y_OFFSET + (image * weights).sum(dim=-3, keepdim=True)


def quantize(image: Tensor) -> Tensor:
    """Snap values in [0, 1] to the 256 levels of an 8-bit image, as saving a PNG (or MATLAB's uint8) would.

    Rounds half away from zero like MATLAB's uint8 conversion (torch.round rounds half to even).
    """
    return torch.floor(image.clamp(0, 1) * 255 + 0.5) / 255
