"""stroke=: painting at a working resolution, edges snapped to the photo's and its detail re-injected, through the one
pipeline and the CLI; the stroke-wavelength measure on textures of known wavelength."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from conftest import run_command
from perceptual.checkpoints import CheckpointMetadata, slim_checkpoint
from perceptual.errors import ConfigError
from perceptual.evaluation.strokes import peak_wavelength, power_per_octave, stroke_wavelength
from perceptual.imaging.color import luma
from perceptual.imaging.io import load_image, save_image
from perceptual.inference.pipeline import PipelineOptions, build_pipeline
from perceptual.inference.stroke import (
    DEFAULT_TRAINING_SIZE,
    DETAIL_GAIN,
    parse_stroke,
    photo_detail,
    reinject_detail,
    resize_bicubic,
    snap_upsample,
    working_size,
)
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet

LEVEL = 1 / 255 + 1e-6


def _photo(height: int = 45, width: int = 61, seed: int = 0) -> torch.Tensor:
    """A smooth gradient with fine texture on top: detail above any working resolution's Nyquist."""
    torch.manual_seed(seed)
    ys, xs = torch.linspace(0, 1, height)[:, None], torch.linspace(0, 1, width)[None]
    base = torch.stack(
        [0.3 + 0.3 * ys * xs.new_ones(1, width), 0.4 + 0.2 * xs * ys.new_ones(height, 1), 0.5 - 0.1 * ys * xs]
    )
    return (base + 0.1 * torch.rand(1, height, width)).clamp(0, 1)[None]


@pytest.mark.parametrize(
    ("value", "factor"), [(None, None), ("none", None), ("auto", 1.0), (2, 2.0), ("0.5", 0.5), (1.5, 1.5)]
)
def test_stroke_values_name_a_factor(value: object, factor: float | None) -> None:
    assert parse_stroke(value) == factor


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "stroke=-1 must be a positive number; use stroke=none, stroke=auto"), (0, "positive"), ("inf", "positive"),
     ("big", "stroke='big' is not a number; use stroke=none"), ([2], "not a number")],
)  # fmt: skip
def test_bad_stroke_values_are_one_line_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        parse_stroke(value)
    assert "\n" not in str(error.value)


def test_working_resolution_puts_the_training_size_on_the_shorter_side_over_the_factor() -> None:
    assert working_size((2048, 1365), 256, 1.0) == (384, 256)
    assert working_size((1365, 2048), 256, 2.0) == (128, 192)  # strokes twice as large: half the working size
    assert working_size((100, 200), 256, 0.5) == (512, 1024)  # small photos are painted larger
    assert working_size((512, 512), 128, 4.0) == (32, 32)


def test_the_training_size_comes_from_the_run_config() -> None:
    recorded = CheckpointMetadata(net={}, task="style", run_config="data:\n  image_size: 128\n")
    assert recorded.training_size == 128
    assert CheckpointMetadata(net={}, task="style").training_size is None
    assert CheckpointMetadata(net={}, task="style", run_config="seed: 1\n").training_size is None


def test_stroke_none_is_bit_identical_to_the_plain_pipeline() -> None:
    net = StyleTransferNet(width=4, n_residual=1).eval()
    x = _photo()
    plain = build_pipeline(net, PipelineOptions(device="cpu"))(x)
    for none in (None, "none"):
        assert torch.equal(build_pipeline(net, PipelineOptions(device="cpu", stroke=none), 32)(x), plain)


def test_a_constant_output_plus_the_photo_detail_is_the_photos_high_frequencies() -> None:
    photo = _photo(90, 120)
    flat = torch.full((1, 3, 30, 40), 0.5)
    out = reinject_detail(photo, flat)
    assert out.shape == photo.shape
    detail = photo_detail(photo, (30, 40))
    torch.testing.assert_close(out - 0.5, DETAIL_GAIN * detail.expand_as(out))  # a grey shift: the same on R, G, B
    high = lambda image: image - torch.nn.functional.avg_pool2d(image, 5, 1, 2, count_include_pad=False)  # noqa: E731
    correlation = torch.corrcoef(torch.stack([high(luma(out)).flatten(), high(luma(photo)).flatten()]))[0, 1]
    assert correlation > 0.95  # the photo's fine texture is back
    assert detail.mean().abs() < 0.01  # and nothing of its low frequencies


