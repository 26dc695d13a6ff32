"""Optimising an image's pixels against a criterion (Gatys et al.): the baseline feed-forward nets are judged by.

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

from perceptual.choices import check_choice
from perceptual.losses.criterion import LossOutput, PerceptualCriterion

Optimizer = Literal["lbfgs", "adam"]
Init = Literal["content", "noise"]
LINE_SEARCH_TRIALS = 25  # most objective evaluations one strong-Wolfe line search may spend


@dataclass
class OptimizationResult:
    """The synthesised image and, per iteration, the objective, its terms, the wall time and the
    number of objective evaluations (forward + backward passes) the iteration ran."""

    image: Tensor
    initial_loss: float = float("nan")
    losses: list[float] = field(default_factory=list)
    terms: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=list)


def initial_image(init: Init, content: Tensor, seed: int = 0) -> Tensor:
    """Start from the content image or from uniform noise in [0, 1] (seeded)."""
    check_choice("init", init, Init)
    if init == "content":
        return content.detach().clone()
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(content.shape, generator=generator).to(content)


class _Objective:
    """``criterion`` at the image's current pixels, as the closure an optimiser calls.

    ``evaluations`` counts the forward + backward passes actually run. With ``lbfgs=True`` it
    (1) hands the optimiser the objective divided by its value at the start, so L-BFGS's absolute
    constants (first step ``min(1, 1/|g|_1)``, curvature-pair threshold ``y's > 1e-10``) act the same
    at any loss scale; and (2) answers a request for the point it evaluated last from memory: L-BFGS
    asks for the point its line search accepted again at the start of its next step, and that point
    is usually the line search's last trial.
    """

    def __init__(
        self,
        criterion: PerceptualCriterion,
        image: Tensor,
        target: Tensor | None,
        style_index: Tensor | None,
        lbfgs: bool,
    ) -> None:
        self.criterion = criterion
        self.image = image
        self.target = target
        self.style_index = style_index
        self.lbfgs = lbfgs
        self.evaluations = 0
        self.initial = float("nan")  # the objective at the first point evaluated
        self.scale = 1.0
        self.losses = LossOutput(torch.tensor(float("nan")), {})  # at the point asked for last
        self._last: tuple[Tensor, Tensor, LossOutput] | None = None

    def __call__(self) -> Tensor:
        if self._last is not None and torch.equal(self._last[0], self.image):
            _, self.image.grad, self.losses = self._last
            return self.losses.total / self.scale
        self.image.grad = None
        losses = self.criterion(self.image, target=self.target, style_index=self.style_index)
        if self.evaluations == 0:
            self.initial = losses.total.item()
            self.scale = (abs(self.initial) or 1.0) if self.lbfgs else 1.0
        (losses.total / self.scale).backward()
        self.evaluations += 1
        self.losses = LossOutput(losses.total.detach(), {k: v.detach() for k, v in losses.terms.items()})
        if self.lbfgs:
            self._last = (self.image.detach().clone(), self.image.grad, self.losses)
        return self.losses.total / self.scale


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

    An iteration is one L-BFGS step (``max_iter=1``): one quasi-Newton direction (history 50) and
    one strong-Wolfe line search along it, so iteration counts compare with the paper's "500 L-BFGS
    iterations". The line search is what makes it converge at any loss scale: the fixed step it
    replaced (``lr=1``, no search) took a Caffe-scale VGG's objective from 7e7 to 5e26 at iteration
    3 and never moved again. A search may evaluate the objective several times (mostly in the first
    iteration; about once per iteration after it), so ``evaluations`` records the forward + backward
    passes each iteration ran: use it, not the iteration count, when comparing cost. ``lr`` is the
    search's first trial step (default 1, the quasi-Newton step). L-BFGS sees the objective divided by
    its initial value (see :class:`_Objective`) and has no stopping tolerance: it runs ``steps``
    iterations. ``losses``/``terms`` hold the objective at the iterate each iteration ends at,
    ``initial_loss`` the one at ``start``.

    Adam (``lr`` default 0.02) takes one evaluation per iteration, its ``losses`` are the objective
    evaluated in each iteration (before its update), and its iterates are projected onto [0, 1]
    after each step. L-BFGS's are not (projection breaks its curvature pairs and the objective
    climbs back up), as in Gatys et al.; the returned image is clipped to [0, 1] in both cases.
    ``on_step(iteration, image, losses)`` is called after every iteration (logging, snapshots).
    """
    check_choice("optimizer", optimizer, Optimizer)
    image = start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [image],
            lr=lr or 1.0,
            max_iter=1,
            max_eval=1 + LINE_SEARCH_TRIALS,  # the default (max_iter * 5 // 4 = 1) would leave no line search
            tolerance_grad=0.0,
            tolerance_change=0.0,
            history_size=50,
            line_search_fn="strong_wolfe",
        )
    else:
        opt = torch.optim.Adam([image], lr=lr or 0.02)
    objective = _Objective(criterion, image, target, style_index, lbfgs=optimizer == "lbfgs")
    result = OptimizationResult(image=image)

    for iteration in range(1, steps + 1):
        start_time = time.perf_counter()
        evaluations = objective.evaluations
        opt.step(objective)
        if optimizer == "lbfgs":
            objective()  # the accepted iterate: from memory unless the search settled before its last trial
        else:
            with torch.no_grad():
                image.clamp_(0, 1)
        if image.device.type != "cpu":
            torch.accelerator.synchronize(image.device)
        result.seconds.append(time.perf_counter() - start_time)
        result.evaluations.append(objective.evaluations - evaluations)
        losses = objective.losses
        result.losses.append(losses.total.item())
        result.terms.append({name: value.item() for name, value in losses.terms.items()})
        if on_step is not None:
            on_step(iteration, image.detach(), losses)
    result.initial_loss = objective.initial
    result.image = image.detach().clamp(0, 1)
    return result
