"""Contextual loss (Mechrez, Talmi & Zelnik-Manor, ECCV 2018): compares feature *sets*, not aligned maps.

Each spatial position of a feature map is one C-vector; positions are otherwise ignored, so the
loss tolerates misalignment (unaligned SR data, style/domain transfer). For generated features
``x_i`` and target features ``y_j``:

- ``d_ij``: cosine distance ``1 - cos(x_i, y_j)`` after centring both sets on the target's mean
  (over batch and space), or the squared Euclidean distance;
- ``d~_ij = d_ij / (min_k d_ik + 1e-5)``: relative to x_i's nearest target feature;
- ``CX_ij = softmax_j((1 - d~_ij) / h)``: how much more similar y_j is to x_i than the rest;
- ``CX = (1/N_y) sum_j max_i CX_ij`` and the loss ``-log CX`` per sample, averaged over the batch.

Public ports often get this wrong (inverted sign, L2 where cosine is meant, NaNs from ``exp`` of
large numbers, N^2 matrices that exhaust memory). Here the softmax is computed stably, and since
it runs over j within a row, rows of x are independent: :func:`contextual_loss` processes them
in chunks under activation checkpointing, so neither forward nor backward holds a full
N_x x N_y matrix. :func:`contextual_loss_dense` is the literal dense computation, kept as the
reference for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from perceptual.choices import check_choice
from perceptual.errors import ConfigError
from perceptual.losses.base import LayerwiseLoss, Reference

Distance = Literal["cosine", "l2"]
MAX_POSITIONS = 65 * 65  # the paper's cap: larger layers are randomly subsampled to this many positions
DEFAULT_CHUNK_SIZE = 256  # rows of x per chunk; see experiments/contextual_loss/README.md
RELATIVE_EPS = 1e-5  # the paper's epsilon in d~ = d / (min d + eps)
LOG_EPS = 1e-12  # CX >= 1/N_y in exact arithmetic; this only guards log against underflow


def _check_options(h: float, distance: str, chunk_size: int = 1) -> None:
    check_choice("distance", distance, Distance)
    if not h > 0:
        raise ConfigError(f"contextual bandwidth h={h} must be positive")
    if chunk_size < 1:
        raise ConfigError(f"contextual chunk_size={chunk_size} must be at least 1")


def _check(x: Tensor, y: Tensor, h: float, distance: str, chunk_size: int = 1) -> None:
    _check_options(h, distance, chunk_size)
    if x.dim() < 3 or y.dim() < 3 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected [B, C, *spatial] features with equal C; got {tuple(x.shape)} and {tuple(y.shape)}")
    if y.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"the target batch must be 1 or match the output batch {x.shape[0]}; got {y.shape[0]}")


def _prepare(x: Tensor, y: Tensor, distance: Distance) -> tuple[Tensor, Tensor]:
    """Flatten to x: [B, N_x, C] and y: [B, C, N_y] in at least float32 (the relative distance
    divides by ~1e-5, hopeless in half precision); for cosine, centre on the target mean and
    unit-normalise so that ``x @ y`` is the cosine similarity."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    x, y = x.flatten(2).to(dtype), y.flatten(2).to(dtype)
    if distance == "cosine":
        mean = y.mean(dim=(0, 2), keepdim=True)
        x, y = F.normalize(x - mean, dim=1), F.normalize(y - mean, dim=1)
    return x.transpose(1, 2), y


def _row_similarity(x_rows: Tensor, y: Tensor, h: float, distance: Distance) -> Tensor:
    """CX_ij [B, rows, N_y] for the given rows of x: a softmax over j, hence exact per row."""
    products = x_rows @ y
    if distance == "cosine":
        d = 1 - products
    else:
        d = x_rows.pow(2).sum(dim=-1, keepdim=True) + y.pow(2).sum(dim=1, keepdim=True) - 2 * products
    d = d.clamp_min(0)  # rounding makes tiny negatives for (near-)identical vectors
    relative = d / (d.amin(dim=-1, keepdim=True) + RELATIVE_EPS)
    return torch.softmax((1 - relative) / h, dim=-1)


def _column_max(x_rows: Tensor, y: Tensor, h: float, distance: Distance) -> Tensor:
    """max over the given rows i of CX_ij: [B, N_y]."""
    return _row_similarity(x_rows, y, h, distance).amax(dim=1)


