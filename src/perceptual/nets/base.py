"""What every transformation net offers beyond ``forward``: a description of itself that rebuilds it."""

from __future__ import annotations

from typing import Any

from torch import nn


class TransformNet(nn.Module):
    """An image transformation net that records its constructor arguments.

    :meth:`config` is what checkpoints store (:mod:`perceptual.checkpoints`): ``hydra.utils.instantiate`` of it
    builds the same architecture, so inference needs neither the Hydra config tree nor the training code.

    Args:
        **options: the subclass's constructor arguments, as given.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def config(self) -> dict[str, Any]:
        """``_target_`` (this class) and the constructor arguments."""
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", **self.options}
