"""What every transformation net offers beyond ``forward``: what callers may do with it (:class:`Capabilities`) and a
description of itself that rebuilds it (:meth:`TransformNet.config`)."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from perceptual.nets.blocks import Norm


@dataclass(frozen=True)
class Capabilities:
    """What a caller of a net needs to know, declared by the net rather than guessed from its type.

    Attributes:
        stride: the input's sides are padded to a multiple of this (the net's downsampling); a video stabiliser keeps
            this grid still, a tiler aligns tiles to it.
        scale: output side / input side (1 for style nets, the SR factor for SR nets).
        banks: style banks a ``style_index`` picks from (0: the net takes no bank index).
        fusion: whether ``forward`` takes fusion ``weights`` over the banks.
        norm: the normalisation after its convs (``instance`` makes tiles need whole-image statistics).
        styled: whether the output is a stylisation of the input (colour and strength controls apply).
    """

    stride: int = 1
    scale: int = 1
    banks: int = 0
    fusion: bool = False
    norm: Norm = "none"
    styled: bool = True


class TransformNet(nn.Module):
    """An image transformation net that records its constructor arguments and declares its :class:`Capabilities`.

    :meth:`config` is what checkpoints store (:mod:`perceptual.checkpoints`): ``hydra.utils.instantiate`` of it
    builds the same architecture, so inference needs neither the Hydra config tree nor the training code. The
    arguments are recorded from the constructor's signature (defaults filled in) of the class that is built, so
    subclasses do not repeat them.
    """

    __jit_unused_properties__ = ["capabilities"]  # noqa: RUF012  # TorchScript compiles forward, not these

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: TransformNet, *args: Any, **kwargs: Any) -> None:
            # The first __init__ entered is the built class's: record its arguments (before it runs, so that it can
            # read them), not those it passes on to a base class.
            if "options" not in self.__dict__:
                bound = signature.bind(self, *args, **kwargs)
                bound.apply_defaults()
                options: dict[str, Any] = {}
                for name, value in list(bound.arguments.items())[1:]:
                    flat = signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD
                    options.update(value if flat else {name: value})
                self.__dict__["options"] = options
            init(self, *args, **kwargs)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def config(self) -> dict[str, Any]:
        """``_target_`` (this class) and the constructor arguments."""
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", **self.options}

    @property
    def capabilities(self) -> Capabilities:
        """What callers may do with this net; subclasses declare theirs."""
        return Capabilities(norm=self.options.get("norm", "none"))
