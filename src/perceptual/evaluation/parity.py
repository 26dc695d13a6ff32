"""Objective parity (Johnson et al. 2016, Fig. 5): how many L-BFGS iterations on a style net's own training criterion
reach the objective value that the net reaches in one forward pass.

Three steps, each usable alone:

1. :func:`rebuild_criterion`: the criterion a style net trained with, rebuilt from what its checkpoint records (the
   run's composed config: loss terms, weights and layers, the loss network and ``task.style_size``; the style image(s)
   and the loss network's weights source and checksum from the checkpoint metadata). A checkpoint that lacks any of it
   is refused in one line naming what is missing.
2. :func:`lbfgs_curve`: L-BFGS on the pixels of a photo against that criterion (:func:`perceptual.optimization.pixel.
   optimize_image`), from noise as the paper does or from the photo, the objective recorded after every iteration.
3. :func:`equivalent_iterations`: the iteration count at which the curve reaches the net's objective, interpolated
   linearly in iterations and in log-objective between the recorded counts; 0 when the net does worse than the
   starting image, ``inf`` (shown as ``>max``) when it does better than the last count.

:func:`measure` runs 2 and 3 for one photo and the net's output of it; it reports the objective at the listed counts
and interpolates the equivalent iterations between consecutive iterations (every one is recorded).

The L-BFGS curve depends on the criterion, the photo, the start and the :func:`machine`, not on the net, so
checkpoints of one run (or fine-tunes on the same criterion) measured on one machine can share it: with ``cache=`` a
curve is stored under :func:`curve_key` and reused, which turns minutes of L-BFGS per photo into one forward pass.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from perceptual.checkpoints import CheckpointMetadata, checkpoint_metadata
from perceptual.cpu_bf16 import cpu_model, fast_path_flags
from perceptual.data.sample import BUILTIN_IMAGES, resolve_image
from perceptual.errors import DataError
from perceptual.losses.builder import build_criterion
from perceptual.losses.criterion import PerceptualCriterion
from perceptual.lossnet.compact import remake
from perceptual.lossnet.weights import WeightsKind, WeightsSource
from perceptual.optimization.pixel import Init, initial_image, optimize_image

DEFAULT_ITERATIONS = (25, 50, 100, 200, 400)
STYLE_TASKS = ("style", "stylebank")
RUN_CONFIG = "no run config (loss terms, weights, layers, style size)"
RETRAIN_HINT = "retrain it with src/train.py, whose checkpoints record all of it"


def _loss_net_config(
    cfg: DictConfig, recorded: Mapping[str, Any] | None, source: str, weights: str | None = None
) -> DictConfig:
    """The run's ``loss_net`` with the weights source the run resolved it to (``auto`` names none), or ``weights``
    in its place. A recorded weights file that is not on this machine is remade when it is a compact copy
    (:mod:`perceptual.lossnet.compact`); the caller checks it against the recorded SHA-256 either way."""
    loss_net = cfg.loss_net.copy()
    if recorded is not None:
        if recorded.get("arch") not in (None, loss_net.get("arch")):
            raise DataError(
                f"{source}'s run config says loss_net.arch={loss_net.get('arch')} but its metadata records "
                f"{recorded['arch']}: the checkpoint is inconsistent; {RETRAIN_HINT}"
            )
        loss_net.weights = recorded.get("weights", loss_net.get("weights"))
    if weights is not None:
        loss_net.weights = weights
    elif recorded is not None and WeightsSource.from_record(recorded).kind is WeightsKind.FILE:
        loss_net.weights = str(_weights_file_here(Path(loss_net.weights), recorded.get("sha256"), source))
    return loss_net


def _weights_file_here(path: Path, sha256: str | None, source: str) -> Path:
    """``path``, or where it is missing here, the same file remade (compact copies only)."""
    if path.is_file():
        return path
    remade = remake(path, sha256) if sha256 else None
    if remade is None:
        digest = f" (SHA-256 {sha256[:12]}...)" if sha256 else ""
        raise DataError(
            f"{source} was trained with loss_net.weights={path}{digest}, which is not on this machine; pass a "
            "copy of that file (parity.py --loss-net-weights FILE)"
        )
    return remade


def _missing(metadata: CheckpointMetadata, cfg: DictConfig, style: str | None) -> list[str]:
    """What a checkpoint with ``metadata`` and run config ``cfg`` lacks for :func:`rebuild_criterion`, as phrases."""
    missing = []
    if not all(key in cfg for key in ("loss", "loss_net", "task")):
        missing.append(RUN_CONFIG)
    if style is None and not metadata.styles:
        missing.append("no style image")
    weights = (metadata.loss_net or {}).get("weights") or OmegaConf.select(cfg, "loss_net.weights")
    if weights in (None, "auto", "state_dict"):  # auto: resolved at training time to what was available there
        missing.append("no loss-network weights source")
    return missing


def rebuild_criterion(
    checkpoint: Mapping[str, Any],
    bank: int | None = None,
    style: str | None = None,
    source: str = "checkpoint",
    loss_net_weights: str | None = None,
) -> PerceptualCriterion:
    """The criterion ``checkpoint``'s net was trained with, its style statistics set (one style: the net's, or the
    style of StyleBank bank ``bank``).

    Args:
        checkpoint: a style or StyleBank checkpoint in the current format (:func:`perceptual.checkpoints.
            read_checkpoint`).
        bank: StyleBank only: whose style (default 0). For an incremental StyleBank checkpoint, the recorded run is the
            last one: its loss config stands for the older banks too.
        style: the style image to use instead of the recorded path (the same image, where that path does not resolve
            here); resized to the run's ``task.style_size`` like the recorded one.
        source: the checkpoint's name in error messages.
        loss_net_weights: the loss network's weights file to use instead of the recorded path (a copy of the same
            file, where that path does not resolve here); its SHA-256 must be the recorded one.
    """
    metadata = checkpoint_metadata(checkpoint)
    if metadata.task not in STYLE_TASKS:
        raise DataError(
            f"{source} holds a net of task {metadata.task}; objective parity compares style nets "
            f"({', '.join(STYLE_TASKS)})"
        )
    if bank is not None and metadata.task != "stylebank":
        raise DataError(f"bank={bank} only applies to StyleBank checkpoints; {source} holds a {metadata.task} net")
    cfg = OmegaConf.create(metadata.run_config or "{}")
    missing = _missing(metadata, cfg, style)
    if missing:
        listed = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
        raise DataError(f"{source} records {listed}, so its training criterion cannot be rebuilt; {RETRAIN_HINT}")
    if style is None:
        if not 0 <= (bank or 0) < len(metadata.styles):
            raise DataError(f"bank={bank} is out of range: {source} has banks 0..{len(metadata.styles) - 1}")
        style = metadata.styles[bank or 0]
        if style not in BUILTIN_IMAGES and not Path(style).is_file():
            raise DataError(
                f"{source} was trained on the style image {style}, which is not on this machine; pass the same "
                "image (parity.py --style FILE)"
            )
    loss_net = _loss_net_config(cfg, metadata.loss_net, source, loss_net_weights)
    criterion = build_criterion(cfg.loss, loss_net)
    recorded_sha = (metadata.loss_net or {}).get("sha256")
    if criterion.loss_net is not None and recorded_sha and criterion.loss_net.source.sha256 != recorded_sha:
        raise DataError(
            f"loss_net.weights={loss_net.weights} here has SHA-256 {criterion.loss_net.source.sha256}, not "
            f"{recorded_sha} as {source} was trained with; provide the same weights file"
        )
    if criterion.needs_styles:
        criterion.set_styles([resolve_image(style, "style", cfg.task.get("style_size"))])
    return criterion


def prepare_photo(image: Tensor, size: int | None, multiple: int = 1) -> Tensor:
    """``image`` [3,H,W] with its shorter side resized to ``size`` (``None`` keeps it) and centre-cropped to multiples
    of ``multiple`` (a net's stride), as a batch of one."""
    if size:
        image = TF.resize(image, size, antialias=True)
    height, width = (side // multiple * multiple for side in image.shape[-2:])
    if min(height, width) == 0:
        raise DataError(f"a {tuple(image.shape[-2:])} photo is smaller than the net's stride {multiple}; pass --size")
    return TF.center_crop(image, [height, width])[None]


@torch.no_grad()
def objective(criterion: PerceptualCriterion, image: Tensor, photo: Tensor) -> float:
    """The criterion's value for ``image`` as a stylisation of ``photo`` (both [1,3,H,W])."""
    return criterion(image, target=photo).total.item()


@dataclass
class LbfgsCurve:
    """The objective at the starting image (``initial``) and after each L-BFGS iteration (``losses[k - 1]``), and
    the image after the last; ``cached`` when it was read from a curve cache instead of run."""

    initial: float
    losses: list[float]
    image: Tensor
    cached: bool = False

    def at(self, iterations: int) -> float:
        """The objective after ``iterations`` iterations (0: the start)."""
        return self.losses[iterations - 1] if iterations else self.initial


def machine(device: torch.device) -> str:
    """What an L-BFGS curve depends on besides its inputs: the processor, the kernels torch picks for it and the
    thread count (fp32 iterates drift apart with each machine's rounding, so curves differ between machines by a few
    per cent at 30-50 iterations; experiments/style_quality/README.md, "Parity across CPUs")."""
    if device.type == "cuda":
        processor = torch.cuda.get_device_name(device)
    else:
        flags = " ".join(fast_path_flags()) or "unknown flags"
        processor = f"{cpu_model()} ({flags}; {torch.get_num_threads()} threads)"
    return f"{processor}, torch {torch.__version__}"


@torch.no_grad()
def curve_key(criterion: PerceptualCriterion, photo: Tensor, start: Tensor, steps: int) -> str:
    """Names one L-BFGS run: the photo's and the start's pixels, the step count, the :func:`machine`, and the
    criterion by each term's value at the start. The criterion is fingerprinted by what it computes rather than by
    its config, so any change of a weight, layer, style image or loss-network weight gives a new key."""
    terms = criterion(start, target=photo).terms
    digest = hashlib.sha256()
    for image in (photo, start):
        digest.update(image.detach().float().cpu().numpy().tobytes())
    values = sorted((name, value.item()) for name, value in terms.items())
    digest.update(repr((steps, machine(photo.device), values)).encode())
    return digest.hexdigest()[:20]


def lbfgs_curve(
    criterion: PerceptualCriterion,
    photo: Tensor,
    steps: int,
    init: Init = "noise",
    seed: int = 0,
    cache: Path | None = None,
) -> LbfgsCurve:
    """L-BFGS for ``steps`` iterations on the pixels of an image that starts as noise (the paper) or as ``photo``;
    read from and written to the folder ``cache`` when given."""
    start = initial_image(init, photo, seed)
    path = cache / f"{curve_key(criterion, photo, start, steps)}.pt" if cache is not None else None
    if path is not None and path.is_file():
        stored = torch.load(path, map_location=photo.device)
        return LbfgsCurve(stored["initial"], stored["losses"], stored["image"], cached=True)
    result = optimize_image(criterion, start, photo, steps=steps, optimizer="lbfgs")
    curve = LbfgsCurve(initial=result.initial_loss, losses=result.losses, image=result.image)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"initial": curve.initial, "losses": curve.losses, "image": curve.image.cpu()}, path)
    return curve


