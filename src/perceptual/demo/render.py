"""What the demo does with an upload, free of any web framework: a photo or a video through the project's one
inference pipeline (:func:`~perceptual.inference.pipeline.build_pipeline`: device, precision, tiling, StyleBank
fusion, stroke, colour and strength), and every failure as one line for the page.

The demo's own limits keep one request from taking the server's memory: ``max_pixels`` caps the result's size (an
SR net's is ``scale`` squared times its input's), checked from the file's header before it is decoded, and
``max_frames`` caps a video's length. Images above ``tile`` px run tile by tile, with the untiled result.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from perceptual.choices import check_choice
from perceptual.demo.catalogue import LoadedNet
from perceptual.errors import ConfigError, DataError, PerceptualError
from perceptual.imaging.io import load_image, read_image_size, save_image, to_uint8
from perceptual.imaging.resize import imresize
from perceptual.inference.pipeline import Apply, PipelineOptions, build_pipeline
from perceptual.inference.runner import Precision, check_precision, resolve_device
from perceptual.inference.temporal import TemporalMode, make_stabiliser
from perceptual.inference.video import EncoderSettings, VideoReader
from perceptual.inference.video_files import transform_video
from perceptual.locations import PREFIX

log = logging.getLogger(__name__)

VIDEO_BATCH = 4  # frames per batch through the net


@dataclass(frozen=True)
class Settings:
    """How the server runs nets: the keys of ``conf/demo.yaml`` below the page's own controls.

    Attributes:
        device, precision: where and how the nets run (checked when the demo starts).
        tile: images with a side above this run in tiles of at most ``tile`` px (``None``: never tiled).
        max_pixels: the largest result, in pixels, the demo makes.
        max_frames: the longest video, in frames.
        temporal: video frames ``stable`` along the input's optical flow, or ``none``.
    """

    device: str = "auto"
    precision: Precision = "fp32"
    tile: int | None = 1024
    max_pixels: int = 16_000_000
    max_frames: int = 300
    temporal: TemporalMode = "stable"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Settings:
        """The settings of the demo's config, with the device and precision checked now rather than per request."""
        check_precision(cfg["precision"], resolve_device(cfg["device"]))
        check_choice("temporal", cfg["temporal"], TemporalMode)
        return cls(
            cfg["device"], cfg["precision"], cfg["tile"], cfg["max_pixels"], cfg["video"]["max_frames"], cfg["temporal"]
        )


@dataclass(frozen=True)
class Controls:
    """What a visitor sets on the page (style nets only; an SR net ignores them).

    Attributes:
        strength, preserve_color, stroke: the style controls of ``src/stylize.py``.
        bank: the StyleBank bank to apply.
        weights: StyleBank fusion weights, one number per bank, as typed; blank: ``bank`` alone.
    """

    strength: float = 1.0
    preserve_color: bool = False
    stroke: str = "none"
    bank: int | None = 0
    weights: str | None = ""


def fusion_options(weights: str | None, bank: int | None, banks: int) -> dict[str, Any]:
    """``bank``, or the linear fusion that the typed ``weights`` (one per bank, any separators) name, as the
    pipeline's fusion keys; the pipeline checks the sum."""
    if not weights or not weights.strip():
        return {"bank": bank or 0}
    try:
        values = [float(value) for value in re.split(r"[\s,;]+", weights.strip())]
    except ValueError:
        raise ConfigError(f"fusion weights '{weights}' are not numbers; type one per bank, e.g. 0.5, 0.5") from None
    if len(values) != banks:
        raise ConfigError(f"{len(values)} fusion weight(s) for {banks} banks; type one per bank (0 leaves one out)")
    chosen = [index for index, value in enumerate(values) if value != 0]
    if not chosen:
        raise ConfigError("every fusion weight is 0; give the banks to fuse weights summing to 1")
    return {"banks": chosen, "weights": [values[index] for index in chosen]}


def pipeline_options(loaded: LoadedNet, controls: Controls, settings: Settings) -> PipelineOptions:
    """The pipeline's options for ``loaded`` under the page's ``controls``: style controls for style nets only,
    fusion for StyleBank nets only."""
    options = PipelineOptions(device=settings.device, precision=settings.precision, tile=settings.tile)
    if loaded.kind == "sr":
        return options
    fusion = (
        fusion_options(controls.weights, controls.bank, len(loaded.bank_names)) if loaded.kind == "stylebank" else {}
    )
    return dataclasses.replace(
        options,
        fusion=fusion,
        stroke=controls.stroke,
        strength=controls.strength,
        preserve_color=controls.preserve_color,
    )


def pipeline(loaded: LoadedNet, controls: Controls, settings: Settings) -> Apply:
    return build_pipeline(loaded.net, pipeline_options(loaded, controls, settings), loaded.metadata.training_size)


