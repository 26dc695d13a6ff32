"""Optimisation-based image synthesis (Gatys et al.): the baseline feed-forward nets are judged by.

The pixels of an image are optimised against exactly the criterion a feed-forward net trains with,
so objective values and speed compare like for like (Johnson et al. 2016, Table 1 and Figure 5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from perceptual.errors import ConfigError
from perceptual.losses.criterion import LossOutput, PerceptualCriterion

Optimizer = Literal["lbfgs", "adam"]
Init = Literal["content", "noise"]
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")


@dataclass
class OptimizationResult:
    """The synthesised image, the objective after each iteration and the wall time per iteration."""

    image: Tensor
    losses: list[float] = field(default_factory=list)
    terms: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def initial_image(init: Init, content: Tensor, seed: int = 0) -> Tensor:
    """Start from the content image or from uniform noise in [0, 1] (seeded)."""
    if init not in INITS:
        raise ConfigError(f"init={init} is not supported; use one of: {', '.join(INITS)}")
    if init == "content":
        return content.detach().clone()
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(content.shape, generator=generator).to(content)


def optimize_image(
    criterion: PerceptualCriterion,
    start: Tensor,
    target: Tensor | None = None,
    steps: int = 500,
    optimizer: Optimizer = "lbfgs",
    lr: float | None = None,
    style_index: Tensor | None = None,
    on_step: Callable[[int, Tensor, LossOutput], None] | None = None,
) -> OptimizationResult:
    """Minimise ``criterion(x, target=target)`` over the pixels ``x``, starting from ``start``.

    One L-BFGS iteration is one objective evaluation (``max_iter=1`` per step), so iteration counts
    compare with the paper's "500 L-BFGS iterations". Adam's iterates are projected onto [0, 1] after
    each step; L-BFGS's are not (projection breaks its curvature pairs and the objective climbs back
    up), as in Gatys et al.; the returned image is clipped to [0, 1] in both cases.
    ``on_step(iteration, image, losses)`` is called after every iteration (logging, snapshots).
    """
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer={optimizer} is not supported; use one of: {', '.join(OPTIMIZERS)}")
    image = start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=1, history_size=50)
    else:
        opt = torch.optim.Adam([image], lr=lr or 0.02)
    result = OptimizationResult(image=image)
    last: dict[str, LossOutput] = {}

    def closure() -> Tensor:
        opt.zero_grad()
        losses = criterion(image, target=target, style_index=style_index)
        losses.total.backward()
        last["losses"] = LossOutput(losses.total.detach(), {k: v.detach() for k, v in losses.terms.items()})
        return losses.total

    for iteration in range(1, steps + 1):
        start_time = time.perf_counter()
        opt.step(closure)
        if optimizer == "adam":
            with torch.no_grad():
                image.clamp_(0, 1)
        if image.device.type == "cuda":
            torch.cuda.synchronize()
        result.seconds.append(time.perf_counter() - start_time)
        losses = last["losses"]
        result.losses.append(losses.total.item())
        result.terms.append({name: value.item() for name, value in losses.terms.items()})
        if on_step is not None:
            on_step(iteration, image.detach(), losses)
    result.image = image.detach().clamp(0, 1)
    return result
