"""Image transformation networks."""

from perceptual.nets.johnson import StyleTransferNet, SuperResolutionNet

__all__ = ["StyleTransferNet", "SuperResolutionNet"]