def equivalent_iterations(counts: Sequence[int], objectives: Sequence[float], target: float, initial: float) -> float:
    """The iteration count at which a curve reaches ``target``.

    The curve is ``(0, initial)`` then ``(counts[i], objectives[i])``; between two points it is linear in the count
    and in log-objective. 0 when ``target`` is above ``initial`` (worse than the start), ``inf`` when it is below the
    objective at the last count; otherwise the first crossing.
    """
    if len(counts) != len(objectives) or not counts:
        raise ValueError("counts and objectives must be non-empty and of the same length")
    if target >= initial:
        return 0.0
    previous_count, previous = 0, initial
    for count, value in zip(counts, objectives):
        if value <= target:
            log_previous, log_value = (math.log(max(v, 1e-300)) for v in (previous, value))
            log_target = math.log(max(target, 1e-300))
            share = 1.0 if log_previous == log_value else (log_previous - log_target) / (log_previous - log_value)
            return previous_count + share * (count - previous_count)
        previous_count, previous = count, value
    return math.inf


def format_iterations(value: float, counts: Sequence[int]) -> str:
    """``>max`` for a net better than the last count, else the count with one decimal."""
    return f">{max(counts)}" if math.isinf(value) else f"{value:.1f}"


@dataclass
class PhotoParity:
    """Parity on one photo: the net's objective, the L-BFGS objective at each listed count, the equivalent count
    (against the mean curve of the starts) and the equivalent count against each start's own curve (``per_start``:
    how much the figure would move with one start)."""

    name: str
    feed_forward: float
    initial: float
    lbfgs: dict[int, float]
    iterations: float
    curve: list[float] = field(repr=False, default_factory=list)
    lbfgs_image: Tensor | None = field(repr=False, default=None)
    cached: bool = False
    per_start: list[float] = field(default_factory=list)


