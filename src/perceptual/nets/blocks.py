"""Building blocks shared by the transformation networks (Johnson style/SR nets, StyleBank).

Every block takes the same options so that the nets can offer one vocabulary:
``norm`` (batch | instance | none), upsampling ``mode`` (transpose | nearest) and
``output`` activation (tanh | clamp).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptual.choices import check_choice

Norm = Literal["batch", "instance", "none"]
Upsample = Literal["transpose", "nearest", "bilinear"]
Output = Literal["tanh", "clamp"]
Padding = Literal["paper", "same"]


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """Batch norm (Johnson et al.), instance norm (Ulyanov et al.; the reference code) or none."""
    check_choice("norm", kind, Norm)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class ReflectionPad(nn.Module):
    """Reflection padding that falls back to replicate padding for inputs too small to reflect
    (tiny LR inputs, tiny test images) instead of failing."""

    def __init__(self, padding: int) -> None:
        super().__init__()
        self.padding = padding

    def reflects(self, x: Tensor) -> bool:
        """Whether ``x`` is large enough to reflect (else it is replicate-padded)."""
        return self.padding < min(x.shape[-2:])

    def forward(self, x: Tensor) -> Tensor:
        p = self.padding
        return F.pad(x, (p, p, p, p), mode="reflect" if self.reflects(x) else "replicate")

    def extra_repr(self) -> str:
        return str(self.padding)


class ConvBlock(nn.Sequential):
    """Reflection-padded convolution, then norm and ReLU (``activation=False`` for output layers)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        norm: Norm = "batch",
        activation: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            ReflectionPad(kernel_size // 2),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride),
        ]
        if activation:
            layers += [make_norm(norm, out_channels), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class UpsampleBlock(nn.Sequential):
    """x2 upsampling: fractionally strided conv (the paper), or nearest or bilinear interpolation + conv.

    Interpolation + conv has no checkerboard, but the zoo nets still paint a lattice at their stride (4 px) where they
    want fine texture, through nearest and bilinear interpolation alike (experiments/style_quality/README.md). Both
    interpolations have the same parameters, so a net trained with one can be fine-tuned with the other
    (``init_net_options``).
    """

    def __init__(self, in_channels: int, out_channels: int, mode: Upsample = "transpose", norm: Norm = "batch") -> None:
        check_choice("upsample", mode, Upsample)
        if mode == "transpose":
            up: list[nn.Module] = [
                nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
            ]
        else:
            up = [
                nn.Upsample(scale_factor=2, mode=mode),
                ReflectionPad(1),
                nn.Conv2d(in_channels, out_channels, 3),
            ]
        super().__init__(*up, make_norm(norm, out_channels), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 convs and an identity shortcut, no ReLU after the addition (Gross & Wilber).

    ``padding="paper"`` uses unpadded convs and centre-crops the identity by 2 pixels per side,
    as Johnson et al.'s supplementary describes; ``"same"`` reflection-pads each conv.
    """

    def __init__(self, channels: int, norm: Norm = "batch", padding: Padding = "same") -> None:
        super().__init__()
        check_choice("padding", padding, Padding)
        self.crop = 2 if padding == "paper" else 0
        pad = nn.Identity() if padding == "paper" else ReflectionPad(1)
        pad2 = nn.Identity() if padding == "paper" else ReflectionPad(1)
        self.body = nn.Sequential(
            pad,
            nn.Conv2d(channels, channels, 3),
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
            pad2,
            nn.Conv2d(channels, channels, 3),
            make_norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x[..., self.crop : x.shape[-2] - self.crop, self.crop : x.shape[-1] - self.crop]
        return identity + self.body(x)


class OutputActivation(nn.Module):
    """Map the last conv to RGB in [0, 1].

    ``tanh``: the paper's scaled tanh, here ``(tanh(x) + 1) / 2``. ``clamp``: linear while training
    (no dead gradients outside the range), clamped to [0, 1] in eval mode.
    """

    def __init__(self, kind: Output = "tanh") -> None:
        super().__init__()
        check_choice("output", kind, Output)
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "tanh":
            return 0.5 * (torch.tanh(x) + 1.0)
        return x if self.training else x.clamp(0.0, 1.0)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad H and W up to a multiple of ``multiple``; return the padded tensor and the
    original size, for :func:`crop` to cut the network output back.

    Pads even by zero pixels: a branch on whether padding is needed would be traced for the export example's
    case only (an ONNX graph exported at a multiple of 4 was off by up to 0.5 on other sizes)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


def crop(x: Tensor, height: int, width: int) -> Tensor:
    """The top-left ``height x width`` of ``x`` as a new tensor (negative padding, not a slice).

    A slice is a view whose memory layout depends on whether anything was cut off, and torch.export guards on
    it: the exported program then refuses sizes of the other kind (ONNX conversion drops that guard, other
    consumers of the program keep it). The copy has one layout for every size.
    """
    return F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2]))
