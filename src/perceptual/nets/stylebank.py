"""StyleBank (Chen et al., CVPR 2017): one auto-encoder shared by all styles, one filter bank per style.

``O_i = D(K_i(E(I)))`` stylises with bank ``i``; ``O = D(E(I))`` is the auto-encoder (identity)
branch that keeps E and D free of style. Because a style lives only in its bank, styles can be
added later (:meth:`StyleBankNet.add_banks`) and mixed at inference (``weights=``, see
:mod:`perceptual.inference.fusion`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from perceptual.errors import ConfigError
from perceptual.nets.base import Capabilities, TransformNet
from perceptual.nets.blocks import (
    ConvBlock,
    Norm,
    Output,
    OutputActivation,
    Upsample,
    UpsampleBlock,
    crop,
    pad_to_multiple,
)

DOWNSAMPLE = 4  # two stride-2 encoder convs: features are H/4 x W/4


class StyleBankNet(TransformNet):
    """Encoder c9s1-w, d2w, d4w; ``num_styles`` banks of 4w -> 4w convs; decoder u2w, uw, c9s1-3.

    Instance norm + ReLU follow every layer but the last of the encoder and decoder. A bank of
    ``bank_depth`` convs has norm + ReLU between its convs but not after the last, so a
    single-conv bank (the paper's) is linear in the features and linear fusion is exact.

    Args:
        num_styles: banks built now; tasks add more with :meth:`add_banks`.
        width: channels of the first encoder layer (32 in the paper; bank channels are 4 x width).
        bank_depth: convs per bank (1 in the paper).
        bank_kernel: kernel size of the bank convs (3 in the paper).
        norm: ``instance`` (paper), ``batch`` or ``none``.
        upsample: ``transpose`` (fractionally strided convs), ``nearest`` or ``bilinear`` + conv.
        output: ``tanh`` (scaled to [0, 1]) or ``clamp``.
    """

    downsample = DOWNSAMPLE

    def __init__(
        self,
        num_styles: int = 1,
        width: int = 32,
        bank_depth: int = 1,
        bank_kernel: int = 3,
        norm: Norm = "instance",
        upsample: Upsample = "transpose",
        output: Output = "tanh",
    ) -> None:
        super().__init__()
        if num_styles < 0 or bank_depth < 1 or bank_kernel < 1 or bank_kernel % 2 == 0:
            raise ConfigError(
                f"model.num_styles={num_styles}, bank_depth={bank_depth}, bank_kernel={bank_kernel}: "
                "need num_styles >= 0, bank_depth >= 1 and an odd bank_kernel"
            )
        w = width
        self.encoder = nn.Sequential(
            ConvBlock(3, w, 9, 1, norm),
            ConvBlock(w, 2 * w, 3, 2, norm),
            ConvBlock(2 * w, 4 * w, 3, 2, norm),
        )
        self.decoder = nn.Sequential(
            UpsampleBlock(4 * w, 2 * w, upsample, norm),
            UpsampleBlock(2 * w, w, upsample, norm),
            ConvBlock(w, 3, 9, 1, activation=False),
            OutputActivation(output),
        )
        self.banks = nn.ModuleList()
        self.add_banks(num_styles)

    @property
    def num_styles(self) -> int:
        return len(self.banks)

    @property
    def channels(self) -> int:
        """Channels of the encoder features the banks transform."""
        return 4 * self.options["width"]

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(stride=self.downsample, banks=self.num_styles, fusion=True, norm=self.options["norm"])

    def config(self) -> dict[str, Any]:
        """Constructor config with the current number of banks (banks added since construction included)."""
        return {**super().config(), "num_styles": self.num_styles}

    def _new_bank(self) -> nn.Sequential:
        depth, kernel, c = self.options["bank_depth"], self.options["bank_kernel"], self.channels
        return nn.Sequential(
            *[ConvBlock(c, c, kernel, 1, self.options["norm"], activation=i < depth - 1) for i in range(depth)]
        )

    def add_banks(self, count: int) -> list[int]:
        """Append ``count`` freshly initialised banks (incremental learning); return their indices."""
        reference = next(self.encoder.parameters())
        first = self.num_styles
        for _ in range(count):
            self.banks.append(self._new_bank().to(device=reference.device, dtype=reference.dtype))
        return list(range(first, self.num_styles))

    def autoencoder_parameters(self) -> Iterator[nn.Parameter]:
        """E and D: what the auto-encoder step trains and incremental learning freezes."""
        yield from self.encoder.parameters()
        yield from self.decoder.parameters()

    def stylise(self, features: Tensor, style_index: Tensor) -> Tensor:
        """Apply bank ``style_index[b]`` to sample ``b``; each bank runs once on its samples only,
        so banks absent from the batch stay out of the autograd graph (their grads stay None)."""
        if style_index.shape != features.shape[:1]:
            raise ValueError(f"style_index must have shape [{features.shape[0]}], got {tuple(style_index.shape)}")
        styled = torch.zeros_like(features)
        for i in style_index.unique().tolist():
            if not 0 <= i < self.num_styles:
                raise ConfigError(f"style index {i} out of range: the net has {self.num_styles} bank(s)")
            selected = style_index == i
            styled[selected] = self.banks[i](features[selected])
        return styled

    def fuse(self, features: Tensor, weights: Tensor) -> Tensor:
        """``sum_i w_i K_i(F)`` with weights [B|1, num_styles, h|1, w|1]: fusion of the banks' outputs.

        Constant weights give linear fusion (for single-conv banks ``(sum_i w_i K_i) * F`` since the
        weights sum to 1), spatial weight maps give region-wise fusion; banks with zero weight
        everywhere are skipped, so a one-hot weight reproduces that bank exactly.
        """
        expected = self.num_styles
        if weights.dim() != 4 or weights.shape[1] != expected or weights.shape[0] not in (1, features.shape[0]):
            raise ValueError(f"weights must be [B|1, {expected}, h|1, w|1], got {tuple(weights.shape)}")
        if weights.shape[-2:] not in ((1, 1), features.shape[-2:]):
            raise ValueError(f"weight maps are {tuple(weights.shape[-2:])}, features {tuple(features.shape[-2:])}")
        weights = weights.to(features)
        terms = [w * bank(features) for w, bank in zip(weights.split(1, dim=1), self.banks) if w.any()]
        return sum(terms[1:], terms[0]) if terms else torch.zeros_like(features)

    def feature_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the features (and of ``weights`` maps) for an H x W input."""
        return -(-height // self.downsample), -(-width // self.downsample)

    def forward(self, x: Tensor, style_index: Tensor | int | None = None, weights: Tensor | None = None) -> Tensor:
        """Auto-encoder branch by default; ``style_index`` (int or LongTensor[B]) picks a bank per
        sample; ``weights`` fuses banks (see :meth:`fuse`). Any H x W: padded, then cropped back."""
        if style_index is not None and weights is not None:
            raise ValueError("pass style_index or weights, not both")
        padded, (h, w) = pad_to_multiple(x, self.downsample)
        features = self.encoder(padded)
        if weights is not None:
            features = self.fuse(features, weights)
        elif style_index is not None:
            index = torch.as_tensor(style_index, device=x.device)
            features = self.stylise(features, index.expand(x.shape[0]) if index.dim() == 0 else index)
        return crop(self.decoder(features), h, w)
