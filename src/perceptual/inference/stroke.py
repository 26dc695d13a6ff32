"""Strokes that keep their size at any resolution: ``stroke=none | auto | <factor>`` for every style net.

A net trained on 256 px crops paints strokes of a fixed size in pixels, so on a 4000 px photo they are a sixteenth of
the size they have in a 256 px one and the style all but vanishes. With ``stroke`` set, the net paints the photo at a
*working resolution* and the result is brought back to the photo's size with the photo's own detail:

1. Working resolution: the photo resized so that its shorter side is ``training_size / factor`` (aspect kept), where
   ``training_size`` is the side of the crops the net was trained on (the checkpoint's run config,
   ``data.image_size``; the style data resize each photo's shorter side to it before cropping, so this is the scale
   at which the net saw whole photos). ``stroke=auto`` is factor 1: the look the net has at its training
   resolution, at any input size; ``stroke=2`` paints strokes twice as large, relative to the image.
2. Back to the photo's size, in three parts added together:

   * the stylised working image upsampled (bicubic), which keeps the strokes as the net painted them;
   * an edge snap: joint bilateral upsampling (Kopf et al. 2007; the photo's luma as the guide, a Gaussian of
     :data:`SNAP_SIGMA_SPACE` working px, luma steps of :data:`SNAP_SIGMA_RANGE`) minus the same upsampling without
     the guide. Where the photo is flat the two are equal and the snap is zero; across the photo's edges it moves the
     painting's colours to the side of the edge they were painted on, so the outlines follow the photo's instead of
     the working image's blurred ones. The sum is kept within the range of the four nearest working pixels, so the
     snap sharpens an edge without overshooting it. (Joint bilateral upsampling alone snaps the edges too, but its
     Gaussian smooths the strokes: ``experiments/stroke/``.)
   * the photo's high-frequency luminance, the part of the photo's luma that the trip to the working resolution and
     back loses (``Y - up(down(Y))``), times :data:`DETAIL_GAIN`. It is added as a grey shift (the same amount on R,
     G and B), which moves the luma alone and leaves the stylised colours as they are
     (:func:`perceptual.imaging.color.keep_chroma` works the same way).

``stroke=none`` (the default) runs the net on the photo as it is. The stage sits after tiling and StyleBank fusion and
before the colour and strength controls (:mod:`perceptual.inference.pipeline`), so tiles, video frames, banks and
fusions get it, and ``preserve_color``/``strength`` act on the full-resolution result against the full photo.
Measurements, and the alternatives measured against: ``experiments/stroke/README.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from perceptual.errors import ConfigError
from perceptual.imaging.color import luma
from perceptual.nets.base import TransformNet

log = logging.getLogger(__name__)

DEFAULT_TRAINING_SIZE = 256  # Johnson et al.'s crops; assumed when a checkpoint records no data.image_size
MIN_WORKING_SIDE = 32  # below this a style net has too few pixels to paint anything recognisable
SNAP_SIGMA_SPACE = 1.5  # working px: the joint bilateral kernel's reach, enough to find both sides of an edge
SNAP_SIGMA_RANGE = 0.05  # luma (0..1): photo steps well above this keep the painting from crossing them
SNAP_RADIUS = 2  # working px: 5 x 5 taps, the Gaussian is below 0.2 of its peak beyond
SNAP_FLOOR = 1e-6  # added to the range weight: where no tap matches the guide the snap falls back to zero
DETAIL_GAIN = 2.5  # the photo's detail above the working resolution, amplified so that its edges hold their own
#                    beside the strokes' (the smallest of 1, 2, 2.5, 3 that keeps the HED edge correlation within 0.05
#                    of plain stylisation on the zoo nets: experiments/stroke)
_USAGE = (
    "use stroke=none, stroke=auto (the net's look at its training size) or a factor > 0 (2: strokes twice as large)"
)


def parse_stroke(value: Any) -> float | None:
    """The stroke factor a ``stroke=`` value names: ``None`` for ``none`` (off), 1 for ``auto``, else a number > 0."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return 1.0
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"stroke={value!r} is not a number; {_USAGE}") from None
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"stroke={value} must be a positive number; {_USAGE}")
    return factor


