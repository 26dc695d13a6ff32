"""Video in, video out: file round trips, warping error against known answers, the stabiliser, damaged files, CLI."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from conftest import run_command, save_net
from perceptual.data.sample import builtin_image
from perceptual.errors import ConfigError, DataError
from perceptual.evaluation.metrics import psnr
from perceptual.inference.temporal import (
    Stabiliser,
    consistency_mask,
    input_motion,
    panning_clip,
    warping_error,
)
from perceptual.inference.video import EncoderSettings, VideoReader, VideoWriter
from perceptual.inference.video_files import transform_video
from perceptual.nets import StyleTransferNet, SuperResolutionNet

FPS = Fraction(24)
SAMPLE_RATE = 8000


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real photo (scikit-image's astronaut) at 128x128: enough texture for optical flow."""
    return TF.resize(builtin_image("astronaut"), [128], antialias=True)


def write_tone(path: Path, seconds: float = 0.5) -> Path:
    """A mono AAC sine tone: the audio track of the test clips."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        samples = int(seconds * SAMPLE_RATE)
        for start in range(0, samples, 1024):
            wave = 0.2 * np.sin(np.arange(start, min(start + 1024, samples)) * 0.05, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(wave[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_clip(path: Path, frames: torch.Tensor, audio: Path | None = None, **settings) -> Path:
    writer = VideoWriter(path, FPS, frames.shape[-1], frames.shape[-2], EncoderSettings(**settings), audio)
    writer.write(frames)
    return writer.close()


def read_all(path: Path) -> tuple[VideoReader, torch.Tensor]:
    with VideoReader(path) as reader:
        return reader, torch.cat(list(reader.batches(5)))


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.dts is not None]


@pytest.mark.parametrize(("size", "pix_fmt"), [((48, 64), "yuv420p"), ((33, 47), "yuv444p")])
def test_clip_round_trip_keeps_frames_rate_size_and_audio(photo, tmp_path: Path, size, pix_fmt) -> None:
    clip, _, _ = panning_clip(photo, size, (2, 1), 10)
    tone = write_tone(tmp_path / "tone.m4a")
    path = write_clip(tmp_path / "clip.mp4", clip, audio=tone)
    reader, frames = read_all(path)
    assert reader.info.frames == 10 and reader.info.fps == FPS and reader.info.has_audio and reader.failure is None
    assert frames.shape == clip.shape and psnr(frames * 255, clip * 255).min() > 30
    with av.open(str(path)) as container:
        assert container.streams.video[0].format.name == pix_fmt  # auto: full chroma when a side is odd
    assert audio_packets(path) == audio_packets(tone)  # remuxed, not re-encoded


def test_encoder_settings_reject_what_ffmpeg_cannot_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an encoder"):
        EncoderSettings(codec="nonesuch")
    with pytest.raises(ConfigError, match=r"video\.crf is for"):
        EncoderSettings(codec="mpeg4")
    with pytest.raises(ConfigError, match="needs even sides"):
        VideoWriter(tmp_path / "odd.mp4", FPS, 47, 33, EncoderSettings(pix_fmt="yuv420p"))
    assert not list(tmp_path.iterdir())  # no half-made file left behind


def test_warping_error_is_zero_for_output_moving_with_input_and_c2_for_flicker(photo) -> None:
    clip, flows, masks = panning_clip(photo, (64, 96), (2, 1), 6)
    follows = clip.square()  # any per-pixel function of the input moves with it
    flicker = 0.1
    flickering = 0.8 * clip + flicker * (torch.arange(6) % 2).view(-1, 1, 1, 1)
    assert warping_error(follows, flows, masks).max() < 1e-12
    assert warping_error(flickering, flows, masks) == pytest.approx(torch.full((5,), flicker**2), rel=1e-4)
    estimated = input_motion(clip, "dis")  # the same with flow estimated from the frames
    assert warping_error(follows, *estimated).max() < 2e-4
    assert warping_error(flickering, *estimated) == pytest.approx(torch.full((5,), flicker**2), rel=0.05)


def test_masks_exclude_pixels_coming_from_outside_the_frame(photo) -> None:
    _, flows, masks = panning_clip(photo, (20, 30), (2, 1), 3)
    assert masks.sum(dim=(1, 2, 3)).tolist() == [(30 - 2) * (20 - 1)] * 2
    assert torch.equal(consistency_mask(flows, -flows), masks)  # consistent flow: only the frame edge is occluded
    assert not consistency_mask(flows, flows)[:, :, 5:-5, 5:-5].any()  # reverse flow that does not lead back


def test_sub_pixel_pan_has_the_stated_flow() -> None:
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(60.0), indexing="ij")
    ramp = torch.stack([xs / 60, ys / 40, (xs + ys) / 100])  # bilinear warping is exact on linear images
    clip, flows, masks = panning_clip(ramp, (12, 16), (3, 1), 4, zoom=2)
    assert flows[0, :, 0, 0].tolist() == [1.5, 0.5]
    assert warping_error(clip, flows, masks).max() < 1e-12


@pytest.mark.parametrize(
    ("noise", "step", "zoom", "blend", "bound"),
    [
        (0.0, (2, 1), 1, 0.0, 0.3),  # whole-pixel pans: exact stride-grid alignment
        (0.02, (2, 1), 1, 0.0, 0.3),
        (0.02, (3, 1), 2, 0.0, 0.5),  # (1.5, 0.5) px: bicubic sub-pixel shifts of a pixel-noisy random net
        (0.02, (3, 1), 2, 0.3, 0.3),
    ],
)
def test_stabiliser_cuts_the_flicker_of_a_random_net(noise: float, step, zoom: int, blend: float, bound) -> None:
    torch.manual_seed(0)
    net = StyleTransferNet(width=8, norm="instance").eval()
    photo = TF.resize(builtin_image("astronaut"), [160], antialias=True)
    clip, flows, masks = panning_clip(photo, (48, 64), step, 8, noise=noise, zoom=zoom)  # sub-pixel when zoom = 2
    stabiliser = Stabiliser(stride=net.downsample, blend=blend)
    with torch.no_grad():
        per_frame = torch.cat([net(clip[:4]), net(clip[4:])])
        stable = torch.cat([stabiliser(net, clip[:4]), stabiliser(net, clip[4:])])  # state carries across batches
    assert stable.shape == per_frame.shape
    pan = [7 * step[0] / zoom, 7 * step[1] / zoom]  # the stride grid followed the scene over 7 frames
    assert stabiliser.offset.tolist() == pytest.approx(pan, abs=0.5)
    assert warping_error(stable, flows, masks).mean() < bound * warping_error(per_frame, flows, masks).mean()


def test_super_resolution_video_is_scale_times_larger(photo, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=2, width=8, n_residual=1, norm="instance").eval()
    clip, _, _ = panning_clip(photo, (21, 30), (2, 1), 6)  # odd height: the x2 output is even
    source = write_clip(tmp_path / "lr.mkv", clip)
    report = transform_video(torch.no_grad()(net), source, tmp_path / "hr.mp4", 4, stabiliser=Stabiliser(1, 0.3))
    reader, frames = read_all(report.target)
    assert report.frames == 6 and report.failure is None
    assert frames.shape == (6, 3, 42, 60) and reader.info.fps == FPS


def test_damaged_files(photo, tmp_path: Path) -> None:
    clip, _, _ = panning_clip(photo, (48, 64), (2, 1), 30)
    complete = write_clip(tmp_path / "clip.mkv", clip).read_bytes()
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(complete[: len(complete) * 2 // 3])
    report = transform_video(lambda x: 1 - x, truncated, tmp_path / "out.mp4")
    _, frames = read_all(report.target)
    assert 0 < report.frames == len(frames) < 30 and "decoding stopped" in report.failure
    assert report.summarise(report.target) == 1
    # an mp4 cut short loses its index (written last): nothing can be read
    (tmp_path / "cut.mp4").write_bytes(write_clip(tmp_path / "clip.mp4", clip).read_bytes()[:5000])
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    for name in ("cut.mp4", "junk.mp4"):
        with pytest.raises(DataError, match=f"cannot read video .*{name}"):
            transform_video(lambda x: x, tmp_path / name, tmp_path / "never.mp4")
    assert not (tmp_path / "never.mp4").exists()


def test_stylize_command_turns_a_video_into_a_video(photo, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    ckpt = save_net(tmp_path / "net.ckpt", StyleTransferNet(width=8, norm="instance"))
    clip, flows, masks = panning_clip(photo, (48, 64), (2, 1), 8)
    source = write_clip(tmp_path / "clip.mp4", clip, audio=write_tone(tmp_path / "tone.m4a"))
    errors = {}
    for temporal in ("stable", "none"):
        target = tmp_path / f"{temporal}.mkv"
        assert (
            run_command("stylize.py", f"ckpt={ckpt}", f"input={source}", f"output={target}", f"temporal={temporal}")
            == 0
        )
        assert f"wrote 8 frame(s) to {target}" in capsys.readouterr().out
        reader, frames = read_all(target)
        assert frames.shape == clip.shape and reader.info.fps == FPS and reader.info.has_audio
        errors[temporal] = warping_error(frames, flows, masks).mean()
    assert errors["stable"] < 0.5 * errors["none"]
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes((tmp_path / "none.mkv").read_bytes()[:-3000])
    assert run_command("stylize.py", f"ckpt={ckpt}", f"input={truncated}", f"output={tmp_path / 'out.mp4'}") == 1
    assert f"failed: {truncated}: decoding stopped" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"junk")
    assert (
        run_command("stylize.py", f"ckpt={ckpt}", f"input={tmp_path / 'junk.mp4'}", f"output={tmp_path / 'o.mp4'}") == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: cannot read video")
