"""Video files in and out with PyAV (FFmpeg bundled in its wheel): RGB tensor batches in, tensors out, audio copied.

Reading keeps what could be decoded: it stops at the first failure and records it in
:attr:`VideoReader.failure` -- a decoding exception, or an error FFmpeg logged while demuxing or decoding (a
truncated file: "File ended prematurely", "partial file") -- so that a caller can write the good frames and still
report the file as damaged. A file that cannot be opened at all (an mp4 cut short loses its index, which is written
last) is a :class:`DataError`. The declared frame count is not a check: edit lists make valid files decode fewer.

Writing encodes frames at a constant frame rate with any FFmpeg encoder (``libx264`` by default) and remuxes the
source's audio streams unchanged (no re-encoding), into a temporary file renamed over the target when done.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from perceptual.errors import ConfigError, DataError
from perceptual.imaging.io import array_to_tensor, to_uint8
from perceptual.optional import require

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts", ".ogv", ".flv")
FALLBACK_PIXEL_FORMAT = "yuv444p"  # full-resolution chroma: any width and height
CRF_CODECS = ("libx264", "libx265", "libvpx", "libvpx-vp9", "libsvtav1")  # encoders with a constant-quality crf


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def pyav() -> Any:
    """The ``av`` module (with ``av.logging``), or a one-line error naming ``pip install 'perceptual[video]'``."""
    require("av.logging", "video input and output")
    return require("av", "video input and output")


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file: size, frame rate, declared frame count (None when the container does not
    say) and whether the file carries audio."""

    width: int
    height: int
    fps: Fraction
    frames: int | None
    has_audio: bool


def _open_input(path: Path) -> av.container.InputContainer:
    av = pyav()
    if not path.is_file():
        raise DataError(f"video {path} does not exist; check the path")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise DataError(
            f"cannot read video {path} ({error.__class__.__name__}: {error}); replace or re-encode it"
        ) from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path} holds no video stream; pass a video file")
    return container


class VideoReader:
    """Decodes the first video stream of ``path`` into float RGB batches [B, 3, H, W] in [0, 1].

    Args:
        path: any file FFmpeg demuxes (mp4, mov, mkv, webm, avi, gif, ...).
        max_size: shrink frames whose longer side exceeds this many pixels (FFmpeg's scaler, aspect kept).
    """

    def __init__(self, path: str | os.PathLike, max_size: int | None = None) -> None:
        self.path = Path(path).expanduser()
        self.container = _open_input(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        context = self.stream.codec_context
        width, height = context.width, context.height
        self.resize = bool(max_size and max(width, height) > max_size)
        if self.resize:
            scale = max_size / max(width, height)
            width, height = max(1, round(width * scale)), max(1, round(height * scale))
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        if not rate:
            self.container.close()
            raise DataError(f"{self.path} declares no frame rate; re-encode it with a constant frame rate")
        self.info = VideoInfo(
            width, height, Fraction(rate), self.stream.frames or None, bool(self.container.streams.audio)
        )
        self.frames_read = 0
        self.failure: str | None = None
        # FFmpeg components whose logged errors mean the input is damaged (not the encoder's or the muxer's).
        self._sources = {self.container.format.name, context.name}

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.container.close()

    def _frames(self) -> Iterator[np.ndarray]:
        av = pyav()
        level, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.ERROR)
        av.logging.set_skip_repeated(False)  # PyAV drops a message equal to the last one: a second bad file would pass
        try:
            with av.logging.Capture() as logs:
                try:
                    for frame in self.container.decode(self.stream):
                        yield self._rgb(frame)
                        self.frames_read += 1
                        if self._logged_error(logs):
                            break
                except av.error.FFmpegError as error:
                    self.failure = f"decoding stopped after {self.frames_read} frame(s): {error}"
                self._logged_error(logs)
        finally:
            av.logging.set_level(level)
            av.logging.set_skip_repeated(skip_repeated)

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        if not self.resize:
            return frame.to_ndarray(format="rgb24")
        return frame.to_ndarray(format="rgb24", width=self.info.width, height=self.info.height, interpolation="AREA")

    def _logged_error(self, logs: list[tuple[int, str, str]]) -> bool:
        """Record the first error the demuxer or decoder logged, if any."""
        av = pyav()
        if self.failure is None:
            for level, name, message in logs:
                if level <= av.logging.ERROR and name in self._sources:
                    self.failure = f"decoding stopped after {self.frames_read} frame(s): {name}: {message.strip()}"
                    break
        return self.failure is not None

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """Consecutive frames, ``batch_size`` at a time (the last batch may be shorter)."""
        batch: list[Tensor] = []
        for array in self._frames():
            batch.append(array_to_tensor(array))
            if len(batch) == batch_size:
                yield torch.stack(batch)
                batch = []
        if batch:
            yield torch.stack(batch)