def test_the_snap_moves_the_paintings_colours_to_their_side_of_the_photos_edge_without_overshoot() -> None:
    photo = torch.full((1, 3, 60, 90), 0.2)
    photo[..., 41:] = 0.8  # a step that falls between the working pixels (a third of the size)
    low = (20, 30)
    bright = ((luma(resize_bicubic(photo, low)) - 0.2) / 0.6).clamp(0, 1)
    red, blue = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1), torch.tensor([0.1, 0.1, 0.9]).view(1, 3, 1, 1)
    painting = red + bright * (blue - red)  # red on the dark side, blue on the bright, blended where the step blurs
    ideal = torch.where(photo[:, :1] > 0.5, blue, red)
    snapped = snap_upsample(photo, painting)
    band = slice(41 - 8, 41 + 8)
    bicubic = resize_bicubic(painting, (60, 90))
    error = lambda image: (image - ideal)[..., band].abs().mean()  # noqa: E731
    assert error(snapped) < 0.4 * error(bicubic)
    assert snapped.amin() >= bicubic.amin() - 1e-6 and snapped.amax() <= bicubic.amax() + 1e-6  # no new overshoot


def test_the_snap_leaves_strokes_where_the_photo_is_flat() -> None:
    torch.manual_seed(0)
    strokes = torch.rand(1, 3, 16, 24)
    flat = torch.full((1, 3, 64, 96), 0.4)
    torch.testing.assert_close(snap_upsample(flat, strokes), resize_bicubic(strokes, (64, 96)))


def test_stroke_paints_at_the_working_size_and_returns_the_input_size() -> None:
    net = StyleTransferNet(width=4, n_residual=1).eval()
    x = _photo(71, 97)
    seen: list[tuple[int, ...]] = []
    handle = net.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    out = build_pipeline(net, PipelineOptions(device="cpu", stroke=2), 64)(x)
    handle.remove()
    assert seen == [(32, 44)] and out.shape == x.shape
    with torch.no_grad():
        expected = reinject_detail(x, net(torch.nn.functional.interpolate(x, (32, 44), mode="bicubic", antialias=True)))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_stroke_composes_with_tiling_fusion_and_the_style_controls() -> None:
    torch.manual_seed(0)
    bank = StyleBankNet(num_styles=3, width=4).eval()
    x = _photo(80, 104)
    options = {"device": "cpu", "stroke": 0.4, "fusion": {"banks": [0, 2], "weights": [0.25, 0.75]}}
    whole = build_pipeline(bank, PipelineOptions(**options), 40)(x)  # painted at 100 x 130
    tiled = build_pipeline(bank, PipelineOptions(**options, tile=48), 40)(x)
    assert whole.shape == x.shape
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    faded = build_pipeline(bank, PipelineOptions(**options, strength=0.0), 40)(x)
    torch.testing.assert_close(faded, x)  # strength acts on the full-size result against the full-size photo


def test_stroke_is_refused_where_it_cannot_apply(caplog: pytest.LogCaptureFixture) -> None:
    sr = SuperResolutionNet(scale=2, width=4, n_residual=1)
    with pytest.raises(ConfigError, match="stroke=auto applies to style nets; this checkpoint holds a SuperRes"):
        build_pipeline(sr, PipelineOptions(device="cpu", stroke="auto"))
    style = StyleTransferNet(width=4, n_residual=1)
    with pytest.raises(ConfigError, match=r"stroke=16 paints at 16 px, below 32 px .* use stroke<=8"):
        build_pipeline(style, PipelineOptions(device="cpu", stroke=16), 256)
    with caplog.at_level(logging.WARNING, logger="perceptual.inference.stroke"):
        build_pipeline(style, PipelineOptions(device="cpu", stroke="auto"))
    assert f"assuming {DEFAULT_TRAINING_SIZE} px" in caplog.text