def _negative_log_cx(column_max: Tensor) -> Tensor:
    """``-log((1/N_y) sum_j max_i CX_ij)`` per sample, averaged over the batch."""
    return -torch.log(column_max.mean(dim=-1).clamp_min(LOG_EPS)).mean()


def contextual_similarity(x: Tensor, y: Tensor, h: float = 0.5, distance: Distance = "cosine") -> Tensor:
    """The dense matrix CX_ij [B, N_x, N_y] of generated ``x`` against target ``y`` ([B, C, *spatial]).

    Memory is O(N_x N_y): meant for inspection and tests; the loss uses :func:`contextual_loss`.
    """
    _check(x, y, h, distance)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xs, ys = _prepare(x, y, distance)
        return _row_similarity(xs, ys, h, distance)


def contextual_loss_dense(x: Tensor, y: Tensor, h: float = 0.5, distance: Distance = "cosine") -> Tensor:
    """Reference implementation: the definition on full matrices (what :func:`contextual_loss` must equal)."""
    return _negative_log_cx(contextual_similarity(x, y, h, distance).amax(dim=1))


def contextual_loss(
    x: Tensor,
    y: Tensor,
    h: float = 0.5,
    distance: Distance = "cosine",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    """Contextual loss of generated ``x`` against target ``y`` ([B, C, *spatial]; spatial sizes may differ).

    Rows of x are processed ``chunk_size`` at a time, each under activation checkpointing, and
    combined by a running column max, so peak memory is O(chunk_size * N_y) in forward and
    backward instead of O(N_x * N_y). A target batch of 1 is shared by every sample.
    """
    _check(x, y, h, distance, chunk_size)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xs, ys = _prepare(x, y, distance)
        maxima = [
            checkpoint(_column_max, rows, ys, h, distance, use_reentrant=False, preserve_rng_state=False)
            for rows in xs.split(chunk_size, dim=1)
        ]
        return _negative_log_cx(reduce(torch.maximum, maxima))


def sample_positions(
    n_x: int, n_y: int, generator: torch.Generator, max_positions: int = MAX_POSITIONS
) -> tuple[Tensor | None, Tensor | None]:
    """Indices of the spatial positions to keep on each side (``None``: keep all).

    A side with more than ``max_positions`` positions keeps a random ``max_positions`` of them;
    when both sides have the same number of positions they keep the *same* indices, so aligned
    features stay paired.
    """
    if n_x == n_y:
        shared = torch.randperm(n_x, generator=generator)[:max_positions] if n_x > max_positions else None
        return shared, shared
    idx_x = torch.randperm(n_x, generator=generator)[:max_positions] if n_x > max_positions else None
    idx_y = torch.randperm(n_y, generator=generator)[:max_positions] if n_y > max_positions else None
    return idx_x, idx_y


class ContextualLoss(LayerwiseLoss):
    """Contextual loss per layer, summed with the layer weights.

    Layers with more than ``max_positions`` positions are subsampled (see :func:`sample_positions`)
    with a generator seeded by ``seed``: the sequence of samples is reproducible across runs and
    differs between steps, so every position is eventually compared.
    """

    def __init__(
        self,
        weight: float = 1.0,
        layers: Sequence[str] = ("relu3_4",),
        layer_weights: Sequence[float] | None = None,
        reference: Reference | str = Reference.TARGET,
        h: float = 0.5,
        distance: Distance = "cosine",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_positions: int = MAX_POSITIONS,
        seed: int = 0,
    ) -> None:
        _check_options(h, distance, chunk_size)
        if max_positions < 1:
            raise ConfigError(f"contextual max_positions={max_positions} must be at least 1")
        super().__init__(weight, layers, layer_weights, reference)
        self.h = float(h)
        self.distance: Distance = distance
        self.chunk_size = chunk_size
        self.max_positions = max_positions
        self.generator = torch.Generator().manual_seed(seed)

    def compare(self, output: Tensor, reference: Tensor) -> Tensor:
        x, y = output.flatten(2), reference.flatten(2)
        idx_x, idx_y = sample_positions(x.shape[-1], y.shape[-1], self.generator, self.max_positions)
        if idx_x is not None:
            x = x[..., idx_x.to(x.device)]
        if idx_y is not None:
            y = y[..., idx_y.to(y.device)]
        return contextual_loss(x, y, self.h, self.distance, self.chunk_size)
