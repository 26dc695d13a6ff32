"""The loss network: a multi-layer VGG feature extractor and its weights (torchvision ImageNet, HED).

``perceptual.lossnet.LossNetwork`` is the name configs use (``loss_net._target_``), and the name every run config
recorded in a checkpoint before the package split uses: keep it importable from here.
"""

from perceptual.lossnet.vgg import LossNetwork

__all__ = ["LossNetwork"]
