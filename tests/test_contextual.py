"""Contextual loss: the definition, its invariances, the chunked path against the dense reference."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from perceptual.errors import ConfigError
from perceptual.losses.contextual import (
    MAX_POSITIONS,
    ContextualLoss,
    contextual_loss,
    contextual_loss_dense,
    contextual_similarity,
    sample_positions,
)

VARIANTS = [("cosine", 0.5), ("cosine", 0.1), ("l2", 0.5)]


def _permute_positions(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    b, c, h, w = features.shape
    order = torch.randperm(h * w, generator=generator)
    return features.flatten(2)[..., order].reshape(b, c, h, w)


def _literal_similarity(x: torch.Tensor, y: torch.Tensor, h: float, distance: str) -> torch.Tensor:
    """CX_ij of one sample written out loop by loop from the paper's equations (float64)."""
    xs, ys = x.flatten(2).double(), y.flatten(2).double()
    if distance == "cosine":
        mean = ys.mean(dim=(0, 2), keepdim=True)
        xs, ys = xs - mean, ys - mean
    xs, ys = xs[0].T, ys[0].T
    n_x, n_y = len(xs), len(ys)
    cx = torch.zeros(n_x, n_y, dtype=torch.float64)
    for i in range(n_x):
        if distance == "cosine":
            d = [1 - float(xs[i] @ ys[j]) / float(xs[i].norm() * ys[j].norm()) for j in range(n_y)]
        else:
            d = [float(((xs[i] - ys[j]) ** 2).sum()) for j in range(n_y)]
        w = [math.exp((1 - dij / (min(d) + 1e-5)) / h) for dij in d]
        for j in range(n_y):
            cx[i, j] = w[j] / sum(w)
    return cx


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_matches_the_papers_equations(distance: str) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(1, 5, 3, 2), torch.randn(1, 5, 2, 2)
    expected = _literal_similarity(x, y, 0.5, distance)
    cx = contextual_similarity(x.double(), y.double(), 0.5, distance)[0]
    torch.testing.assert_close(cx, expected)
    expected_loss = -math.log(expected.max(dim=0).values.mean())
    assert contextual_loss(x.double(), y.double(), 0.5, distance, chunk_size=2).item() == pytest.approx(expected_loss)


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_identical_distinct_features_give_zero_loss(distance: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 6)
    assert contextual_loss(x, x.clone(), distance=distance).item() < 1e-3


@pytest.mark.parametrize(("distance", "h"), VARIANTS)
def test_invariant_to_spatial_permutations(distance: str, h: float) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 4, 7)
    loss = contextual_loss(x, y, h, distance, chunk_size=7)
    torch.testing.assert_close(contextual_loss(_permute_positions(x, generator), y, h, distance, chunk_size=7), loss)
    torch.testing.assert_close(contextual_loss(x, _permute_positions(y, generator), h, distance, chunk_size=7), loss)


@pytest.mark.parametrize(("distance", "h"), VARIANTS)
def test_similarity_rows_are_distributions(distance: str, h: float) -> None:
    torch.manual_seed(0)
    cx = contextual_similarity(torch.randn(2, 8, 4, 5), torch.randn(2, 8, 3, 3), h, distance)
    assert cx.shape == (2, 20, 9)
    torch.testing.assert_close(cx.sum(dim=-1), torch.ones(2, 20))
    assert (cx > 0).all() and (cx <= 1).all()