def mean_curve(curves: Sequence[LbfgsCurve]) -> LbfgsCurve:
    """The geometric mean of L-BFGS curves from several starts, iteration by iteration (the image: the first run's).

    One run's curve carries the noise of its start: on the zoo's nets near 35 iterations, the equivalent iterations
    of one photo move by about two between noise seeds, as much as between machines. The mean of a few starts is a
    steadier yardstick."""
    if not curves:
        raise ValueError("mean_curve needs at least one curve")

    def geometric_mean(values: Sequence[float]) -> float:
        return math.exp(statistics.fmean(math.log(max(value, 1e-300)) for value in values))

    losses = [geometric_mean(values) for values in zip(*(curve.losses for curve in curves), strict=True)]
    initial = geometric_mean([curve.initial for curve in curves])
    return LbfgsCurve(initial, losses, curves[0].image, cached=all(curve.cached for curve in curves))


def starts(init: Init, seeds: Sequence[int]) -> list[int]:
    """The seeds whose L-BFGS runs count: every one from noise, the first only from the photo (the same start
    whatever the seed)."""
    return list(seeds if init == "noise" else seeds[:1])


def measure(
    criterion: PerceptualCriterion,
    photo: Tensor,
    output: Tensor,
    counts: Sequence[int] = DEFAULT_ITERATIONS,
    init: Init = "noise",
    seeds: Sequence[int] = (0,),
    name: str = "photo",
    cache: Path | None = None,
) -> PhotoParity:
    """Parity of the net's ``output`` for ``photo`` (both [1,3,H,W] on the criterion's device): L-BFGS for the
    largest of ``counts`` iterations from the noise of each of ``seeds`` (one run from the photo for ``init=
    "content"``; curves from ``cache`` where stored), the objective of their :func:`mean_curve` at each count, and
    the equivalent iterations interpolated between consecutive iterations of that curve (finer than between the
    listed counts)."""
    counts = sorted(set(counts))
    if not counts or counts[0] < 1:
        raise DataError(f"iteration counts {counts} must be positive integers, e.g. 25,50,100,200,400")
    if not seeds:
        raise DataError("give at least one seed for the noise start, e.g. seeds=[0]")
    feed_forward = objective(criterion, output, photo)
    curves = [lbfgs_curve(criterion, photo, counts[-1], init, seed, cache) for seed in starts(init, seeds)]
    curve = mean_curve(curves)
    at = {count: curve.at(count) for count in counts}
    every = range(1, counts[-1] + 1)  # every iteration is recorded: interpolate between consecutive ones
    iterations = equivalent_iterations(every, curve.losses, feed_forward, curve.initial)
    per_start = [equivalent_iterations(every, run.losses, feed_forward, run.initial) for run in curves]
    return PhotoParity(
        name, feed_forward, curve.initial, at, iterations, curve.losses, curve.image, curve.cached, per_start
    )


def median(values: Sequence[float]) -> float:
    """The median (``inf`` counts as larger than everything; NaN when empty)."""
    return statistics.median(values) if values else math.nan


def summary_line(name: str, results: Sequence[PhotoParity], counts: Sequence[int]) -> str:
    """``parity <name> iterations=<median> ff=<median objective> lbfgs100=<median objective at 100 iterations>``
    (``lbfgs100=n/a`` when fewer than 100 iterations ran)."""
    iterations = format_iterations(median([r.iterations for r in results]), counts)
    feed_forward = median([r.feed_forward for r in results])
    at_100 = [r.curve[99] for r in results if len(r.curve) >= 100]
    lbfgs100 = f"{median(at_100):.4g}" if at_100 else "n/a"
    return f"parity {name} iterations={iterations} ff={feed_forward:.4g} lbfgs100={lbfgs100}"
