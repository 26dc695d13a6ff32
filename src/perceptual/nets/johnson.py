"""Johnson et al. (2016) image transformation networks: style transfer and super-resolution.

Both nets share one padding scheme: with ``padding="paper"`` the residual convs are unpadded and
the input is reflection-padded by the context they consume (40 px for the style net, as in the
paper's supplementary); with ``"same"`` every conv is padded. Any H x W works: the input is padded
to what the net needs and the output cropped back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from perceptual.choices import check_choice
from perceptual.errors import ConfigError
from perceptual.nets.base import Capabilities, TransformNet
from perceptual.nets.blocks import (
    ConvBlock,
    Norm,
    Output,
    OutputActivation,
    Padding,
    ReflectionPad,
    ResidualBlock,
    Upsample,
    UpsampleBlock,
    crop,
    pad_to_multiple,
)

SRScale = Literal[2, 4, 8]
Skip = Literal["none", "bicubic"]


def check_scale(scale: int) -> int:
    """The super-resolution factor, checked once for the net, the SR data and the SR task."""
    return check_choice("scale", scale, SRScale)


class _PaddedTransformNet(TransformNet):
    """Pads the input to a multiple of ``downsample`` plus the residual context, crops the output."""

    def __init__(self, body: nn.Sequential, downsample: int, upscale: int, context: int) -> None:
        super().__init__()
        self.body = body
        self.downsample = downsample
        self.upscale = upscale
        self.context = context  # pixels per side consumed by unpadded residual convs
        self.pad = ReflectionPad(context)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(stride=self.downsample, scale=self.upscale, norm=self.options["norm"])

    def forward(self, x: Tensor) -> Tensor:
        return self.padded_body(x)

    def padded_body(self, x: Tensor) -> Tensor:
        x, (h, w) = pad_to_multiple(x, self.downsample)
        if self.context:
            x = self.pad(x)
        return crop(self.body(x), h * self.upscale, w * self.upscale)


class StyleTransferNet(_PaddedTransformNet):
    """c9s1-32, d64, d128, 5 x R128, u64, u32, c9s1-3 (Johnson et al., supplementary Table 1).

    Args:
        width: channels of the first layer (32 in the paper, 16 in the released code).
        n_residual: residual blocks (5).
        norm: ``batch`` (paper) or ``instance`` (released code; better stylisation).
        upsample: ``transpose`` (fractionally strided convs, paper), ``nearest`` or ``bilinear`` + conv.
        padding: ``paper`` (reflection pad + unpadded residual convs) or ``same``.
        output: ``tanh`` (scaled tanh, paper) or ``clamp``.
    """

    def __init__(
        self,
        width: int = 32,
        n_residual: int = 5,
        norm: Norm = "batch",
        upsample: Upsample = "transpose",
        padding: Padding = "paper",
        output: Output = "tanh",
    ) -> None:
        check_choice("padding", padding, Padding)
        w = width
        body = nn.Sequential(
            ConvBlock(3, w, 9, 1, norm),
            ConvBlock(w, 2 * w, 3, 2, norm),
            ConvBlock(2 * w, 4 * w, 3, 2, norm),
            *[ResidualBlock(4 * w, norm, padding) for _ in range(n_residual)],
            UpsampleBlock(4 * w, 2 * w, upsample, norm),
            UpsampleBlock(2 * w, w, upsample, norm),
            ConvBlock(w, 3, 9, 1, activation=False),
            OutputActivation(output),
        )
        context = 2 * n_residual * 4 if padding == "paper" else 0
        super().__init__(body, downsample=4, upscale=1, context=context)


class SuperResolutionNet(_PaddedTransformNet):
    """c9s1-64, 4 x R64, log2(scale) x u64, c9s1-3 (Johnson et al., supplementary Table 2).

    x4 maps 72x72 to 288x288 and x8 36x36 to 288x288; options as :class:`StyleTransferNet`, plus

    Args:
        skip: ``none`` (the paper) or ``bicubic``: the net predicts a residual over the bicubic upscale of its input
            (global residual learning, Kim et al. 2016, VDSR). Its last conv starts at zero, so an untrained net is
            exactly bicubic and a short training only has to learn detail; needs ``output=clamp``.
    """

    def __init__(
        self,
        scale: SRScale = 4,
        width: int = 64,
        n_residual: int = 4,
        norm: Norm = "batch",
        upsample: Upsample = "transpose",
        padding: Padding = "same",
        output: Output = "tanh",
        skip: Skip = "none",
    ) -> None:
        check_scale(scale)
        check_choice("padding", padding, Padding)
        check_choice("skip", skip, Skip)
        if skip == "bicubic" and output != "clamp":
            raise ConfigError("skip=bicubic adds the residual to a bicubic upscale; set output=clamp (not tanh)")
        body = nn.Sequential(
            ConvBlock(3, width, 9, 1, norm),
            *[ResidualBlock(width, norm, padding) for _ in range(n_residual)],
            *[UpsampleBlock(width, width, upsample, norm) for _ in range(int(math.log2(scale)))],
            ConvBlock(width, 3, 9, 1, activation=False),
        )
        context = 2 * n_residual if padding == "paper" else 0
        super().__init__(body, downsample=1, upscale=scale, context=context)
        self.scale = scale
        self.skip = skip
        self.activation = OutputActivation(output)  # outside the body: the bicubic skip is added before it
        if skip == "bicubic":
            last_conv = body[-1][1]
            nn.init.zeros_(last_conv.weight)
            nn.init.zeros_(last_conv.bias)

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, styled=False)  # an upscale: no style to fade or recolour

    def forward(self, x: Tensor) -> Tensor:
        out = self.padded_body(x)
        if self.skip == "bicubic":
            out = out + F.interpolate(x, scale_factor=float(self.scale), mode="bicubic", align_corners=False)
        return self.activation(out)