def working_size(size: tuple[int, int], training_size: int, factor: float) -> tuple[int, int]:
    """(height, width) of the working image for a ``size`` photo: shorter side ``training_size / factor``, aspect
    kept (each side rounded, at least 1 px)."""
    scale = training_size / factor / min(size)
    return tuple(max(1, round(side * scale)) for side in size)  # type: ignore[return-value]


def resize_bicubic(images: Tensor, size: tuple[int, int]) -> Tensor:
    """``images`` [B, C, H, W] resized to ``size`` (bicubic, antialiased when shrinking); unchanged at that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)


def photo_detail(photo: Tensor, size: tuple[int, int]) -> Tensor:
    """The high-frequency luma of ``photo`` that a trip to ``size`` and back loses: ``Y - up(down(Y))``."""
    y = luma(photo)
    return y - resize_bicubic(resize_bicubic(y, size), tuple(photo.shape[-2:]))


def _on_working_grid(size: tuple[int, int], low: tuple[int, int], like: Tensor) -> list[Tensor]:
    """Each output row's and column's position on the working grid (working pixel centres at 0, 1, ...)."""
    return [(torch.arange(n, device=like.device, dtype=like.dtype) + 0.5) * m / n - 0.5 for n, m in zip(size, low)]


def joint_bilateral_upsample(photo: Tensor, stylised: Tensor) -> tuple[Tensor, Tensor]:
    """``stylised`` [B, 3, h, w] upsampled to ``photo``'s size [B, 3, H, W] by a Gaussian of
    :data:`SNAP_SIGMA_SPACE` working px over each output pixel's (2 :data:`SNAP_RADIUS` + 1)^2 nearest working
    pixels: (with the photo's luma as the guide, i.e. joint bilateral upsampling (Kopf et al. 2007), without it).

    Written with torch ops because the joint bilateral filters at hand (kornia, OpenCV's ximgproc) are not
    dependencies and filter at one resolution."""
    size, low = tuple(photo.shape[-2:]), tuple(stylised.shape[-2:])
    guide, guide_low = luma(photo), luma(resize_bicubic(photo, low))
    position = _on_working_grid(size, low, stylised)
    nearest = [p.round() for p in position]
    guided = plain = guided_weight = plain_weight = 0.0
    for dy in range(-SNAP_RADIUS, SNAP_RADIUS + 1):
        rows = (nearest[0] + dy).clamp(0, low[0] - 1).long()[:, None]
        weight_y = torch.exp(-(position[0] - nearest[0] - dy).square() / (2 * SNAP_SIGMA_SPACE**2))
        for dx in range(-SNAP_RADIUS, SNAP_RADIUS + 1):
            cols = (nearest[1] + dx).clamp(0, low[1] - 1).long()[None]
            weight_x = torch.exp(-(position[1] - nearest[1] - dx).square() / (2 * SNAP_SIGMA_SPACE**2))
            spatial = weight_y[:, None] * weight_x[None]
            similar = torch.exp(-(guide - guide_low[..., rows, cols]).square() / (2 * SNAP_SIGMA_RANGE**2))
            joint = spatial * (similar + SNAP_FLOOR)
            values = stylised[..., rows, cols]
            guided, guided_weight = guided + joint * values, guided_weight + joint
            plain, plain_weight = plain + spatial * values, plain_weight + spatial
    return guided / guided_weight, plain / plain_weight


def snap_upsample(photo: Tensor, stylised: Tensor) -> Tensor:
    """``stylised`` [B, 3, h, w] upsampled to ``photo``'s size [B, 3, H, W] with its edges moved onto the photo's
    (module docstring): bicubic, plus :func:`joint_bilateral_upsample` with the guide minus without it, kept within
    the range of the four nearest working pixels (widened to the bicubic value), so that the correction cannot
    overshoot. Where the photo is flat it is the bicubic upsampling."""
    size, low = tuple(photo.shape[-2:]), tuple(stylised.shape[-2:])
    guided, plain = joint_bilateral_upsample(photo, stylised)
    position = _on_working_grid(size, low, stylised)
    bicubic = resize_bicubic(stylised, size)
    top, left = (p.floor().clamp(0, m - 2).long() for p, m in zip(position, low))  # of the 2 x 2 around each pixel
    highest = F.max_pool2d(stylised, 2, 1)[..., top[:, None], left[None]]
    lowest = -F.max_pool2d(-stylised, 2, 1)[..., top[:, None], left[None]]
    out = bicubic + guided - plain
    return out.clamp(torch.minimum(lowest, bicubic), torch.maximum(highest, bicubic))


def reinject_detail(photo: Tensor, stylised: Tensor) -> Tensor:
    """``stylised`` (painted at a working size) brought to ``photo``'s size (module docstring): the
    :func:`snap_upsample` (the bicubic resize where it does not upsample) plus :data:`DETAIL_GAIN` x
    :func:`photo_detail` as a grey shift, clamped to [0, 1]. [B, 3, H, W] each."""
    size, low = tuple(photo.shape[-2:]), tuple(stylised.shape[-2:])
    photo = photo.to(stylised)
    upsampling = min(low) > 1 and all(w < s for w, s in zip(low, size))
    painted = snap_upsample(photo, stylised) if upsampling else resize_bicubic(stylised, size)
    return (painted + DETAIL_GAIN * photo_detail(photo, low)).clamp(0, 1)


class StrokeApply:
    """``apply`` (images -> a style net's outputs) painting at the working resolution of ``factor`` (see the module
    docstring); call with [B, 3, H, W] photos in [0, 1], returns outputs of the same size."""

    def __init__(self, apply: Callable[..., Tensor], factor: float, training_size: int) -> None:
        self.apply, self.factor, self.training_size = apply, factor, training_size

    def working_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return working_size(size, self.training_size, self.factor)

    def __call__(self, images: Tensor) -> Tensor:
        size = self.working_size(tuple(images.shape[-2:]))
        stylised = self.apply(resize_bicubic(images, size))
        return reinject_detail(images, stylised)


def with_stroke(
    apply: Callable[..., Tensor], net: TransformNet, stroke: Any, training_size: int | None = None
) -> Callable[..., Tensor]:
    """``apply`` with ``stroke`` (see :func:`parse_stroke`); ``apply`` itself for ``stroke=none``. Refuses nets whose
    output is no stylisation (super-resolution) and factors whose working side falls below
    :data:`MIN_WORKING_SIDE`; ``training_size=None`` (not recorded) assumes :data:`DEFAULT_TRAINING_SIZE`."""
    factor = parse_stroke(stroke)
    if factor is None:
        return apply
    if not net.capabilities.styled:
        raise ConfigError(
            f"stroke={stroke} applies to style nets; this checkpoint holds a {type(net).__name__}, which paints no "
            "strokes: drop stroke (or use stroke=none)"
        )
    if training_size is None:
        training_size = DEFAULT_TRAINING_SIZE
        log.warning("the checkpoint records no training size (data.image_size); assuming %d px", training_size)
    if training_size / factor < MIN_WORKING_SIDE:
        raise ConfigError(
            f"stroke={stroke} paints at {training_size / factor:.0f} px, below {MIN_WORKING_SIDE} px for a net "
            f"trained on {training_size} px crops; use stroke<={training_size / MIN_WORKING_SIDE:g}"
        )
    log.info(
        "stroke=%s: painting at %.0f px on the shorter side, edges snapped to the photo's, its detail re-injected",
        stroke,
        training_size / factor,
    )
    return StrokeApply(apply, factor, training_size)
