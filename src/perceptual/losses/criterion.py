"""A weighted sum of named loss terms that share one loss-network pass per tensor."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from perceptual.errors import ConfigError
from perceptual.losses.base import PIXELS, LossTerm, Reference
from perceptual.losses.gram import GramStyleLoss
from perceptual.lossnet.vgg import LossNetwork


@dataclass
class LossOutput:
    """The total loss and each term's weighted contribution (they sum to the total)."""

    total: Tensor
    terms: dict[str, Tensor]


class PerceptualCriterion(nn.Module):
    """Compute every term from a single loss-network pass over the output.

    The target image (content photo, HR image) gets one more pass, truncated after the deepest
    layer a target term needs and without autograd; style statistics are computed once by
    :meth:`set_styles` and indexed per sample, so a batch may mix styles (StyleBank).

    Args:
        terms: name -> term; ``None`` entries and zero-weight terms are dropped, so a sweep can
            switch a term off with ``loss.terms.tv.weight=0``.
        loss_net: a :class:`LossNetwork`, or a factory called with ``layers=`` (the union of the
            terms' layers) so the network is truncated exactly where the terms need it.
    """

    def __init__(
        self,
        terms: Mapping[str, LossTerm | None],
        loss_net: LossNetwork | Callable[..., LossNetwork] | None = None,
    ) -> None:
        super().__init__()
        active = {name: term for name, term in terms.items() if term is not None and term.weight != 0}
        if not active:
            raise ConfigError("the loss has no term with a non-zero weight; set loss.terms.<name>.weight")
        self.terms = nn.ModuleDict(active)
        layers = sorted({layer for term in active.values() for layer in term.layers if layer != PIXELS})
        if layers and loss_net is None:
            raise ConfigError(f"loss terms need loss-network layers {layers} but no loss_net was given")
        if layers and not isinstance(loss_net, LossNetwork):
            loss_net = loss_net(layers=layers)
        self.loss_net = loss_net if layers else None
        self._style_references: dict[str, list[dict[str, Tensor]]] = {}

    def _layers(self, reference: Reference | None) -> list[str]:
        return sorted({layer for t in self.terms.values() if t.reference == reference for layer in t.layers})

    def network_layers(self, reference: Reference | None) -> list[str]:
        """The loss-network layers (not the image itself) that the terms comparing with ``reference`` read."""
        return [layer for layer in self._layers(reference) if layer != PIXELS]

    def gram_layer_sets(self) -> list[list[str]]:
        """The layers of each Gram-matrix style term, one list per term."""
        return [list(term.layers) for term in self.terms.values() if isinstance(term, GramStyleLoss)]

    def features(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """One loss-network pass for the named layers, plus the image itself under :data:`PIXELS`."""
        net_layers = [layer for layer in layers if layer != PIXELS]
        out = dict(self.loss_net(image, net_layers)) if net_layers else {}
        out[PIXELS] = image
        return out

    @property
    def num_styles(self) -> int:
        return len(next(iter(self._style_references.values()), []))

    @property
    def needs_styles(self) -> bool:
        return any(term.reference is Reference.STYLE for term in self.terms.values())

    @torch.no_grad()
    def add_styles(self, images: Sequence[Tensor]) -> None:
        """Cache each style-term's statistics (e.g. Grams) of the style images [3,H,W] or [1,3,H,W]."""
        style_layers = self._layers(Reference.STYLE)
        for image in images:
            image = image if image.dim() == 4 else image.unsqueeze(0)
            features = self.features(image, style_layers)
            for name, term in self.terms.items():
                if term.reference is Reference.STYLE:
                    prepared = {k: v.detach() for k, v in term.prepare_reference(features).items()}
                    self._style_references.setdefault(name, []).append(prepared)

    def set_styles(self, images: Sequence[Tensor]) -> None:
        """Replace the cached style statistics."""
        self._style_references = {}
        self.add_styles(images)

    def _style_reference(self, name: str, style_index: Tensor | None, batch: int, device: torch.device) -> dict:
        cached = self._style_references.get(name)
        if not cached:
            raise ConfigError(f"loss term {name!r} compares with a style image but no style was set; pass style=<path>")
        index = style_index.tolist() if style_index is not None else [0] * batch
        if max(index) >= len(cached):
            raise ConfigError(f"style index {max(index)} out of range: {len(cached)} style image(s) were set")
        return {key: torch.cat([cached[i][key] for i in index]).to(device) for key in cached[0]}

    def forward(self, output: Tensor, target: Tensor | None = None, style_index: Tensor | None = None) -> LossOutput:
        """Loss of ``output`` against the ``target`` image and the cached styles (``style_index`` per sample)."""
        output_features = self.features(
            output, self._layers(None) + self._layers(Reference.TARGET) + self._layers(Reference.STYLE)
        )
        target_features = None
        if any(term.reference is Reference.TARGET for term in self.terms.values()):
            if target is None:
                raise ValueError("this loss has terms comparing with a target image; pass target=")
            with torch.no_grad():
                target_features = self.features(target, self._layers(Reference.TARGET))
        terms: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            if term.reference is Reference.TARGET:
                reference = term.prepare_reference(target_features)
            elif term.reference is Reference.STYLE:
                reference = self._style_reference(name, style_index, output.shape[0], output.device)
            else:
                reference = None
            terms[name] = term.weight * term(output_features, reference)
        total = torch.stack(list(terms.values())).sum()
        return LossOutput(total, terms)
