"""Style controls applied after the net: colour preservation and strength, for every style net alike.

Both are a step ``(input, net output) -> output`` on pixels, independent of how the output was made: whole images,
tiles or video frames, a Johnson net or a StyleBank fusion. One meaning for every net:

- ``preserve_color``: the output's luma with the input's chroma (:func:`perceptual.imaging.color.keep_chroma`).
- ``strength=s``: ``input + s * (output - input)``, a pixel blend from the input (0) to the full stylisation (1);
  the distance to the input is exactly ``s`` times the full one.

Colour preservation comes first, so that ``strength`` fades a colour-preserved stylisation, still in the input's
colours. Super-resolution outputs are larger than their inputs and have no stylisation to fade or recolour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from perceptual.errors import ConfigError
from perceptual.imaging.color import keep_chroma
from perceptual.nets.base import TransformNet


@dataclass(frozen=True)
class StyleControls:
    """``strength`` in [0, 1] (1: the net's output) and ``preserve_color``; call with (input, net output)."""

    strength: float = 1.0
    preserve_color: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"strength={self.strength} is out of range; use 0..1 (0: the input, 1: fully stylised)")

    @property
    def changes_output(self) -> bool:
        return self.preserve_color or self.strength != 1.0

    def __call__(self, content: Tensor, stylised: Tensor) -> Tensor:
        """[B, 3, H, W] input and net output in [0, 1] -> the controlled output, on the output's device."""
        if content.shape != stylised.shape:
            raise ValueError(f"input {tuple(content.shape)} and output {tuple(stylised.shape)} differ in shape")
        content = content.to(stylised)
        if self.preserve_color:
            stylised = keep_chroma(content, stylised)
        return stylised if self.strength == 1.0 else content.lerp(stylised, self.strength)


def with_style_controls(
    apply: Callable[[Tensor], Tensor], net: TransformNet, strength: float = 1.0, preserve_color: bool = False
) -> Callable[[Tensor], Tensor]:
    """``apply`` (images -> ``net``'s outputs) followed by the :class:`StyleControls`; ``apply`` itself when they
    change nothing. Refuses super-resolution nets, whose output has another size and no style."""
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise ConfigError(
            f"strength={strength!r} is not a number; use 0..1 (0: the input, 1: fully stylised)"
        ) from None
    controls = StyleControls(strength, bool(preserve_color))
    if not controls.changes_output:
        return apply
    if not net.capabilities.styled:
        raise ConfigError(
            f"strength and preserve_color apply to style nets; this checkpoint holds a {type(net).__name__}, whose "
            "upscaled output has no style to fade or recolour: drop them"
        )
    return lambda images: controls(images, apply(images))
