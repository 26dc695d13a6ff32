"""``task.compile``: the training step's loss under ``torch.compile`` as two graphs, the net and the criterion (the
frozen loss network and every term), so that AOTAutograd compiles the backward pass too.

Why two graphs and not one: with bf16 autocast on a CPU, the single graph of net and criterion returned non-finite
gradients for the net's instance norms after about 80 steps of fine-tuning a style net (the loss itself finite), and
the training went NaN. From the same saved state, eager, the net's graph alone, the criterion's graph alone and the
two graphs chained all give finite gradients equal to eager's.

The task's modules are not wrapped (a compiled function is kept beside them), so checkpoints keep their keys (no
``_orig_mod.`` prefixes) and load in ``stylize.py`` and on resume, compiled or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from perceptual.errors import ConfigError
from perceptual.losses.criterion import LossOutput

CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
CUDA_GRAPH_MODES = frozenset({"reduce-overhead", "max-autotune"})  # torch.compile modes that record CUDA graphs
LossFunction = Callable[[Tensor, Tensor], LossOutput]
Criterion = Callable[..., LossOutput]  # criterion(output, target=target)


def compile_mode(value: bool | str) -> CompileMode | None:
    """``task.compile``: false -> None (eager), true -> ``default``, or one of torch.compile's modes by name."""
    if value is False or value is None:
        return None
    if value is True:
        return "default"
    if value not in get_args(CompileMode):
        raise ConfigError(
            f"task.compile={value} is not supported; use one of: true, false, {', '.join(get_args(CompileMode))}"
        )
    return value


class CompiledLosses:
    """``criterion(net(net_input), target=target)``, each compiled with ``mode`` for ``device``.

    CUDA graphs replay one recorded shape: a mode that records them needs a GPU and a batch shape that never changes
    (a changed shape, e.g. a batch shrunk by unreadable images, is a one-line error naming the fix). The other modes
    recompile once for a new shape and then treat the changed sizes as dynamic.
    """

    def __init__(self, net: nn.Module, criterion: Criterion, mode: CompileMode, device: torch.device) -> None:
        self.cuda_graphs = mode in CUDA_GRAPH_MODES
        if self.cuda_graphs and device.type != "cuda":
            raise ConfigError(
                f"task.compile={mode} records CUDA graphs, which need a CUDA device (this run is on {device.type}); "
                "use task.compile=true"
            )
        self.mode = mode
        dynamic = False if self.cuda_graphs else None
        self.net = torch.compile(net, mode=mode, dynamic=dynamic)
        self.criterion = torch.compile(criterion, mode=mode, dynamic=dynamic)
        self.shape: torch.Size | None = None

    def __call__(self, net_input: Tensor, target: Tensor) -> LossOutput:
        if self.cuda_graphs:
            self.shape = self.shape or net_input.shape
            if net_input.shape != self.shape:
                raise ConfigError(
                    f"task.compile={self.mode} replays CUDA graphs recorded for batches of {tuple(self.shape)}, but a "
                    f"batch of {tuple(net_input.shape)} came (unreadable images dropped, or a short last batch); "
                    "use task.compile=true, which recompiles for a new shape"
                )
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the last replay's outputs may be overwritten
            losses = self.losses(net_input, target)
            # The logged values outlive the next replay, which overwrites the graph's outputs in place.
            return LossOutput(losses.total, {name: value.clone() for name, value in losses.terms.items()})
        return self.losses(net_input, target)

    def losses(self, net_input: Tensor, target: Tensor) -> LossOutput:
        return self.criterion(self.net(net_input), target=target)
