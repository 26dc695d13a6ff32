"""One inference pipeline for every command that runs a trained net on pixels (``stylize.py`` on images and videos,
``evaluate.py``): the net under the chosen fast path (:class:`~perceptual.inference.runner.Runner`), tiled
(:mod:`perceptual.inference.tiling`), with StyleBank's bank choice or fusion (:mod:`perceptual.inference.fusion`), the
stroke size (:mod:`perceptual.inference.stroke`: painting at a working resolution) and the style controls
(:mod:`perceptual.inference.postprocess`), in that order. Each stage is left out when its options
are unset, and a stage that does not apply to the net (fusion for a single-style net, strength for an SR net) is a
one-line error naming the key to drop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from perceptual.errors import ConfigError
from perceptual.inference.fusion import FUSION_OPTIONS, with_fusion
from perceptual.inference.postprocess import with_style_controls
from perceptual.inference.runner import Runner
from perceptual.inference.stroke import with_stroke
from perceptual.inference.tiling import AUTO, with_tiling
from perceptual.nets.base import TransformNet
from perceptual.precision import Precision

Apply = Callable[[Tensor], Tensor]  # [B, 3, H, W] in [0, 1] -> [B, 3, scale * H, scale * W] in [0, 1]


@dataclass(frozen=True)
class PipelineOptions:
    """How to run a net: the keys of ``conf/stylize.yaml`` and ``conf/evaluate.yaml`` that shape inference.

    Attributes:
        device, precision, channels_last, compile: the fast path (see :class:`~perceptual.inference.runner.Runner`).
        tile, tile_overlap: tiled inference (``tile=None``: whole images).
        fusion: StyleBank's ``bank``/``banks``/``weights``/``masks``/``regions``/``k`` keys that are set.
        stroke: ``none`` (the net at the photo's resolution), ``auto`` (the look at the net's training resolution)
            or a factor (stroke size relative to ``auto``); style nets only.
        strength, preserve_color: the style controls (style nets only).
    """

    device: str = "auto"
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    tile: int | None = None
    tile_overlap: int | str = AUTO
    fusion: Mapping[str, Any] = field(default_factory=dict)
    stroke: str | float | None = None
    strength: float = 1.0
    preserve_color: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PipelineOptions:
        """The options a command's config sets (keys it lacks keep their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"fusion"}
        values = {name: cfg[name] for name in names if cfg.get(name) is not None}
        fusion = {key: cfg[key] for key in FUSION_OPTIONS if cfg.get(key) is not None}
        return cls(**values, fusion=fusion)


def build_pipeline(net: TransformNet, options: PipelineOptions, training_size: int | None = None) -> Apply:
    """``net`` as a callable on image batches with ``options`` applied (see the module docstring); ``training_size``
    is the side of the crops the net was trained on (:attr:`CheckpointMetadata.training_size`), which ``stroke``
    reads."""
    if options.compile and options.tile is not None:
        raise ConfigError(
            f"compile=true recompiles for every tile shape tile={options.tile} makes (edge tiles, and each layer pass "
            "of instance-norm nets): drop compile or tile"
        )
    runner = Runner(net, options.device, options.precision, options.channels_last, options.compile)
    apply = with_tiling(runner, net, options.tile, options.tile_overlap)
    apply = with_fusion(apply, net, options.fusion)
    apply = with_stroke(apply, net, options.stroke, training_size)
    return with_style_controls(apply, net, options.strength, options.preserve_color)
