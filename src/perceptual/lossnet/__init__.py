"""The loss network: a multi-layer VGG feature extractor and its weights (torchvision ImageNet, HED)."""
