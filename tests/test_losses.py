from __future__ import annotations

import pytest
import torch

from perceptual.errors import ConfigError
from perceptual.losses import (
    PIXELS,
    FeatureLoss,
    GramStyleLoss,
    PerceptualCriterion,
    PixelLoss,
    TotalVariationLoss,
    gram_matrix,
    total_variation,
)
from perceptual.lossnet.vgg import LossNetwork


def test_gram_matrix_formula() -> None:
    f = torch.randn(2, 4, 3, 5)
    psi = f.reshape(2, 4, 15)
    expected = torch.einsum("bci,bdi->bcd", psi, psi) / (4 * 3 * 5)
    torch.testing.assert_close(gram_matrix(f), expected)


def test_gram_is_invariant_to_spatial_permutations() -> None:
    f = torch.randn(1, 6, 4, 4)
    shuffled = f.flatten(2)[..., torch.randperm(16)].reshape(1, 6, 4, 4)
    torch.testing.assert_close(gram_matrix(f), gram_matrix(shuffled))


@pytest.mark.parametrize("norm", ["paper", "mse"])
def test_gram_style_loss_normalisations(norm: str) -> None:
    out, ref = torch.randn(2, 8, 4, 4), torch.randn(1, 8, 6, 6)
    term = GramStyleLoss(layers=["x"], norm=norm)
    prepared = term.prepare_reference({"x": ref})
    value = term({"x": out}, {"x": prepared["x"].expand(2, 8, 8)})
    diff = gram_matrix(out) - gram_matrix(ref)
    frobenius = (diff**2).sum(dim=(1, 2)).mean()
    expected = frobenius if norm == "paper" else frobenius / 8**2
    torch.testing.assert_close(value, expected)


def test_losses_are_zero_for_identical_inputs() -> None:
    f = torch.randn(2, 3, 8, 8)
    assert FeatureLoss(layers=["x"])({"x": f}, {"x": f}) == 0
    gram = GramStyleLoss(layers=["x"])
    assert gram({"x": f}, gram.prepare_reference({"x": f})) == 0
    assert PixelLoss(blur_sigma=1.0)({PIXELS: f}, PixelLoss(blur_sigma=1.0).prepare_reference({PIXELS: f})) == 0


def test_feature_loss_formula_and_layer_weights() -> None:
    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    c, d = torch.randn(2, 2, 5, 5), torch.randn(2, 2, 5, 5)
    term = FeatureLoss(layers=["p", "q"], layer_weights=[2.0, 0.5])
    expected = 2.0 * ((a - b) ** 2).sum() / (2 * 4 * 3 * 3) + 0.5 * ((c - d) ** 2).sum() / (2 * 2 * 5 * 5)
    torch.testing.assert_close(term({"p": a, "q": c}, {"p": b, "q": d}), expected)
    with pytest.raises(ValueError, match="one weight per layer"):
        FeatureLoss(layers=["p", "q"], layer_weights=[1.0])


def test_total_variation_hand_computed() -> None:
    image = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])
    # horizontal diffs 1, 4; vertical diffs 3, 6
    assert total_variation(image, power=1) == pytest.approx(1 + 4 + 3 + 6)
    assert total_variation(image, power=2) == pytest.approx(1 + 16 + 9 + 36)
    assert TotalVariationLoss(weight=1.0, power=2)({PIXELS: torch.ones(2, 3, 5, 5)}) == 0


