"""Tiled inference whose output equals the untiled output, in memory bounded by the tile.

A transformation net computes each output pixel from the input pixels within its *receptive radius* R. A tile's
output is therefore exact on its *core* when the net reads a *window* reaching ``halo >= R`` pixels beyond the core
on every side that lies inside the image; on a side at the image border the window stops at the border, where the
net pads the tile exactly as it pads the whole image (reflection padding, pad-to-multiple). Windows start at
multiples of the net's stride, so strided convs sample the same grid in a tile as in the whole image, and the
tiled result is the untiled one up to float rounding.

Instance norm normalises with statistics of the whole image, which no tile sees. They are gathered exactly, one
layer at a time in the order the forward reaches them: in pass k every tile runs up to the k-th instance norm
(layers before it already normalise with their whole-image statistics), adds the sums over the feature positions it
owns and stops there; the last pass runs every tile to the end with every statistic fixed. A net with K instance
norms takes K + 1 passes, the early ones truncated (about 7x the untiled compute for Johnson's style net) but never
more memory than one tile's. Batch norm in eval mode is a fixed affine map and needs nothing.

The radius and the feature geometry are measured on the net itself (:func:`probe`), so every net in
:mod:`perceptual.nets` tiles without a table of its layers.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from perceptual.errors import ConfigError
from perceptual.nets.base import TransformNet

log = logging.getLogger(__name__)

AUTO = "auto"
PROBE_START = 64  # first probe size (px); doubled until the response to an impulse stays clear of the border
PROBE_LIMIT = 1024  # a net whose response still reaches the border here mixes the whole image: it cannot be tiled


@dataclass(frozen=True)
class Axis:
    """Where a feature map lies over the input along one axis: map index ``j`` sits at input pixel
    ``step * j - offset`` (``step``: input pixels per map pixel; ``offset``: the margin the net padded on)."""

    step: Fraction
    offset: Fraction

    def first_index(self, pixel: int) -> int:
        """The first map index at or after input ``pixel``."""
        return math.ceil((pixel + self.offset) / self.step)

    def shift(self, pixel: int) -> int:
        """The whole map's index of the first map pixel of a window starting at input ``pixel``: a multiple of the
        net's stride, hence of every map's step."""
        return int(pixel / self.step)


@dataclass(frozen=True)
class NetGeometry:
    """What tiling needs to know about a net: its stride, its upscaling factor, its receptive radius (input pixels)
    and where the feature map of each instance norm that uses image statistics lies, by module name (rows, columns)."""

    stride: int
    scale: int
    radius: int
    norms: dict[str, tuple[Axis, Axis]]


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in input pixels: the net reads ``[start, stop)`` and its output is kept on
    ``[core_start, core_stop)``; ``last`` marks the span at the far border."""

    start: int
    stop: int
    core_start: int
    core_stop: int
    last: bool

    def owned(self, axis: Axis) -> slice:
        """The indices of this window's feature map whose pixels lie in the core: each position of the whole map is
        owned by exactly one span (the first and the last span also own the margins beyond the image)."""
        shift = axis.shift(self.start)
        start = 0 if self.core_start == 0 else axis.first_index(self.core_start) - shift
        return slice(start, None if self.last else axis.first_index(self.core_stop) - shift)


def spans(size: int, tile: int, halo: int, stride: int) -> list[Span]:
    """Cover ``[0, size)`` with windows of at most ``tile`` pixels whose cores are multiples of ``stride`` and that
    reach ``halo`` pixels beyond their cores inside the image; one window when ``size`` fits in a tile."""
    if size <= tile:
        return [Span(0, size, 0, size, True)]
    core = (tile - 2 * halo) // stride * stride
    return [
        Span(max(0, start - halo), min(size, start + core + halo), start, min(size, start + core), start + core >= size)
        for start in range(0, size, core)
    ]