def test_stylize_command_with_stroke_auto(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    net = StyleTransferNet(width=4, n_residual=1).eval()
    metadata = CheckpointMetadata(net=net.config(), task="style", run_config="data:\n  image_size: 32\n")
    ckpt = tmp_path / "style.ckpt"
    torch.save(slim_checkpoint(metadata, net.state_dict()), ckpt)
    save_image(_photo(48, 80)[0], tmp_path / "in.png")
    photo = load_image(tmp_path / "in.png")[None]
    args = (f"ckpt={ckpt}", f"input={tmp_path / 'in.png'}", "device=cpu", "precision=fp32")  # as expected below
    assert run_command("stylize.py", *args, f"output={tmp_path / 'out.png'}", "stroke=auto") == 0
    written = load_image(tmp_path / "out.png")[None]
    assert written.shape == photo.shape
    with torch.no_grad():
        small = torch.nn.functional.interpolate(photo, (32, 53), mode="bicubic", antialias=True)
        expected = reinject_detail(photo, net(small).clamp(0, 1))
    assert (written - expected).abs().max() <= LEVEL
    capsys.readouterr()
    assert run_command("stylize.py", *args, f"output={tmp_path / 'bad.png'}", "stroke=-1") == 2
    assert capsys.readouterr().err.strip().startswith("error: stroke=-1 must be a positive number")


TEXTURE_SIZE = 384


def _texture(wavelength: float, seed: int = 0, octaves: float = 0.35) -> torch.Tensor:
    """Random-phase luma texture [H,W] whose power per octave is a Gaussian in log frequency peaking at
    1 / ``wavelength``, std 0.05."""
    generator = torch.Generator().manual_seed(seed)
    fy, fx = torch.fft.fftfreq(TEXTURE_SIZE)[:, None], torch.fft.fftfreq(TEXTURE_SIZE)[None]
    k = (fy.square() + fx.square()).sqrt().clamp_min(1e-6)
    amplitude = torch.exp(-torch.log2(k * wavelength).square() / (4 * octaves**2)) / k  # power per octave k^2 |.|^2
    phase = torch.exp(2j * math.pi * torch.rand(TEXTURE_SIZE, TEXTURE_SIZE, generator=generator))
    texture = torch.fft.ifft2(amplitude * phase).real
    return 0.05 * texture / texture.std()


def _blobs(seed: int = 1) -> torch.Tensor:
    """A photo-like [3,H,W] image: colour blobs about 30 px across."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, TEXTURE_SIZE // 32, TEXTURE_SIZE // 32, generator=generator)
    image = torch.nn.functional.interpolate(noise, size=(TEXTURE_SIZE,) * 2, mode="bicubic", align_corners=False)
    return 0.2 + 0.6 * image[0].clamp(0, 1)


@pytest.mark.parametrize("wavelength", [12.0, 24.0])
def test_stroke_wavelength_is_the_textures_spectral_peak_and_scales_with_it(wavelength: float) -> None:
    photo = _blobs()
    measured = stroke_wavelength(photo + _texture(wavelength), photo)
    assert measured == pytest.approx(wavelength, rel=0.02)
    assert stroke_wavelength(photo + _texture(2 * wavelength, seed=5), photo) / measured == pytest.approx(2, rel=0.03)


def test_stroke_wavelength_ignores_a_colour_ramp_and_shifts_the_photo_explains() -> None:
    photo = _blobs()
    ys, xs = torch.meshgrid(*(torch.linspace(0, 1, TEXTURE_SIZE),) * 2, indexing="ij")
    ramp = 0.5 * (xs + ys)  # a smooth large-scale colour change, four times the texture's std
    y = luma(photo)
    locked = 3 * (0.2 + ramp) * (y - y.mean())  # darkens dark regions, more so towards one corner
    shifted = photo + _texture(16) + ramp + locked
    assert stroke_wavelength(shifted, photo) == pytest.approx(stroke_wavelength(photo + _texture(16), photo), rel=0.01)
    residual = (luma(shifted) - y)[0].double().numpy()
    assert peak_wavelength(*power_per_octave(residual)) > 60  # without the fit, the content's size is the peak
