"""MATLAB-compatible bicubic ``imresize``.

The SR benchmarks (Set5, Set14, ...) make their low-resolution images with MATLAB's ``imresize(..., 'bicubic')`` and
report the bicubic baseline with it too. ``torch.nn.functional.interpolate(mode="bicubic")`` is a different resampler
(cubic kernel with a = -0.75, its own antialiasing and border rule), so it is off by whole gray levels and tenths of a
dB. This module follows MATLAB's ``imresize.m`` (``contributions`` / ``resizeAlongDim``): cubic kernel with a = -0.5,
kernel stretched by 1/scale when shrinking, out-of-range taps clamped to the edge pixel ("Clamp out-of-range indices;
has the effect of replicating end-points" in MATLAB's source; the [1:n, n:-1:1] reflection of some Python ports is
not what MATLAB does), and dimensions resized in order of increasing scale factor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, [-2, 2]


def cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5, the one MATLAB's ``imresize`` uses."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool = True) -> Tensor:
    """The [out_length, in_length] float64 matrix that resizes one dimension exactly like MATLAB.

    Output pixel x (1-based) samples the input at u = x/scale + (1 - 1/scale)/2; when shrinking with antialiasing
    the kernel is stretched by 1/scale (and scaled by ``scale``); weights are normalised to sum to one per output
    pixel *before* out-of-range taps are clamped to the first/last pixel, whose weights then add up.
    """
    if antialias and scale < 1:
        width = _KERNEL_WIDTH / scale

        def kernel(x: Tensor) -> Tensor:
            return scale * cubic(scale * x)

    else:
        width = _KERNEL_WIDTH
        kernel = cubic
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)  # 1-based, may fall outside [1, in_length]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(dim=1, keepdim=True)
    zero_based = (indices.long() - 1).clamp(0, in_length - 1)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, zero_based, weights)
    return matrix


def imresize(
    image: Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
    uint8: bool = False,
) -> Tensor:
    """Resize [C,H,W] or [B,C,H,W] float images with MATLAB's bicubic ``imresize``.

    Give either ``scale`` (output size = ceil(in * scale), as MATLAB) or ``size`` = (H, W) (then each dimension uses
    scale = out / in, as MATLAB). By default the result is neither clamped nor rounded: callers decide. Weights are
    float64, applied in the image's dtype.

    ``uint8=True`` emulates MATLAB on a uint8 image, which is how the benchmark LR images and the published bicubic
    baselines were made: the input must hold 8-bit levels in [0, 1], and both the intermediate image (MATLAB keeps
    it in the input's class) and the output are rounded to 8 bit, half away from zero. It computes on the 0..255
    scale in float64 so that exact halves (common at x2 and x4) stay exact and round as MATLAB's do; it reproduces
    the shared Set5/Set14 LR images bit for bit.
    """
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale or size")
    if image.dim() not in (3, 4):
        raise ValueError(f"imresize expects a [C,H,W] or [B,C,H,W] tensor, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"imresize expects a floating point tensor, got {image.dtype}")
    in_h, in_w = image.shape[-2:]
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        # ceil(scale * in) as MATLAB; round first so float error in e.g. (1/3) * n cannot add a pixel.
        out_h, out_w = (math.ceil(round(scale * n, 9)) for n in (in_h, in_w))
        scales = (scale, scale)
    else:
        out_h, out_w = size
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"size must be positive, got {size}")
        scales = (out_h / in_h, out_w / in_w)
    mat_h = resize_matrix(in_h, out_h, scales[0], antialias)
    mat_w = resize_matrix(in_w, out_w, scales[1], antialias)
    if uint8:
        levels = _round_uint8(image.double() * 255)
        resized = _resize_2d(levels, mat_h.to(levels), mat_w.to(levels), scales, _round_uint8)
        return (resized / 255).to(image.dtype)
    return _resize_2d(image, mat_h.to(image), mat_w.to(image), scales, _identity)


def _resize_2d(
    image: Tensor, mat_h: Tensor, mat_w: Tensor, scales: tuple[float, float], cast: Callable[[Tensor], Tensor]
) -> Tensor:
    """Apply both 1-D resizes; ``cast`` stands for MATLAB's conversion to the input class after each pass.

    MATLAB resizes the dimension with the smaller scale first (a stable sort: H first on ties). Without rounding the
    order only matters up to float error; with it, it decides which intermediate image gets rounded.
    """
    if scales[1] < scales[0]:
        return cast(mat_h @ cast(image @ mat_w.T))
    return cast(cast(mat_h @ image) @ mat_w.T)


def _round_uint8(levels: Tensor) -> Tensor:
    """MATLAB's double -> uint8 conversion: round half away from zero, saturate to [0, 255]."""
    return torch.floor(levels + 0.5).clamp(0, 255)


def _identity(image: Tensor) -> Tensor:
    """The float path keeps full precision between and after the passes."""
    return image