def uses_image_statistics(module: nn.Module) -> bool:
    """An instance norm that normalises with its input's statistics (not with running estimates)."""
    return isinstance(module, nn.InstanceNorm2d) and (module.training or not module.track_running_stats)


def net_stride(net: nn.Module) -> int:
    """The product of the strides of the net's convolutions: windows start on multiples of it."""
    return math.prod(max(module.stride) for module in net.modules() if isinstance(module, nn.Conv2d))


def probe_kwargs(net: TransformNet) -> dict[str, Any]:
    """Keyword arguments that make ``net`` run every branch it has: a StyleBank net with every bank fused, so the
    radius and the geometry cover any bank or fusion a caller picks."""
    if net.capabilities.fusion:
        return {"weights": torch.ones(1, net.capabilities.banks, 1, 1, dtype=torch.float64)}
    return {}


class _ShapeRecorder(nn.Identity):
    """The probe's stand-in for an instance norm: passes its input on and remembers its spatial size."""

    size: tuple[int, int] | None = None

    def forward(self, x: Tensor) -> Tensor:
        self.size = (x.shape[-2], x.shape[-1])
        return x


def _ones_like_conv(conv: nn.Conv2d | nn.ConvTranspose2d) -> nn.Module:
    """A one-channel conv with ``conv``'s kernel size, stride, padding and dilation, all weights one, no bias."""
    options = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation, "bias": False}
    if isinstance(conv, nn.ConvTranspose2d):
        ones = nn.ConvTranspose2d(1, 1, conv.kernel_size, output_padding=conv.output_padding, **options)
    else:
        ones = nn.Conv2d(1, 1, conv.kernel_size, padding_mode=conv.padding_mode, **options)
    nn.init.ones_(ones.weight)
    return ones


