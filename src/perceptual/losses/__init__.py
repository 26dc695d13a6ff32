"""Loss terms and the criterion that combines them."""

from perceptual.losses.base import PIXELS, LayerwiseLoss, LossTerm, Reference
from perceptual.losses.contextual import ContextualLoss
from perceptual.losses.criterion import LossOutput, PerceptualCriterion
from perceptual.losses.feature import FeatureLoss, PixelLoss
from perceptual.losses.gram import GramStyleLoss, gram_matrix
from perceptual.losses.lattice import LatticeLoss, periodic_part, periodic_tile
from perceptual.losses.tv import TotalVariationLoss, total_variation

__all__ = [
    "PIXELS",
    "ContextualLoss",
    "FeatureLoss",
    "GramStyleLoss",
    "LatticeLoss",
    "LayerwiseLoss",
    "LossOutput",
    "LossTerm",
    "PerceptualCriterion",
    "PixelLoss",
    "Reference",
    "TotalVariationLoss",
    "gram_matrix",
    "periodic_part",
    "periodic_tile",
    "total_variation",
]
