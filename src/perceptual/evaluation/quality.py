"""Judging a stylisation without a human: is it stylised, has it kept colour, has it kept content?

Three figures on held-out photos, each relative to the unstyled photo so they compare across
photos and styles:

* Gram-distance ratio: ``sum_j ||G_j(output) - G_j(style)||_F^2`` over the style layers, divided by
  the same for the photo. A real stylisation cuts it by an order of magnitude; a net that
  collapsed to flat colour or noise raises it.
* colour spread: per-channel standard deviation of the output relative to the photo's, averaged
  over RGB. Collapse to flat colour drives it to 0.
* edge correlation: Pearson correlation between the HED edge maps of output and photo. Content
  kept means edges kept.
* halo, periodicity and lattice (:mod:`perceptual.evaluation.artefacts`): edge halos, regular cross-hatching and a
  pattern locked to the net's stride, the artefacts that lower the Gram distance cheaply and so pass the first
  figure. The lattice is the upsampling-grid figure at the net's stride (4 px for every style net here), relative
  to the photo's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from perceptual.evaluation.artefacts import edge_halo, lattice, periodicity
from perceptual.evaluation.edges import HEDEdges
from perceptual.losses.gram import gram_matrix
from perceptual.lossnet.vgg import LossNetwork

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
STYLE_NET_STRIDE = 4  # two stride-2 convolutions down, two x2 upsamplings back: the period of a stride lattice


def gram_distance(features: dict[str, Tensor], style_grams: dict[str, Tensor]) -> Tensor:
    """Per-image sum over layers of the squared Frobenius distance between Gram matrices."""
    return sum(((gram_matrix(features[layer]) - gram) ** 2).sum(dim=(1, 2)) for layer, gram in style_grams.items())


def colour_spread_ratio(output: Tensor, photo: Tensor) -> Tensor:
    """Mean over RGB of std(output channel) / std(photo channel), per image ([B,3,H,W] each)."""
    return (output.flatten(2).std(dim=2) / photo.flatten(2).std(dim=2).clamp_min(1e-6)).mean(dim=1)


def pearson(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation per image of two [B, ...] tensors."""
    a = a.flatten(1) - a.flatten(1).mean(dim=1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


@dataclass
class StyleScore:
    """Judge figures of one output (see the module docstring)."""

    gram_ratio: float
    colour_spread: float
    edge_correlation: float
    halo: float
    periodicity: float
    lattice: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class StyleJudge(torch.nn.Module):
    """Scores outputs against their photos and one style image.

    Args:
        style: the style image [3,H,W] in [0, 1], at the resolution the photos are judged at.
        loss_net: feature extractor for the Grams; built from ``weights`` when not given.
        edges: the edge detector; HED from the cached converted weights when not given.
    """

    def __init__(
        self,
        style: Tensor,
        loss_net: LossNetwork | None = None,
        edges: HEDEdges | None = None,
        weights: str = "hed",
        layers: Sequence[str] = STYLE_LAYERS,
        stride: int = STYLE_NET_STRIDE,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.loss_net = loss_net if loss_net is not None else LossNetwork(layers, weights=weights)
        self.edges = edges if edges is not None else HEDEdges()
        self.layers = tuple(layers)
        with torch.no_grad():
            features = self.loss_net(style[None], self.layers)
        self.style_grams = {layer: gram_matrix(features[layer]) for layer in self.layers}

    @torch.no_grad()
    def gram_ratio(self, output: Tensor, photo: Tensor) -> Tensor:
        out = gram_distance(self.loss_net(output, self.layers), self.style_grams)
        return out / gram_distance(self.loss_net(photo, self.layers), self.style_grams).clamp_min(1e-12)

    @torch.no_grad()
    def edge_correlation(self, output: Tensor, photo: Tensor) -> Tensor:
        return pearson(self.edges(output), self.edges(photo))

    @torch.no_grad()
    def score(self, output: Tensor, photo: Tensor) -> StyleScore:
        """Figures for one output [3,H,W] (or [1,3,H,W]) against its photo."""
        output, photo = (x if x.dim() == 4 else x[None] for x in (output, photo))
        return StyleScore(
            gram_ratio=self.gram_ratio(output, photo).item(),
            colour_spread=colour_spread_ratio(output, photo).item(),
            edge_correlation=self.edge_correlation(output, photo).item(),
            halo=edge_halo(output[0], photo[0]),
            periodicity=periodicity(output[0], photo[0]),
            lattice=lattice(output[0], photo[0], self.stride),
        )