@dataclass(frozen=True)
class EncoderSettings:
    """How output frames are encoded (the ``video.*`` keys of ``conf/stylize.yaml``).

    Args:
        codec: an FFmpeg encoder bundled with PyAV (libx264, libx265, libvpx-vp9, libsvtav1, mpeg4, ffv1, ...).
        crf: constant-quality factor for the encoders of :data:`CRF_CODECS` (lower is better; None: the default).
        pix_fmt: ``auto`` (yuv420p, or yuv444p when a side is odd), or a pixel format the encoder supports.
        options: further encoder options, e.g. ``{"preset": "slow"}``.
    """

    codec: str = "libx264"
    crf: int | None = 18
    pix_fmt: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check what can be checked before any frame is processed (the pixel format waits for the output size)."""
        if _encoder(self.codec).type != "video":
            raise ConfigError(f"video.codec={self.codec} is not a video encoder; use e.g. libx264")
        if self.crf is not None and self.codec not in CRF_CODECS:
            raise ConfigError(
                f"video.crf is for {', '.join(CRF_CODECS)}; with video.codec={self.codec} set video.crf=null "
                "and pass its own quality options, e.g. video.options={b:4M}"
            )

    def encoder_options(self) -> dict[str, str]:
        options = {str(key): str(value) for key, value in self.options.items()}
        if self.crf is not None:
            options.setdefault("crf", str(self.crf))
        return options

    def pixel_format(self, codec: av.codec.Codec, width: int, height: int) -> str:
        """The requested format, or for ``auto`` yuv420p when both sides are even and else one with full chroma."""
        av = pyav()
        supported = [f.name for f in codec.video_formats or ()]
        odd = width % 2 or height % 2
        if self.pix_fmt == "auto":
            candidates = ["yuv420p", FALLBACK_PIXEL_FORMAT] if not odd else [FALLBACK_PIXEL_FORMAT]
            chosen = next((name for name in candidates if name in supported), supported[0] if supported else "yuv420p")
        else:
            chosen = self.pix_fmt
            if supported and chosen not in supported:
                raise ConfigError(
                    f"video.codec={self.codec} cannot encode video.pix_fmt={chosen}; use one of: {', '.join(supported)}"
                )
        probe = av.VideoFormat(chosen, 2, 2)
        subsampled = probe.chroma_width() < 2 or probe.chroma_height() < 2
        if odd and subsampled:
            raise ConfigError(
                f"the output is {width}x{height} and video.pix_fmt={chosen} needs even sides; "
                f"use video.pix_fmt=auto or {FALLBACK_PIXEL_FORMAT}"
            )
        return chosen


def _encoder(name: str) -> av.codec.Codec:
    av = pyav()
    try:
        return av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        raise ConfigError(
            f"video.codec={name} is not an encoder of PyAV's FFmpeg; use e.g. libx264, libvpx-vp9, mpeg4"
        ) from None


class VideoWriter:
    """Encodes [B, 3, H, W] batches in [0, 1] into ``path`` at ``fps``, copying the audio streams of ``audio_from``.

    The container follows the file extension; everything goes to a temporary file in the same folder, renamed to
    ``path`` by :meth:`close` or removed by :meth:`discard`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: Fraction,
        width: int,
        height: int,
        settings: EncoderSettings | None = None,
        audio_from: str | os.PathLike | None = None,
    ) -> None:
        av = pyav()
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        settings = settings or EncoderSettings()
        codec = _encoder(settings.codec)
        pix_fmt = settings.pixel_format(codec, width, height)
        options = settings.encoder_options()
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=self.path.suffix)
        os.close(fd)
        self.tmp = Path(tmp)
        try:
            self.container = av.open(tmp, "w")
        except (av.error.FFmpegError, ValueError) as error:
            self.tmp.unlink()
            raise ConfigError(
                f"cannot write a video to {self.path} ({error}); use a video extension such as .mp4"
            ) from None
        try:
            self._check_codec(settings.codec, codec)
            self.stream = self.container.add_stream(codec.name, rate=fps, options=options)
            self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix_fmt
            if audio_from is not None:
                self._copy_audio(Path(audio_from))
        except BaseException:
            self.container.close()
            self.tmp.unlink()
            raise
        self.frames_written = 0
        log.info("writing %s: %s %s %dx%d at %s fps", self.path, settings.codec, pix_fmt, width, height, fps)

    def _check_codec(self, name: str, codec: av.codec.Codec) -> None:
        if codec.name not in self.container.supported_codecs:
            raise ConfigError(
                f"a {self.path.suffix} file cannot hold {name} video; pick another video.codec or write .mkv"
            )

    def _copy_audio(self, source: Path) -> None:
        """Remux every audio stream of ``source`` (before any video: the muxer interleaves by timestamp)."""
        av = pyav()
        with av.open(str(source)) as container:
            streams = container.streams.audio
            if not streams:
                return
            targets = {}
            for stream in streams:
                if stream.codec_context.name not in self.container.supported_codecs:
                    raise ConfigError(
                        f"a {self.path.suffix} file cannot hold the input's {stream.codec_context.name} audio; "
                        "write to .mkv (holds any codec) or strip the audio first"
                    )
                targets[stream.index] = self.container.add_stream_from_template(stream)
            try:
                for packet in container.demux(streams):
                    if packet.dts is None:  # demuxer flush packets carry no data
                        continue
                    packet.stream = targets[packet.stream.index]
                    self.container.mux(packet)
            except av.error.FFmpegError as error:
                log.warning("audio of %s copied only in part: %s", source, error)

    def write(self, frames: Tensor) -> None:
        av = pyav()
        for image in frames:
            frame = av.VideoFrame.from_ndarray(to_uint8(image), format="rgb24")
            frame.pts = self.frames_written
            self.container.mux(self.stream.encode(frame))
            self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder, finish the file and move it to ``path``."""
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Stop without writing ``path`` (the run failed for another reason than the input)."""
        self.container.close()
        self.tmp.unlink(missing_ok=True)