def test_cosine_is_invariant_to_shared_shift_and_positive_scale() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    shift = torch.randn(1, 8, 1, 1) * 3
    loss = contextual_loss(x, y)
    torch.testing.assert_close(contextual_loss(x + shift, y + shift), loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(contextual_loss(x * 7.5, y * 7.5), loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(contextual_loss(2.5 * x - 1, 2.5 * y - 1), loss, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_asymmetric(distance: str) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 6, 6)
    assert abs(contextual_loss(x, y, distance=distance) - contextual_loss(y, x, distance=distance)) > 1e-2


@pytest.mark.parametrize(("distance", "h"), VARIANTS)
def test_grows_with_target_noise(distance: str, h: float) -> None:
    torch.manual_seed(0)
    y = torch.randn(2, 16, 8, 8)
    noise = torch.randn_like(y)
    losses = [contextual_loss(y + sigma * noise, y, h, distance).item() for sigma in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in itertools.pairwise(losses)), losses


@pytest.mark.parametrize(("distance", "h"), VARIANTS)
@pytest.mark.parametrize("chunk_size", [1, 8, 1000])
def test_chunked_matches_dense_values_and_gradients(distance: str, h: float, chunk_size: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 7, requires_grad=True)
    y = torch.randn(2, 8, 6, 4, requires_grad=True)
    dense = contextual_loss_dense(x, y, h, distance)
    dense_grads = torch.autograd.grad(dense, (x, y))
    chunked = contextual_loss(x, y, h, distance, chunk_size=chunk_size)
    chunked_grads = torch.autograd.grad(chunked, (x, y))
    torch.testing.assert_close(chunked, dense)
    for got, expected in zip(chunked_grads, dense_grads):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_gradcheck_float64(distance: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: contextual_loss(a, b, 0.5, distance, chunk_size=4), (x, y))


def test_chunked_backward_keeps_no_full_matrix() -> None:
    """Between forward and backward only O(N C) tensors stay alive: the N x N work is recomputed per chunk."""
    torch.manual_seed(0)
    n, channels = 400, 8

    def saved_elements(loss_fn) -> int:
        sizes: list[int] = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            loss_fn(torch.randn(1, channels, n, 1, requires_grad=True), torch.randn(1, channels, n, 1))
        return max(sizes)

    assert saved_elements(contextual_loss_dense) >= n * n
    assert saved_elements(lambda x, y: contextual_loss(x, y, chunk_size=50)) <= n * channels


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize(
    ("x", "y"),
    [
        (torch.zeros(2, 8, 4, 4), torch.zeros(2, 8, 4, 4)),
        (torch.full((2, 8, 4, 4), 3.0), torch.full((2, 8, 4, 4), 3.0)),
        (torch.full((2, 8, 4, 4), 3.0), torch.full((2, 8, 3, 3), -1.0)),
        (torch.zeros(2, 8, 4, 4), torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(0))),
        (torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(2, 8, 4, 4)),
    ],
    ids=["zeros", "equal-constants", "different-constants", "zero-output", "zero-target"],
)
def test_degenerate_maps_give_no_nan(distance: str, x: torch.Tensor, y: torch.Tensor) -> None:
    x, y = x.clone().requires_grad_(), y.clone().requires_grad_()
    loss = contextual_loss(x, y, distance=distance, chunk_size=5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_target_batch_of_one_is_shared() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(3, 8, 4, 4), torch.randn(1, 8, 5, 5)
    expected = torch.stack([contextual_loss(x[i : i + 1], y) for i in range(3)]).mean()
    torch.testing.assert_close(contextual_loss(x, y), expected)


def test_half_precision_inputs_are_computed_in_float32() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(1, 8, 4, 4).bfloat16(), torch.randn(1, 8, 4, 4).bfloat16()
    loss = contextual_loss(x, y)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, contextual_loss(x.float(), y.float()))


def test_no_sampling_up_to_the_cap() -> None:
    generator = torch.Generator().manual_seed(0)
    assert sample_positions(MAX_POSITIONS, MAX_POSITIONS, generator) == (None, None)
    assert sample_positions(100, 3000, generator) == (None, None)


def test_sampling_above_the_cap_shares_indices() -> None:
    idx_x, idx_y = sample_positions(80 * 80, 80 * 80, torch.Generator().manual_seed(0))
    assert idx_x is idx_y or torch.equal(idx_x, idx_y)
    assert idx_x.shape == (MAX_POSITIONS,)
    assert len(idx_x.unique()) == MAX_POSITIONS and idx_x.min() >= 0 and idx_x.max() < 80 * 80


def test_sampling_different_sizes_caps_each_side() -> None:
    idx_x, idx_y = sample_positions(6400, 5000, torch.Generator().manual_seed(0))
    assert idx_x.shape == idx_y.shape == (MAX_POSITIONS,) and idx_y.max() < 5000
    idx_x, idx_y = sample_positions(6400, 100, torch.Generator().manual_seed(0))
    assert idx_x.shape == (MAX_POSITIONS,) and idx_y is None


def test_sampling_is_reproducible_from_the_seed() -> None:
    first = sample_positions(6400, 6400, torch.Generator().manual_seed(3))[0]
    again = sample_positions(6400, 6400, torch.Generator().manual_seed(3))[0]
    other = sample_positions(6400, 6400, torch.Generator().manual_seed(4))[0]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_term_samples_large_layers_with_its_seed() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    term = ContextualLoss(layers=["relu3_4"], max_positions=10, seed=5)
    idx, _ = sample_positions(36, 36, torch.Generator().manual_seed(5), max_positions=10)
    expected = contextual_loss(x.flatten(2)[..., idx], y.flatten(2)[..., idx])
    torch.testing.assert_close(term({"relu3_4": x}, term.prepare_reference({"relu3_4": y})), expected)
    again = ContextualLoss(layers=["relu3_4"], max_positions=10, seed=5)
    torch.testing.assert_close(again({"relu3_4": x}, again.prepare_reference({"relu3_4": y})), expected)


@pytest.mark.parametrize("reference", ["target", "style"])
def test_term_through_the_loss_term_interface(reference: str) -> None:
    torch.manual_seed(0)
    output = {"relu2_2": torch.randn(2, 8, 6, 6, requires_grad=True), "relu3_4": torch.randn(2, 16, 3, 3)}
    size = (6, 6, 3, 3) if reference == "target" else (7, 5, 4, 2)
    target = {"relu2_2": torch.randn(2, 8, *size[:2]), "relu3_4": torch.randn(2, 16, *size[2:]), "relu1_1": None}
    term = ContextualLoss(
        weight=3.0, layers=["relu2_2", "relu3_4"], layer_weights=[1.0, 0.25], reference=reference, h=0.2
    )
    prepared = term.prepare_reference(target)
    assert set(prepared) == {"relu2_2", "relu3_4"}
    loss = term(output, prepared)
    expected = contextual_loss(output["relu2_2"], target["relu2_2"], 0.2) + 0.25 * contextual_loss(
        output["relu3_4"], target["relu3_4"], 0.2
    )
    torch.testing.assert_close(loss, expected)
    assert term.weight == 3.0 and term.reference == reference
    loss.backward()
    assert torch.isfinite(output["relu2_2"].grad).all() and output["relu2_2"].grad.abs().sum() > 0


def test_invalid_options_are_config_errors() -> None:
    x = torch.randn(1, 4, 2, 2)
    with pytest.raises(ConfigError, match="distance"):
        ContextualLoss(distance="l1")
    with pytest.raises(ConfigError, match="h="):
        ContextualLoss(h=0)
    with pytest.raises(ConfigError, match="chunk_size"):
        contextual_loss(x, x, chunk_size=0)
    with pytest.raises(ValueError, match="equal C"):
        contextual_loss(x, torch.randn(1, 3, 2, 2))
