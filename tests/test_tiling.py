from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import run_command, save_net, write_images
from perceptual.errors import ConfigError
from perceptual.evaluation.benchmark import load_upscaler
from perceptual.inference.fusion import with_fusion
from perceptual.inference.runner import Runner
from perceptual.inference.tiling import TiledApply, net_stride, probe, spans, with_tiling
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny tiles make many tiny forwards, which a second thread only slows down on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the CLI runs
    yield
    torch.set_num_threads(threads)


def _randomise_norms(net: nn.Module) -> nn.Module:
    """Non-trivial affine parameters and running statistics, so that a wrong normalisation shows."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.5, 0.5, generator=generator)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
    return net.eval()


def _with_residual(net: SuperResolutionNet) -> SuperResolutionNet:
    """The skip net's last conv starts at zero (the net is bicubic); give it weights so the residual shows."""
    nn.init.normal_(net.body[-1][1].weight, std=0.05)
    return net


NETS = {  # name: (net, image size, tile)
    "style, batch norm": (lambda: StyleTransferNet(width=8, n_residual=1), (75, 93), 72),
    "style, instance norm": (
        lambda: StyleTransferNet(width=8, n_residual=1, norm="instance", upsample="nearest"),
        (75, 93),
        72,
    ),
    "sr x4": (lambda: SuperResolutionNet(4, width=8, n_residual=1), (37, 29), 24),
    "sr x4, bilinear upsampling": (lambda: SuperResolutionNet(4, 8, 1, upsample="bilinear"), (37, 29), 24),
    "sr x4, bicubic skip": (
        lambda: _with_residual(SuperResolutionNet(4, 8, 1, skip="bicubic", output="clamp")),
        (37, 29),
        24,
    ),
    "stylebank": (lambda: StyleBankNet(3, width=8), (75, 61), 56),
}


def _net(name: str) -> tuple[nn.Module, torch.Tensor, int]:
    torch.manual_seed(0)
    build, size, tile = NETS[name]
    return _randomise_norms(build()), torch.rand(2, 3, *size), tile


def _assert_tiled(net: nn.Module, tiled: TiledApply, images: torch.Tensor) -> None:
    """The image is cut into at least three tiles along each axis (so interior tiles exist)."""
    for size in images.shape[-2:]:
        assert len(spans(size, tiled.tile, tiled.halo, tiled.geometry.stride)) >= 3


@pytest.mark.parametrize("name", list(NETS))
def test_tiles_reproduce_the_untiled_output(name: str) -> None:
    net, images, tile = _net(name)
    kwargs = {"style_index": torch.tensor([1, 2])} if isinstance(net, StyleBankNet) else {}
    runner = Runner(net, "cpu")
    untiled = runner(images, **kwargs)
    tiled = TiledApply(runner, net, tile)
    _assert_tiled(net, tiled, images)
    torch.testing.assert_close(tiled(images, **kwargs), untiled, rtol=0, atol=1e-5)


def test_a_strip_is_tiled_along_its_long_side_only() -> None:
    net, _, tile = _net("style, instance norm")
    images = torch.rand(1, 3, tile - 5, 3 * tile)
    runner = Runner(net, "cpu")
    tiled = TiledApply(runner, net, tile)
    assert (
        len(spans(images.shape[-2], tile, tiled.halo, 4)) == 1 and len(spans(images.shape[-1], tile, tiled.halo, 4)) > 3
    )
    torch.testing.assert_close(tiled(images), runner(images), rtol=0, atol=1e-5)


def test_region_mask_fusion_is_cropped_per_tile(tmp_path: Path) -> None:
    net, images, tile = _net("stylebank")
    height, width = images.shape[-2:]
    yy, xx = np.mgrid[0:height, 0:width]
    diagonal = (xx * height > yy * width * 0.7).astype(np.uint8) * 255  # a boundary crossing tiles at every angle
    Image.fromarray(diagonal).save(tmp_path / "a.png")
    Image.fromarray(255 - diagonal).save(tmp_path / "b.png")
    options = {"banks": [0, 2], "masks": str(tmp_path)}
    runner = Runner(net, "cpu")
    tiled = TiledApply(runner, net, tile)
    _assert_tiled(net, tiled, images)
    expected = with_fusion(runner, net, options)(images)
    torch.testing.assert_close(with_fusion(tiled, net, options)(images), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["style, batch norm", "sr x4", "stylebank"])
