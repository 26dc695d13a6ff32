"""The contract every loss term follows, so that a criterion can mix any of them.

A term names the loss-network layers it reads (:data:`PIXELS` is the image itself), which :class:`Reference`
it compares against (``target``: the aligned image such as the content photo or the HR image;
``style``: fixed style images whose statistics are computed once; ``None``: the output alone),
and a weight. The criterion runs the loss network once per tensor and hands each term the
feature maps it asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from perceptual.choices import check_choice

Features = Mapping[str, Tensor]
PIXELS = "pixels"  # pseudo-layer: the RGB image in [0, 1] itself, beside the loss network's layers


class Reference(enum.StrEnum):
    """What a term compares the output with; configs give the value (``reference: target``)."""

    TARGET = "target"  # the aligned image of each sample (content photo, HR image)
    STYLE = "style"  # fixed style images whose statistics the criterion computes once


class LossTerm(nn.Module):
    """Base class of a loss term. ``forward`` returns the unweighted, batch-averaged scalar."""

    def __init__(
        self,
        weight: float = 1.0,
        layers: Sequence[str] = (),
        layer_weights: Sequence[float] | None = None,
        reference: Reference | str | None = None,
    ) -> None:
        super().__init__()
        if reference is not None:
            reference = Reference(check_choice("reference", reference, Reference))
        if layer_weights is not None and len(layer_weights) != len(layers):
            raise ValueError(
                f"layer_weights has {len(layer_weights)} entries for {len(layers)} layers {list(layers)}; "
                "give one weight per layer or leave layer_weights unset"
            )
        self.weight = float(weight)
        self.layers = list(layers)
        self.layer_weights = (
            [float(w) for w in layer_weights] if layer_weights is not None else [1.0] * len(self.layers)
        )
        self.reference: Reference | None = reference

    def prepare_reference(self, features: Features) -> dict[str, Tensor]:
        """Turn the reference's features into what ``forward`` compares with (e.g. Gram matrices).

        Called once for style images (and cached), once per batch for targets. Every returned
        tensor keeps the batch dimension first so references can be indexed per sample.
        """
        return {layer: features[layer] for layer in self.layers}

    def forward(self, output: Features, reference: Mapping[str, Tensor] | None = None) -> Tensor:
        raise NotImplementedError


class LayerwiseLoss(LossTerm):
    """A term that is a weighted sum over layers of one comparison ``compare(output_l, reference_l)``."""

    def compare(self, output: Tensor, reference: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, output: Features, reference: Mapping[str, Tensor] | None = None) -> Tensor:
        if reference is None:
            raise ValueError(f"{type(self).__name__} needs a {self.reference} reference")
        losses = [
            w * self.compare(output[layer], reference[layer]) for layer, w in zip(self.layers, self.layer_weights)
        ]
        return sum(losses[1:], losses[0])
