"""The stylisation judge on images whose answers are known."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptual.evaluation.quality import StyleJudge, colour_spread_ratio, gram_distance, pearson
from perceptual.lossnet.vgg import LossNetwork


def photo(seed: int = 0, size: int = 48) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(1, 3, size // 8, size // 8, generator=generator), size, mode="bilinear")
    return (0.7 * smooth + 0.3 * torch.rand(1, 3, size, size, generator=generator)).clamp(0, 1)


class GradientEdges(nn.Module):
    """Gradient magnitude of the grey image: a stand-in edge detector with obvious answers."""

    def forward(self, image: Tensor) -> Tensor:
        grey = image.mean(dim=1, keepdim=True)
        dx = F.pad(grey[..., :, 1:] - grey[..., :, :-1], (0, 1))
        dy = F.pad(grey[..., 1:, :] - grey[..., :-1, :], (0, 0, 0, 1))
        return (dx**2 + dy**2).sqrt()


@pytest.fixture(scope="module")
def judge() -> StyleJudge:
    return StyleJudge(photo(seed=9)[0], loss_net=LossNetwork(["relu1_2", "relu2_2"], weights="random"),
                      edges=GradientEdges(), layers=("relu1_2", "relu2_2"))  # fmt: skip


def test_pearson_known_values() -> None:
    a = torch.randn(2, 100)
    assert torch.allclose(pearson(a, a), torch.ones(2), atol=1e-6)
    assert torch.allclose(pearson(a, -3 * a + 1), -torch.ones(2), atol=1e-6)


def test_colour_spread_of_scaled_and_flat_images() -> None:
    image = photo()
    mean = image.mean(dim=(2, 3), keepdim=True)
    assert colour_spread_ratio(image, image).item() == pytest.approx(1.0)
    assert colour_spread_ratio(mean + 0.5 * (image - mean), image).item() == pytest.approx(0.5, rel=1e-5)
    assert colour_spread_ratio(mean.expand_as(image), image).item() == pytest.approx(0.0, abs=1e-6)


def test_gram_ratio_is_one_for_the_photo_and_zero_for_the_style(judge: StyleJudge) -> None:
    image = photo(seed=1)
    assert judge.gram_ratio(image, image).item() == pytest.approx(1.0)
    assert judge.gram_ratio(photo(seed=9), image).item() == pytest.approx(0.0, abs=1e-6)
    features = judge.loss_net(image, judge.layers)
    assert gram_distance(features, judge.style_grams).shape == (1,)


def test_score_of_identity_blur_and_flat(judge: StyleJudge) -> None:
    image = photo(seed=2)
    same = judge.score(image[0], image[0])
    assert same.gram_ratio == pytest.approx(1.0) and same.colour_spread == pytest.approx(1.0)
    assert same.edge_correlation == pytest.approx(1.0)
    blurred = F.avg_pool2d(F.pad(image, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    assert 0.0 < judge.score(blurred, image).edge_correlation < 0.9
    flat = judge.score(torch.full_like(image, 0.5), image)
    assert flat.colour_spread == pytest.approx(0.0, abs=1e-6)
    assert flat.edge_correlation == pytest.approx(0.0, abs=1e-6)


def test_lattice_sees_a_pattern_locked_to_the_net_stride(judge: StyleJudge) -> None:
    image = photo(seed=3)
    assert judge.score(image[0], image[0]).lattice == pytest.approx(1.0)
    ys, xs = torch.meshgrid(torch.arange(image.shape[-2]), torch.arange(image.shape[-1]), indexing="ij")
    cell = ((xs % judge.stride == 0) | (ys % judge.stride == 0)).float()  # a line every stride px
    assert judge.score((image + 0.05 * cell).clamp(0, 1), image).lattice > 2.0