class CountingLossNetwork(LossNetwork):
    """Counts forward passes and the layers each pass was asked for."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls: list[list[str]] = []

    def forward(self, image, layers=None):
        self.calls.append(sorted(layers or self.layers))
        return super().forward(image, layers)


def make_criterion(**weights: float) -> PerceptualCriterion:
    terms = {
        "content": FeatureLoss(weights.get("content", 1.0), layers=["relu2_2"]),
        "style": GramStyleLoss(weights.get("style", 10.0), layers=["relu1_2", "relu3_3"]),
        "tv": TotalVariationLoss(weights.get("tv", 0.1)),
    }
    return PerceptualCriterion(terms, loss_net=lambda layers: CountingLossNetwork(layers=layers, weights="random"))


def test_criterion_runs_one_loss_network_pass_per_tensor() -> None:
    criterion = make_criterion()
    net = criterion.loss_net
    assert net.layers == ["relu1_2", "relu2_2", "relu3_3"]
    criterion.set_styles([torch.rand(3, 24, 24)])
    assert len(net.calls) == 1  # style statistics computed once
    output = torch.rand(2, 3, 16, 16, requires_grad=True)
    for _ in range(3):
        losses = criterion(output, target=torch.rand(2, 3, 16, 16))
    assert len(net.calls) == 1 + 2 * 3  # one pass over the output, one over the target, per call
    assert net.calls[-1] == ["relu2_2"]  # target pass truncated to what target terms need
    assert net.calls[-2] == ["relu1_2", "relu2_2", "relu3_3"]
    losses.total.backward()
    assert output.grad.abs().sum() > 0


def test_criterion_weights_terms_and_sums_them() -> None:
    torch.manual_seed(0)
    criterion = make_criterion(content=2.0, style=3.0, tv=0.5)
    style = torch.rand(3, 16, 16)
    criterion.set_styles([style])
    output, target = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    losses = criterion(output, target=target)
    net = criterion.loss_net
    out_f, tgt_f, sty_f = net(output), net(target), net(style[None])
    content = FeatureLoss(layers=["relu2_2"]).compare(out_f["relu2_2"], tgt_f["relu2_2"])
    torch.testing.assert_close(losses.terms["content"], 2.0 * content)
    torch.testing.assert_close(losses.terms["tv"], 0.5 * total_variation(output))
    style_term = GramStyleLoss(layers=["relu1_2", "relu3_3"])
    expected_style = style_term(out_f, style_term.prepare_reference(sty_f))
    torch.testing.assert_close(losses.terms["style"], 3.0 * expected_style)
    torch.testing.assert_close(losses.total, sum(losses.terms.values()))


def test_zero_weight_terms_are_dropped_and_empty_loss_rejected() -> None:
    criterion = make_criterion(style=0.0)
    assert set(criterion.terms) == {"content", "tv"}
    assert criterion.loss_net.layers == ["relu2_2"]
    with pytest.raises(ConfigError, match="no term with a non-zero weight"):
        PerceptualCriterion({"tv": TotalVariationLoss(weight=0)})


def test_style_index_selects_each_samples_style() -> None:
    criterion = make_criterion(content=0.0, tv=0.0)
    styles = [torch.rand(3, 16, 16), torch.rand(3, 20, 20)]
    criterion.set_styles(styles)
    output = torch.rand(2, 3, 16, 16)
    mixed = criterion(output, style_index=torch.tensor([1, 0])).total
    single = [make_criterion(content=0.0, tv=0.0) for _ in styles]
    for c, s in zip(single, styles):
        c.loss_net = criterion.loss_net
        c.set_styles([s])
    expected = (single[1](output[:1]).total + single[0](output[1:]).total) / 2
    torch.testing.assert_close(mixed, expected)
    with pytest.raises(ConfigError, match="out of range"):
        criterion(output, style_index=torch.tensor([0, 2]))


def test_criterion_names_the_layers_its_terms_read() -> None:
    terms = {
        "content": FeatureLoss(1.0, ["relu3_3", "relu2_2"]),
        "pixel": PixelLoss(1.0),  # the image itself, not a loss-network layer
        "style": GramStyleLoss(1.0, ["relu1_2", "relu2_2"]),
        "style_deep": GramStyleLoss(1.0, ["relu4_3"]),
        "tv": TotalVariationLoss(1.0),
    }
    criterion = PerceptualCriterion(terms, loss_net=lambda layers: LossNetwork(layers, weights="random"))
    assert criterion.network_layers("target") == ["relu2_2", "relu3_3"]
    assert criterion.network_layers("style") == ["relu1_2", "relu2_2", "relu4_3"]
    assert criterion.network_layers(None) == []
    assert criterion.gram_layer_sets() == [["relu1_2", "relu2_2"], ["relu4_3"]]