def check_size(height: int, width: int, scale: int, max_pixels: int, what: str) -> None:
    """Refuse an input whose result would exceed ``max_pixels``, in one line naming the fix."""
    out_height, out_width = height * scale, width * scale
    if out_height * out_width > max_pixels:
        shrink = math.sqrt(max_pixels / (out_height * out_width))
        fit = f"{math.floor(width * shrink)}x{math.floor(height * shrink)}"
        raise DataError(
            f"{what} is {width}x{height} px, so the result would be {out_width}x{out_height} = "
            f"{out_height * out_width:,} pixels, above the demo's memory cap of max_pixels={max_pixels:,}; downscale "
            f"it to {fit} px or less, or restart the demo with a larger max_pixels=<pixels>"
        )


@dataclass(frozen=True)
class ImageResult:
    """A photo's result as 8-bit HxWx3 arrays: ``before`` is the input (SR: its bicubic upscaling to the output's
    size), named by ``before_label``, ``after`` the net's result, ``file`` the result as a PNG."""

    before: np.ndarray
    after: np.ndarray
    file: Path
    before_label: str = "Input"


def render_image(loaded: LoadedNet, controls: Controls, settings: Settings, source: Path, folder: Path) -> ImageResult:
    """Run ``loaded`` on the image file ``source`` and write the result into ``folder``."""
    scale = loaded.net.capabilities.scale
    check_size(*read_image_size(source), scale, settings.max_pixels, f"image {source.name}")
    image = load_image(source)
    output = pipeline(loaded, controls, settings)(image[None])[0]
    file = save_image(output, folder / f"{source.stem}_{safe_name(loaded.name)}.png")
    if scale == 1:
        return ImageResult(to_uint8(image), to_uint8(output), file)
    bicubic = imresize(image, size=tuple(output.shape[-2:]))
    return ImageResult(to_uint8(bicubic), to_uint8(output), file, f"Bicubic x{scale}")


@dataclass(frozen=True)
class VideoResult:
    """A video's result file, its frame count, and why decoding stopped early (``None``: the whole file)."""

    file: Path
    frames: int
    failure: str | None


def render_video(loaded: LoadedNet, controls: Controls, settings: Settings, source: Path, folder: Path) -> VideoResult:
    """Run ``loaded`` over the frames of the video file ``source`` (stabilised as ``settings.temporal`` says) and
    write the video, with the input's frame rate and audio, into ``folder``."""
    with VideoReader(source) as reader:
        info = reader.info
    scale = loaded.net.capabilities.scale
    check_size(info.height, info.width, scale, settings.max_pixels, f"video {source.name}")
    if info.frames is not None and info.frames > settings.max_frames:
        raise DataError(frame_cap_message(source, settings.max_frames, info.frames))
    apply = frame_capped(pipeline(loaded, controls, settings), source, settings.max_frames)
    stabiliser = make_stabiliser(settings.temporal, loaded.net.capabilities.stride)
    target = folder / f"{source.stem}_{safe_name(loaded.name)}.mp4"
    report = transform_video(apply, source, target, VIDEO_BATCH, None, stabiliser, EncoderSettings())
    return VideoResult(report.target, report.frames, report.failure)


def frame_cap_message(source: Path, max_frames: int, frames: int | None = None) -> str:
    length = f"has {frames} frames" if frames is not None else "runs longer"
    return (
        f"video {source.name} {length}, above the demo's cap of {max_frames} frames; trim it or restart the demo with "
        "a larger video.max_frames=<frames>"
    )


def frame_capped(apply: Apply, source: Path, max_frames: int) -> Callable[[Tensor], Tensor]:
    """``apply`` refusing to go past ``max_frames`` frames in all (for videos that do not declare their length)."""
    seen = 0

    def capped(frames: Tensor) -> Tensor:
        nonlocal seen
        seen += len(frames)
        if seen > max_frames:
            raise DataError(frame_cap_message(source, max_frames))
        return apply(frames)

    return capped


def safe_name(name: str) -> str:
    """A net's name (``zoo:candy``, a path) as a file-name part."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name.removeprefix(PREFIX)).stem).strip("_") or "net"


def error_line(error: Exception, upload: str | Path | None = None) -> str:
    """One line for the page: the message of a user error, or a short report of anything else (its traceback goes to
    the server's log, and the server goes on). The folder the server keeps ``upload`` in is left out."""
    if isinstance(error, PerceptualError):
        message = " ".join(str(error).split())
        return message.replace(f"{Path(upload).parent}/", "") if upload else message
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return "out of memory: try a smaller image, or restart the demo with a smaller tile=<px> or max_pixels=<pixels>"
    log.error("request failed", exc_info=error)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"unexpected {type(error).__name__}{': ' + first if first else ''} (the server's log has the details)"