def test_a_pixel_changes_the_output_exactly_within_the_radius(name: str) -> None:
    net, _, _ = _net(name)
    if isinstance(net, StyleBankNet):  # batch norm, so that the net is local without tiling's help
        net = _randomise_norms(StyleBankNet(3, width=8, norm="batch"))
    geometry = probe(net)
    radius, scale = geometry.radius, geometry.scale
    image = torch.rand(1, 3, 4 * radius + 8, 4 * radius + 8)
    kwargs = {"style_index": 1} if isinstance(net, StyleBankNet) else {}
    reached = 0
    for phase in range(geometry.stride):
        centre = 2 * radius + phase
        changed = image.clone()
        changed[..., centre, centre] += 0.5
        with torch.no_grad():
            differs = (net(image, **kwargs) != net(changed, **kwargs)).any(dim=1)[0]
        distance = (differs.nonzero() // scale - centre).abs().max()
        assert distance <= radius
        reached = max(reached, int(distance))
    assert reached == radius  # the radius is not larger than it needs to be


def test_geometry_follows_the_nets_stride_and_padding() -> None:
    style = StyleTransferNet(width=8, n_residual=2, norm="instance", padding="paper")
    geometry = probe(style)
    assert net_stride(style) == geometry.stride == style.downsample == 4
    assert geometry.scale == 1 and len(geometry.norms) == 3 + 2 * 2 + 2
    rows, cols = geometry.norms["body.0.2"]  # the first conv's map: the input padded by the residual context
    assert rows == cols and (rows.step, rows.offset) == (1, style.context)
    rows, _ = geometry.norms["body.2.2"]  # after two stride-2 convs
    assert rows.step == 4
    sr = SuperResolutionNet(8, width=8, n_residual=1, norm="instance")
    geometry = probe(sr)
    assert geometry.stride == 1 and geometry.scale == 8
    assert sorted(rows.step for rows, _ in geometry.norms.values())[:3] == [1 / 8, 1 / 4, 1 / 2]


def test_instance_norms_are_put_back() -> None:
    net, images, tile = _net("style, instance norm")
    before = {name: module for name, module in net.named_modules()}
    state = {key: value.clone() for key, value in net.state_dict().items()}
    TiledApply(Runner(net, "cpu"), net, tile)(images)
    assert {name: module for name, module in net.named_modules()} == before
    assert all(torch.equal(state[key], value) for key, value in net.state_dict().items())


def test_images_within_one_tile_run_untiled() -> None:
    net, images, _ = _net("style, batch norm")
    calls = []
    TiledApply(lambda batch: calls.append(batch.shape) or batch, net, 200)(images)
    assert calls == [images.shape]
    assert with_tiling(print, net, None) is print


@pytest.mark.parametrize("tile", [0, -8, 1.5, "big", True])
def test_tile_must_be_a_positive_integer(tile: object) -> None:
    with pytest.raises(ConfigError, match=r"must be a positive integer") as error:
        TiledApply(print, StyleTransferNet(width=4, n_residual=1), tile)
    assert "\n" not in str(error.value)


def test_tile_too_small_for_the_receptive_field_names_the_minimum() -> None:
    net = StyleTransferNet(width=4, n_residual=1)
    halo = -(-probe(net).radius // 4) * 4
    minimum = 2 * halo + 4
    with pytest.raises(ConfigError, match=rf"tile=40 is too small .* pass tile>={minimum} or tile=null"):
        TiledApply(print, net, 40)
    TiledApply(print, net, minimum)
    with pytest.raises(ConfigError, match="tile_overlap=-4 must be auto or a non-negative integer"):
        TiledApply(print, net, 64, overlap=-4)


def test_stylize_command_tiles_to_the_untiled_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    ckpt = save_net(tmp_path / "net.ckpt", _randomise_norms(StyleTransferNet(width=8, n_residual=1, norm="instance")))
    (source,) = write_images(tmp_path / "in", 1, size=(131, 151))
    outputs = {}
    for tile in ("null", "72"):
        target = tmp_path / f"out_{tile}.png"
        # fp32: bf16 (what precision=auto picks on a bf16 CPU) rounds a tile's convolutions unlike the whole image's
        args = (f"ckpt={ckpt}", f"input={source}", f"output={target}", f"tile={tile}", "precision=fp32")
        assert run_command("stylize.py", *args) == 0
        outputs[tile] = np.asarray(Image.open(target)).astype(int)
    assert outputs["72"].shape == (131, 151, 3)
    assert np.abs(outputs["72"] - outputs["null"]).max() <= 1  # a level at most, where a value sits on a rounding edge
    assert (outputs["72"] != outputs["null"]).mean() < 1e-3
    capsys.readouterr()
    assert run_command("stylize.py", f"ckpt={ckpt}", f"input={source}", f"output={tmp_path}/x.png", "tile=16") == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: tile=16 is too small for this StyleTransferNet")


def test_evaluate_upscaler_is_tiled(tmp_path: Path) -> None:
    net, images, tile = _net("sr x4")
    ckpt = save_net(tmp_path / "sr.ckpt", net, task="sr")
    untiled = load_upscaler(ckpt, 4, "cpu")(images)
    torch.testing.assert_close(load_upscaler(ckpt, 4, "cpu", tile=tile)(images), untiled, rtol=0, atol=1e-5)