def _dependency_copy(net: nn.Module) -> tuple[nn.Module, dict[str, _ShapeRecorder]]:
    """A float64 CPU copy of ``net`` with one channel whose output depends on an input pixel exactly where ``net``'s
    output can: every conv replaced by a one-channel conv of all-ones weights without bias, norms removed. A
    non-negative input keeps every activation non-negative, so no ReLU cuts a path and nothing cancels; values grow
    by at most the kernel area per layer. The instance norms become :class:`_ShapeRecorder` s, by name."""
    copied = copy.deepcopy(net).to("cpu", torch.float64).eval()
    recorders: dict[str, _ShapeRecorder] = {}
    for name, module in list(copied.named_modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            copied.set_submodule(name, _ones_like_conv(module).to(torch.float64))
        elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
            recorder = _ShapeRecorder()
            copied.set_submodule(name, recorder)
            if uses_image_statistics(module):
                recorders[name] = recorder
    return copied, recorders


@torch.no_grad()
def probe(net: nn.Module) -> NetGeometry:
    """Measure ``net``'s receptive radius and the geometry of its instance-norm feature maps.

    The radius comes from a one-channel copy of the net (see :func:`_dependency_copy`), which responds to a one-pixel
    impulse on a black image at every output pixel that the net's output there can depend on. One impulse per phase
    modulo the stride (on the diagonal: with all-ones kernels the reach along an axis depends on that axis's phase
    only) gives the largest distance, in input pixels, from the impulse to a responding output pixel (output pixel
    ``o`` of an x``scale`` net sits at input pixel ``o // scale``). The probe image doubles from 64 px until the
    response stays clear of its border.

    The same copy records each instance norm's map size for two input sizes a stride apart; their difference gives
    the input pixels per map pixel, the rest the margin padded on each side (the nets pad symmetrically, apart from
    pad-to-multiple, which a multiple of the stride does not trigger).
    """
    stride = net_stride(net)
    copied, recorders = _dependency_copy(net)
    kwargs = probe_kwargs(net)
    size = PROBE_START
    while True:
        batch = torch.zeros(stride + 1, 1, size, size, dtype=torch.float64)  # sample 0: the black image
        centre = size // 2
        for phase in range(stride):
            batch[phase + 1, 0, centre + phase, centre + phase] = 1.0
        output = copied(batch, **kwargs)
        response = (output[1:] != output[:1]).any(dim=1)  # [stride, H', W']
        rows, cols = response.any(dim=-1), response.any(dim=-2)
        if not (rows[:, 0] | rows[:, -1] | cols[:, 0] | cols[:, -1]).any():
            break
        size *= 2
        if size > PROBE_LIMIT:
            raise ConfigError(
                f"{type(net).__name__}: an output pixel depends on input more than {PROBE_LIMIT // 2} px away "
                "(the net mixes the whole image), so it cannot be tiled exactly; use tile=null"
            )
    scale = output.shape[-1] // size
    radius = 0
    for phase in range(stride):
        for hits in (rows[phase], cols[phase]):
            reached = hits.nonzero()[:, 0] // scale
            radius = max(radius, int((reached - (centre + phase)).abs().max()))
    sizes = {name: recorder.size for name, recorder in recorders.items() if recorder.size is not None}
    copied(torch.zeros(1, 1, size + stride, size + stride, dtype=torch.float64), **kwargs)
    norms = {
        name: tuple(_axis(size, stride, sizes[name][i], recorders[name].size[i]) for i in (0, 1)) for name in sizes
    }
    return NetGeometry(stride, scale, radius, norms)


def _axis(size: int, stride: int, length: int, longer: int) -> Axis:
    """An :class:`Axis` from a map's lengths for inputs of ``size`` and ``size + stride`` pixels."""
    step = Fraction(stride, longer - length)
    return Axis(step, (length * step - size) / 2)


class _Gathered(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Ends a statistics pass at the instance norm that has just added a tile's sums."""

    def __init__(self, norm: WholeImageInstanceNorm) -> None:
        super().__init__(norm.name)
        self.norm = norm


class WholeImageInstanceNorm(nn.Module):
    """Stand-in for an ``nn.InstanceNorm2d`` in tiled inference: normalises with the whole image's per-sample,
    per-channel mean and (biased) variance, which it first sums tile by tile over the positions each tile owns.

    While its statistics are unknown a forward adds the tile's sums (float64) and raises :class:`_Gathered`, which
    ends the pass there; :meth:`fix` turns the sums into the statistics the following passes normalise with.
    """

    def __init__(self, name: str, norm: nn.InstanceNorm2d, rows: Axis, cols: Axis) -> None:
        super().__init__()
        self.name, self.norm, self.axes = name, norm, (rows, cols)
        self.owned: tuple[slice, slice] = (slice(None), slice(None))
        self.sums: Tensor | None = None
        self.squares: Tensor | None = None
        self.count = 0
        self.mean: Tensor | None = None
        self.var: Tensor | None = None

    def own(self, rows: Span, cols: Span) -> None:
        """Sum over the feature positions of the next tile's core (the tile ``rows`` x ``cols``)."""
        self.owned = (rows.owned(self.axes[0]), cols.owned(self.axes[1]))

    def fix(self) -> None:
        mean = self.sums / self.count
        self.var = (self.squares / self.count - mean.square()).clamp_min(0).float()
        self.mean = mean.float()

    def forward(self, x: Tensor) -> Tensor:
        if self.mean is None:
            part = x[(..., *self.owned)].double()
            sums, squares = part.sum(dim=(-2, -1)), part.square().sum(dim=(-2, -1))
            self.sums = sums if self.sums is None else self.sums + sums
            self.squares = squares if self.squares is None else self.squares + squares
            self.count += part.shape[-2] * part.shape[-1]
            raise _Gathered(self)
        scale = torch.rsqrt(self.var + self.norm.eps)
        shift = -self.mean * scale
        if self.norm.affine:
            scale, shift = scale * self.norm.weight, shift * self.norm.weight + self.norm.bias
        return (x.float() * scale[..., None, None] + shift[..., None, None]).to(x.dtype)


@contextmanager
def whole_image_statistics(
    net: nn.Module, norms: Mapping[str, tuple[Axis, Axis]]
) -> Iterator[list[WholeImageInstanceNorm]]:
    """Swap the instance norms named in ``norms`` (see :class:`NetGeometry`) for :class:`WholeImageInstanceNorm`
    stand-ins and put the originals back on exit: training is never affected."""
    originals = {name: net.get_submodule(name) for name in norms}
    stand_ins = [WholeImageInstanceNorm(name, norm, *norms[name]) for name, norm in originals.items()]
    try:
        for stand_in in stand_ins:
            net.set_submodule(stand_in.name, stand_in)
        yield stand_ins
    finally:
        for name, norm in originals.items():
            net.set_submodule(name, norm)


def _tile_size(tile: Any) -> int:
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
        raise ConfigError(f"tile={tile!r} must be a positive integer (tile side in input pixels) or null (no tiling)")
    return tile


def _halo(overlap: Any, geometry: NetGeometry) -> int:
    """The overlap in pixels, rounded up to a multiple of the stride; ``auto``: the receptive radius."""
    if overlap == AUTO:
        overlap = geometry.radius
    elif isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ConfigError(f"tile_overlap={overlap!r} must be auto or a non-negative integer (pixels)")
    elif overlap < geometry.radius:
        log.warning(
            "tile_overlap=%d is below the net's receptive radius of %d px: tiles will not match the untiled output",
            overlap,
            geometry.radius,
        )
    return -(-overlap // geometry.stride) * geometry.stride


class TiledApply:
    """``apply`` (``[B, 3, H, W] -> [B, 3, sH, sW]``, e.g. a :class:`~perceptual.inference.runner.Runner` of
    ``net``) run tile by tile on images larger than ``tile``, with the untiled result (see the module doc).

    Only the input and the output exist at full size; the net sees windows of at most ``tile`` x ``tile`` pixels,
    each moved to the runner's device and back. Keyword arguments pass through; 4-D tensors that are maps over the
    image (at its resolution or at its features', e.g. StyleBank's region-fusion weights) are cropped to each tile.

    Args:
        apply: the batch callable to tile.
        net: the net ``apply`` runs (its geometry is probed; its instance norms are swapped during a call).
        tile: largest window side in input pixels; cores are ``tile - 2 * halo`` rounded down to the stride.
        overlap: pixels each window reads beyond its core; ``auto``: the receptive radius (exact tiles).
        progress: tqdm bar per call on stderr (``None``: only on a terminal).
    """

    def __init__(
        self,
        apply: Callable[..., Tensor],
        net: nn.Module,
        tile: int,
        overlap: int | str = AUTO,
        progress: bool | None = None,
    ) -> None:
        self.tile = _tile_size(tile)
        self.apply, self.net, self.progress = apply, net, progress
        self.geometry = probe(net)
        self.halo = _halo(overlap, self.geometry)
        minimum = 2 * self.halo + self.geometry.stride
        if self.tile < minimum:
            raise ConfigError(
                f"tile={tile} is too small for this {type(net).__name__}: each tile reads {self.halo} px around its "
                f"core (receptive radius {self.geometry.radius} px); pass tile>={minimum} or tile=null"
            )
        log.info(
            "tiles of at most %d px reading %d px around their cores (receptive radius %d px), %d pass(es) per image",
            self.tile,
            self.halo,
            self.geometry.radius,
            len(self.geometry.norms) + 1,
        )

    def __call__(self, images: Tensor, **kwargs: Any) -> Tensor:
        height, width = images.shape[-2:]
        grid = [
            (rows, cols)
            for rows in spans(height, self.tile, self.halo, self.geometry.stride)
            for cols in spans(width, self.tile, self.halo, self.geometry.stride)
        ]
        if len(grid) == 1:
            return self.apply(images, **kwargs)
        passes = len(self.geometry.norms) + 1
        with (
            whole_image_statistics(self.net, self.geometry.norms) as norms,
            tqdm(total=len(grid) * passes, unit="tile", leave=False, disable=self._quiet()) as bar,
        ):
            for index in itertools.count(1):  # each pass fixes one more norm's statistics, the last one finishes
                bar.set_description(f"{height}x{width}, {len(grid)} tiles, pass {index}/{passes}")
                gathered, output = self._run_pass(images, kwargs, grid, norms, bar)
                if gathered is None:
                    return output
                gathered.fix()

    def _quiet(self) -> bool | None:
        return None if self.progress is None else not self.progress

    def _run_pass(
        self,
        images: Tensor,
        kwargs: Mapping[str, Any],
        grid: list[tuple[Span, Span]],
        norms: list[WholeImageInstanceNorm],
        bar: tqdm,
    ) -> tuple[WholeImageInstanceNorm | None, Tensor | None]:
        """Run every tile once: the instance norm whose statistics the tiles gathered, or ``None`` and the output."""
        pending = [norm for norm in norms if norm.mean is None]
        outcomes: set[WholeImageInstanceNorm | None] = set()
        output: Tensor | None = None
        for rows, cols in grid:
            for norm in pending:
                norm.own(rows, cols)
            window = images[..., rows.start : rows.stop, cols.start : cols.stop]
            try:
                cropped = {key: self._crop(value, images, rows, cols) for key, value in kwargs.items()}
                result = self.apply(window, **cropped)
            except _Gathered as stop:
                outcomes.add(stop.norm)
            else:
                outcomes.add(None)
                output = self._paste(output, result, images, rows, cols)
            bar.update()
        if len(outcomes) > 1:
            raise ConfigError(
                f"{type(self.net).__name__}: an instance norm runs in some tiles only (e.g. region-wise fusion of "
                "banks deeper than one conv), so tiles cannot share its statistics; use tile=null"
            )
        return outcomes.pop(), output

    def _crop(self, value: Any, images: Tensor, rows: Span, cols: Span) -> Any:
        """A map over the image (4-D, at the image's or the features' resolution) cropped to the window; else as is."""
        if not isinstance(value, Tensor) or value.dim() != 4 or value.shape[-2:] == (1, 1):
            return value
        height, width = images.shape[-2:]
        for step in {1, self.geometry.stride}:
            if tuple(value.shape[-2:]) == (-(-height // step), -(-width // step)):
                return value[
                    ..., rows.start // step : -(-rows.stop // step), cols.start // step : -(-cols.stop // step)
                ]
        raise ValueError(
            f"a {tuple(value.shape)} map fits neither the {height}x{width} images nor their 1/{self.geometry.stride} "
            "features; cannot crop it to tiles"
        )

    def _paste(self, output: Tensor | None, result: Tensor, images: Tensor, rows: Span, cols: Span) -> Tensor:
        """Copy the core of a tile's ``result`` into ``output`` (allocated at full size on the first tile)."""
        s = self.geometry.scale
        if output is None:
            height, width = images.shape[-2:]
            shape = (*result.shape[:-2], height * s, width * s)
            output = torch.empty(shape, dtype=result.dtype, device=images.device)
        output[..., rows.core_start * s : rows.core_stop * s, cols.core_start * s : cols.core_stop * s] = result[
            ...,
            (rows.core_start - rows.start) * s : (rows.core_stop - rows.start) * s,
            (cols.core_start - cols.start) * s : (cols.core_stop - cols.start) * s,
        ]
        return output


def with_tiling(
    apply: Callable[..., Tensor], net: TransformNet, tile: int | None, overlap: int | str = AUTO
) -> Callable[..., Tensor]:
    """``apply`` tiled with :class:`TiledApply`; ``tile=None`` returns ``apply`` unchanged."""
    return apply if tile is None else TiledApply(apply, net, tile, overlap)
