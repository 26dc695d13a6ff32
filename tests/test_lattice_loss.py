"""The lattice loss: it measures exactly the error's part that repeats every ``period`` px, descent on it removes that
part and nothing else, and an SR run logs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import compose_config, train_run
from perceptual.losses import PIXELS, LatticeLoss, periodic_part, periodic_tile


def grid(period: int, size: int, seed: int = 0) -> torch.Tensor:
    """A zero-mean pattern [1,3,size,size] repeating every ``period`` px."""
    tile = torch.randn(1, 3, period, period, generator=torch.Generator().manual_seed(seed))
    tile -= tile.mean(dim=(-2, -1), keepdim=True)
    return tile.repeat(1, 1, size // period, size // period)


def test_the_tile_is_the_mean_over_each_pixel_phase() -> None:
    error = torch.randn(2, 3, 12, 8)
    tile = periodic_tile(error, 4)
    for i in range(4):
        for j in range(4):
            phase_mean = error[..., i::4, j::4].mean(dim=(-2, -1))
            assert torch.allclose(tile[..., i, j], phase_mean - error.mean(dim=(-2, -1)), atol=1e-6)


def test_a_pure_grid_is_recovered_whole_and_smooth_content_is_not_counted() -> None:
    pattern = grid(4, 64)
    assert torch.allclose(periodic_part(pattern, 4), pattern, atol=1e-6)
    wave = (torch.arange(64) * 2 * torch.pi / 64).sin()  # one cycle across the image: detail, not a 4 px pattern
    smooth = wave[None, None, None, :].expand(1, 3, 64, 64)
    assert periodic_part(smooth, 4).abs().max() < 1e-6


def test_the_loss_is_the_mean_square_of_the_periodic_part_of_the_error() -> None:
    target = torch.rand(2, 3, 32, 32)
    output = target + 0.1 * torch.randn(2, 3, 32, 32) + 0.05 * grid(4, 32)
    loss = LatticeLoss(period=4)({PIXELS: output}, {PIXELS: target})
    expected = periodic_part(output - target, 4).square().mean()
    assert torch.allclose(loss, expected)
    # White noise of the same energy keeps only ~1/(cells) of it in the periodic part; the grid keeps all of its own.
    assert LatticeLoss(period=4)({PIXELS: target + 0.05 * grid(4, 32)}, {PIXELS: target}) == pytest.approx(
        (0.05 * grid(4, 32)).square().mean().item(), rel=1e-4
    )


def test_descent_removes_the_grid_and_leaves_the_rest_of_the_error() -> None:
    target = torch.rand(1, 3, 32, 32)
    noise = 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    image = (target + noise + 0.2 * grid(4, 32)).requires_grad_()
    term = LatticeLoss(period=4)
    optimizer = torch.optim.SGD([image], lr=image.numel() / 4)  # the loss is a mean: halves the grid a step
    values = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = term({PIXELS: image}, {PIXELS: target})
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 1e-6 * values[0]
    left = image.detach() - target
    assert torch.allclose(left, noise - periodic_part(noise, 4), atol=1e-4)


def test_bad_periods_and_images_too_small_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="upsampling factor"):
        LatticeLoss(period=1)
    with pytest.raises(ValueError, match="larger images"):
        periodic_tile(torch.rand(1, 3, 3, 8), 4)


def test_the_preset_trains_an_sr_net_with_the_term_at_the_scale(tmp_path: Path) -> None:
    cfg = compose_config("train", "task=sr", "loss=perceptual_lattice", "scale=8")
    assert cfg.loss.terms.lattice.period == 8 and set(cfg.loss.terms) == {"feature", "tv", "lattice"}
    metrics = train_run(tmp_path, "task=sr", "debug=fast", "trainer.max_steps=2", "loss=perceptual_lattice")
    assert metrics["train/lattice"] > 0


def test_the_style_preset_compares_the_output_with_the_photo_at_the_nets_stride() -> None:
    cfg = compose_config("train", "experiment=zoo_style", "loss=style_lattice")
    assert set(cfg.loss.terms) == {"content", "style", "tv", "lattice"}
    assert cfg.loss.terms.lattice.period == 4 and cfg.loss.terms.lattice.reference == "target"
    assert (
        cfg.loss.terms.style.layer_weights
        == compose_config("train", "experiment=zoo_style").loss.terms.style.layer_weights
    )
