"""Style controls after the net: colour preservation (luma-only transfer) and strength, for Johnson nets and StyleBank,
through the library and the stylize CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr

from conftest import run_command, save_net
from perceptual.errors import ConfigError
from perceptual.imaging.color import keep_chroma, quantize, rgb_to_y, rgb_to_ycbcr
from perceptual.imaging.io import load_image
from perceptual.inference.fusion import with_fusion
from perceptual.inference.postprocess import StyleControls, with_style_controls
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet

LEVEL = 1 / 255


def _photo(height: int = 24, width: int = 28, seed: int = 0) -> torch.Tensor:
    """A smooth colourful batch of two images in [0, 1] (gradients + noise), like a photo's colours."""
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    base = torch.stack([0.2 + 0.6 * xx, 0.3 + 0.5 * yy, 0.7 - 0.5 * xx * yy])
    return quantize(base + 0.05 * torch.randn(2, 3, height, width, generator=generator))


def _style_net() -> StyleTransferNet:
    torch.manual_seed(0)
    return StyleTransferNet(width=8, n_residual=1, norm="instance").eval()


def _stylebank() -> StyleBankNet:
    torch.manual_seed(0)
    return StyleBankNet(num_styles=2, width=8).eval()


def test_ycbcr_matches_skimage_rgb2ycbcr() -> None:
    image = torch.rand(3, 6, 7, dtype=torch.float64)
    expected = rgb2ycbcr(image.permute(1, 2, 0).numpy())
    np.testing.assert_allclose(rgb_to_ycbcr(image).permute(1, 2, 0).numpy(), expected, atol=1e-9)


def test_keep_chroma_takes_luma_from_one_image_and_chroma_from_the_other() -> None:
    source = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    styled = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    result = keep_chroma(source, styled)
    assert result.min() >= 0 and result.max() <= 1
    torch.testing.assert_close(rgb_to_ycbcr(result)[:, 1:], rgb_to_ycbcr(source)[:, 1:])  # chroma exactly kept
    shift = result - source
    torch.testing.assert_close(shift.diff(dim=1), torch.zeros_like(shift.diff(dim=1)))  # R, G, B move together
    # the stylised luma wherever the source's colour can have it ...
    luma, wanted, own = rgb_to_y(result)[:, 0], rgb_to_y(styled)[:, 0], rgb_to_y(source)[:, 0]
    unclamped = source + (wanted - own)[:, None] / 219
    fits = (unclamped.amin(dim=1) >= 0) & (unclamped.amax(dim=1) <= 1)
    torch.testing.assert_close(luma[fits], wanted[fits])
    # ... else the nearest one it can have: at the cube's surface, between its own luma and the wanted one
    at_surface = (result.amin(dim=1) < 1e-12) | (result.amax(dim=1) > 1 - 1e-12)
    assert at_surface[~fits].all()
    assert ((luma - own) * (wanted - luma) >= -1e-9)[~fits].all()
    assert 0.2 < fits.float().mean() < 0.9  # both cases occur


@pytest.mark.parametrize("make_net", [_style_net, _stylebank])
def test_preserve_color_keeps_the_inputs_chroma_within_1_5_levels_after_8bit(make_net) -> None:
    net = make_net()
    photo = _photo()
    apply = with_fusion(net, net, {"bank": 1} if isinstance(net, StyleBankNet) else {})
    with torch.no_grad():
        styled = apply(photo)
        kept = with_style_controls(apply, net, preserve_color=True)(photo)
    chroma_change = (rgb_to_ycbcr(quantize(kept)) - rgb_to_ycbcr(photo))[:, 1:].abs()
    assert chroma_change.mean(dim=(0, 2, 3)).max() <= 1.5 and chroma_change.max() <= 1.5
    styled_chroma_change = (rgb_to_ycbcr(styled) - rgb_to_ycbcr(photo))[:, 1:].abs().mean()
    assert styled_chroma_change > 5  # the random net does change colours: the test can fail
    luma_match = (rgb_to_y(kept) - rgb_to_y(styled)).abs().median()
    assert luma_match < 0.5  # in 8-bit levels: the stylised luma


@pytest.mark.parametrize("make_net", [_style_net, _stylebank])
@pytest.mark.parametrize("preserve_color", [False, True])
def test_strength_blends_from_the_input_to_the_full_stylisation(make_net, preserve_color: bool) -> None:
    net = make_net()
    photo = _photo(seed=1)
    apply = with_fusion(net, net, {"bank": 0} if isinstance(net, StyleBankNet) else {})
    with torch.no_grad():
        outputs = {s: with_style_controls(apply, net, s, preserve_color)(photo) for s in (0.0, 0.25, 0.5, 0.75, 1.0)}
        full = StyleControls(preserve_color=preserve_color)(photo, apply(photo))
    assert (quantize(outputs[0.0]) - photo).abs().max() <= LEVEL  # 0: the input
    torch.testing.assert_close(outputs[1.0], full)  # 1: the (colour-kept) net output
    distances = {s: (out - photo).abs().mean().item() for s, out in outputs.items()}
    assert distances[1.0] > 0.05
    for s in (0.25, 0.5, 0.75):
        assert distances[s] == pytest.approx(s * distances[1.0], rel=1e-4)  # proportional, hence monotonic
        torch.testing.assert_close(outputs[s], photo + s * (full - photo))


def test_no_controls_leave_apply_untouched_and_bad_ones_are_config_errors() -> None:
    net = _style_net()
    assert with_style_controls(net, net) is net
    assert with_style_controls(net, net, strength=1) is net
    for strength in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match=r"strength=.* is out of range; use 0\.\.1"):
            with_style_controls(net, net, strength=strength)
    with pytest.raises(ConfigError, match="is not a number"):
        with_style_controls(net, net, strength="strong")
    sr = SuperResolutionNet(scale=2, width=4, n_residual=1)
    assert with_style_controls(sr, sr) is sr
    for options in ({"preserve_color": True}, {"strength": 0.5}):
        with pytest.raises(ConfigError, match="apply to style nets; this checkpoint holds a SuperResolutionNet"):
            with_style_controls(sr, sr, **options)


def test_stylize_command_preserves_colour_at_half_strength(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    net = _style_net()
    ckpt = save_net(tmp_path / "style.ckpt", net)
    photo = _photo(27, 33)[0]
    Image.fromarray((photo.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / "in.png")
    assert (
        run_command(
            "stylize.py",
            f"ckpt={ckpt}",
            f"input={tmp_path / 'in.png'}",
            f"output={tmp_path / 'out.png'}",
            "device=cpu",
            "precision=fp32",  # compared with an fp32 forward pass below; auto may pick bf16 on this CPU
            "preserve_color=true",
            "strength=0.5",
        )
        == 0
    )
    written = load_image(tmp_path / "out.png")
    with torch.no_grad():
        expected = StyleControls(0.5, preserve_color=True)(photo[None], net(photo[None]))[0]
    assert (written - expected).abs().max() <= LEVEL
    assert (rgb_to_ycbcr(written) - rgb_to_ycbcr(photo))[1:].abs().mean() <= 1.5
    assert (written - photo).abs().mean() > 0.02  # and it is stylised

    capsys.readouterr()
    bad = run_command(
        "stylize.py", f"ckpt={ckpt}", f"input={tmp_path / 'in.png'}", f"output={tmp_path / 'bad.png'}", "strength=2"
    )
    assert bad == 2 and "strength=2.0 is out of range; use 0..1" in capsys.readouterr().err
