"""Options with a fixed set of values: one check, its values read from the option's Literal type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest
import torch

from perceptual.choices import check_choice, choices
from perceptual.errors import ConfigError
from perceptual.evaluation.benchmark import resolve_input
from perceptual.inference.fusion import StyleBankFusion
from perceptual.inference.runner import Runner
from perceptual.losses import PIXELS, ContextualLoss, FeatureLoss, GramStyleLoss, PerceptualCriterion
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet
from perceptual.optimization.pixel import initial_image, optimize_image

Colour = Literal["red", "green"]


def test_check_choice_returns_the_value_or_lists_the_literal_values() -> None:
    assert choices(Colour) == ("red", "green")
    assert check_choice("colour", "green", Colour) == "green"
    assert check_choice("scale", 4, Literal[2, 4, 8]) == 4
    with pytest.raises(ConfigError, match=r"^colour=blue is not supported; use one of: red, green$"):
        check_choice("colour", "blue", Colour)
    with pytest.raises(ConfigError, match=r"^scale=3 is not supported; use one of: 2, 4, 8$"):
        check_choice("scale", 3, Literal[2, 4, 8])
    with pytest.raises(TypeError, match="not a Literal"):
        choices(str)


def _criterion() -> PerceptualCriterion:
    return PerceptualCriterion({"pixel": FeatureLoss(1.0, [PIXELS], reference="target")})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: StyleTransferNet(width=2, norm="group"), "norm=group is not supported; use one of: batch, instance"),
        (lambda: StyleTransferNet(width=2, upsample="bicubic"), "upsample=bicubic .* transpose, nearest, bilinear"),
        (lambda: StyleTransferNet(width=2, padding="zero"), "padding=zero .* paper, same"),
        (lambda: StyleBankNet(width=2, output="sigmoid"), "output=sigmoid .* tanh, clamp"),
        (lambda: SuperResolutionNet(scale=3, width=2), "scale=3 .* 2, 4, 8"),
        (lambda: SuperResolutionNet(width=2, skip="nearest"), "skip=nearest .* none, bicubic"),
        (lambda: GramStyleLoss(norm="l1"), "norm=l1 .* paper, mse"),
        (lambda: FeatureLoss(reference="content"), "reference=content .* target, style"),
        (lambda: ContextualLoss(distance="l1"), "distance=l1 .* cosine, l2"),
        (lambda: LossNetwork(["relu1_1"], arch="vgg11", weights="random"), "loss_net.arch=vgg11 .* vgg16, vgg19"),
        (lambda: LossNetwork(["relu1_1"], weights="random", pooling="min"), "loss_net.pooling=min .* max, avg"),
        (lambda: Runner(StyleTransferNet(width=2), "cpu", precision="int8"), "precision=int8 .* fp32, bf16, fp16"),
        (lambda: initial_image("zeros", torch.zeros(1, 3, 4, 4)), "init=zeros .* content, noise"),
        (lambda: optimize_image(_criterion(), torch.zeros(1, 3, 4, 4), optimizer="sgd"), "optimizer=sgd .* lbfgs"),
        (lambda: resolve_input(None, "urban100", "/data", 4), "benchmark=urban100 .* set5, set14"),
        (lambda: StyleBankFusion(StyleBankNet(2, width=2), banks=[0, 1], regions="slic"), "regions=slic .* kmeans"),
    ],
)
def test_every_option_with_fixed_values_uses_the_check(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()
