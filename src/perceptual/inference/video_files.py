"""Apply a trained net to a video: frames decoded in batches, each batch through the same ``apply`` callable as
images ([B,3,H,W] -> [B,3,H',W'], so tiling, fusion and colour options compose), optionally stabilised along the
input's optical flow (:mod:`perceptual.inference.temporal`), re-encoded at the input's frame rate with its audio copied.

A video that breaks off part-way is not lost: the frames read before the failure are written and the failure is
reported (exit code 1).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from tqdm import tqdm

from perceptual.errors import DataError
from perceptual.inference.temporal import Stabiliser, make_stabiliser
from perceptual.inference.video import EncoderSettings, VideoReader, VideoWriter, is_video_file
from perceptual.nets.base import TransformNet

log = logging.getLogger(__name__)


@dataclass
class VideoReport:
    """What a video run did: frames written, and why reading stopped early (None when the whole file was read)."""

    source: Path
    target: Path
    frames: int
    failure: str | None = None

    def summarise(self, destination: str | Path) -> int:
        """Print what was written and any failure (on stderr); return the exit code (1 if reading failed)."""
        if self.failure:
            print(f"failed: {self.source}: {self.failure}", file=sys.stderr)
        print(f"wrote {self.frames} frame(s) to {self.target}" + ("; the input is damaged" if self.failure else ""))
        return 1 if self.failure else 0


def video_settings(
    temporal: str, options: Mapping[str, Any], net: TransformNet
) -> tuple[Stabiliser | None, EncoderSettings]:
    """The stabiliser for ``net`` and the encoder settings, from ``temporal=`` and the ``video.*`` keys of
    ``conf/stylize.yaml``."""
    stabiliser = make_stabiliser(temporal, net.capabilities.stride, options["blend"], options["flow"], options["align"])
    return stabiliser, EncoderSettings(options["codec"], options["crf"], options["pix_fmt"], dict(options["options"]))


def plan_video_output(source: str | Path, destination: str | Path) -> Path:
    """The output file: ``destination`` when it names a video file, else ``destination/<source name>``."""
    destination = Path(destination).expanduser()
    return destination if is_video_file(destination) else destination / Path(source).name


def transform_video(
    apply: Callable[[Tensor], Tensor],
    source: str | Path,
    destination: str | Path,
    batch_size: int = 4,
    max_size: int | None = None,
    stabiliser: Stabiliser | None = None,
    settings: EncoderSettings | None = None,
) -> VideoReport:
    """Run ``apply`` over the frames of ``source`` in batches and write the video (see the module docstring)."""
    source = Path(source).expanduser()
    target = plan_video_output(source, destination)
    writer: VideoWriter | None = None
    with VideoReader(source, max_size) as reader:
        info = reader.info
        progress = tqdm(total=info.frames, unit="frame", desc=source.name, dynamic_ncols=True)
        try:
            for frames in reader.batches(batch_size):
                outputs = apply(frames) if stabiliser is None else stabiliser(apply, frames)
                if writer is None:
                    height, width = outputs.shape[-2:]
                    audio = source if info.has_audio else None
                    writer = VideoWriter(target, info.fps, width, height, settings, audio)
                writer.write(outputs)
                progress.update(len(frames))
        except BaseException:
            if writer is not None:
                writer.discard()
            raise
        finally:
            progress.close()
        if writer is None:
            raise DataError(f"no frame of {source} could be decoded ({reader.failure or 'empty stream'}); replace it")
        writer.close()
        log.info("%s -> %s: %d frames", source, target, writer.frames_written)
        return VideoReport(source, target, writer.frames_written, reader.failure)
