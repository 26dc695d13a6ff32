"""Export to ONNX and TorchScript: dynamic sizes, parity with PyTorch (ONNX Runtime, TorchScript), StyleBank's second
input, metadata, errors and the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from conftest import run_command, save_net
from perceptual.errors import ConfigError, ExportError
from perceptual.inference.export import export_net, graph_for, load_exported, min_side, read_metadata
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet

TOLERANCE = 2 / 255


def _bicubic_skip_net() -> nn.Module:
    """An x4 net with the bicubic skip, its zero-initialised last conv made random so both paths count."""
    net = SuperResolutionNet(scale=4, width=4, n_residual=1, upsample="nearest", output="clamp", skip="bicubic")
    last_conv = net.body[-1][1]
    nn.init.normal_(last_conv.weight, std=0.01)
    return net.eval()


def _nets() -> dict[str, tuple[nn.Module, str | None]]:
    torch.manual_seed(0)
    return {
        "style": (StyleTransferNet(width=4, n_residual=2, norm="instance", upsample="nearest").eval(), None),
        "sr_x4": (SuperResolutionNet(scale=4, width=4, n_residual=1).eval(), None),
        "sr_x4_skip": (_bicubic_skip_net(), None),
        "stylebank": (StyleBankNet(num_styles=3, width=4).eval(), "index"),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[nn.Module, Path]]:
    """Each net exported once per format (exports take seconds each)."""
    folder = tmp_path_factory.mktemp("export")
    files = {}
    for name, (net, stylebank) in _nets().items():
        for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
            result = export_net(net, fmt, folder / f"{name}{suffix}", stylebank, {"task": name}, verify=False)
            files[name, fmt] = net, result.path
    return files


def _odd_images(batch: int, height: int, width: int) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", ["style", "sr_x4", "sr_x4_skip"])
def test_exported_nets_match_pytorch_on_odd_sizes_they_were_not_traced_at(exported, name: str, fmt: str) -> None:
    net, path = exported[name, fmt]
    run = load_exported(path)
    side = read_metadata(path)["min_side"]
    for batch, height, width in ((1, side + 14, side + 2), (3, side, side + 7)):  # traced at 2 x (side+8) x (side+11)
        images = _odd_images(batch, height | 1, width | 1)
        with torch.no_grad():
            expected = net(images)
        output = run(images)
        assert output.shape == expected.shape == (batch, 3, net.upscale * (height | 1), net.upscale * (width | 1))
        assert output.dtype == torch.float32 and output.min() >= 0 and output.max() <= 1
        assert (output - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_stylebank_export_takes_the_bank_of_each_image(exported, fmt: str) -> None:
    net, path = exported["stylebank", fmt]
    run = load_exported(path)
    images, banks = _odd_images(3, 21, 35), torch.tensor([2, 0, 1])
    output = run(images, banks)
    with torch.no_grad():
        expected = net(images, style_index=banks)
    assert output.shape == images.shape and (output - expected).abs().max() <= TOLERANCE
    assert (output[0] - run(images[:1], torch.tensor([1]))[0]).abs().max() > 10 * TOLERANCE  # the index matters


def test_stylebank_export_with_fusion_weights_matches_the_fused_net(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = StyleBankNet(num_styles=3, width=4).eval()
    path = export_net(net, "torchscript", tmp_path / "fused.pt", stylebank="weights").path
    images, weights = _odd_images(2, 19, 25), torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        expected = net(images, weights=weights[:, :, None, None])
    assert (load_exported(path)(images, weights) - expected).abs().max() <= TOLERANCE


def test_onnx_graph_declares_dynamic_axes_and_carries_metadata(exported) -> None:
    _, path = exported["sr_x4", "onnx"]
    model = onnx.load(str(path))
    dims = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*model.graph.input, *model.graph.output]
    }
    assert dims == {"image": ["batch", 3, "height", "width"], "output": ["batch", 3, "4*height", "4*width"]}
    assert read_metadata(path) == {
        "task": "sr_x4",
        "net": "SuperResolutionNet",
        "inputs": ["image"],
        "min_side": 5,
        "scale": 4,
        "num_styles": 0,
    }
    _, bank_path = exported["stylebank", "torchscript"]
    assert read_metadata(bank_path)["inputs"] == ["image", "bank"] and read_metadata(bank_path)["num_styles"] == 3


def test_min_side_is_the_smallest_size_that_reflects_everywhere() -> None:
    # paper padding: input padded to a multiple of 4, then reflected by 2 x 4 pixels per residual block
    net = StyleTransferNet(width=4, n_residual=2, padding="paper").eval()
    assert min_side(graph_for(net)) == 17  # 17 -> 20 > 16; 16 -> 16 is not
    assert min_side(graph_for(StyleTransferNet(width=4, n_residual=2, padding="same").eval())) == 5  # 9x9 conv: 5 > 4
    sr = SuperResolutionNet(scale=2, width=4, n_residual=1, padding="paper").eval()
    assert min_side(graph_for(sr)) == 3  # reflected by 2 (the residual context): 3 > 2


def test_export_errors_are_one_line_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    style, bank = StyleTransferNet(width=4, n_residual=1), StyleBankNet(num_styles=2, width=4)
    with pytest.raises(ConfigError, match="format=coreml is not supported; use one of: onnx, torchscript"):
        export_net(style, "coreml", tmp_path / "x.mlmodel")
    with pytest.raises(ConfigError, match=r"2 style banks: pass stylebank=index .* or stylebank=weights"):
        export_net(bank, "torchscript", tmp_path / "bank.pt")
    with pytest.raises(ConfigError, match="stylebank=regions is not supported; use one of: index, weights"):
        export_net(bank, "torchscript", tmp_path / "bank.pt", stylebank="regions")
    with pytest.raises(ConfigError, match="stylebank=index applies to StyleBank checkpoints; this one holds a Style"):
        export_net(style, "torchscript", tmp_path / "style.pt", stylebank="index")
    with pytest.raises(ConfigError, match=r"a torchscript file should end in \.pt"):
        export_net(style, "torchscript", tmp_path / "style.onnx")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(
        ConfigError, match=r"onnxscript package, which is not installed: pip install .perceptual\[export\]."
    ):
        export_net(style, "onnx", tmp_path / "style.onnx")
    assert not list(tmp_path.iterdir())


def test_export_command_writes_a_verified_onnx_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=4, width=4, n_residual=1).eval()
    ckpt = save_net(tmp_path / "sr.ckpt", net, task="sr")
    output = tmp_path / "out" / "sr_x4.onnx"
    assert run_command("export.py", f"ckpt={ckpt}", "format=onnx", f"output={output}") == 0
    printed = capsys.readouterr().out
    assert f"wrote {output} (onnx" in printed and "H and W >= 5" in printed and "on a 3x3x" in printed
    assert "max |exported - PyTorch| =" in printed and "onnx_ir" not in printed  # no exporter chatter
    assert read_metadata(output)["task"] == "sr" and read_metadata(output)["source"] == str(ckpt)
    images = _odd_images(1, 9, 13)
    with torch.no_grad():
        assert (load_exported(output)(images) - net(images)).abs().max() <= TOLERANCE

    assert run_command("export.py", f"ckpt={ckpt}", "format=tflite", f"output={output}") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: format=tflite")


def test_an_export_that_does_not_reproduce_the_net_is_deleted_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = SuperResolutionNet(scale=2, width=4, n_residual=1).eval()
    monkeypatch.setattr("perceptual.inference.export.load_exported", lambda path: lambda image: net(image) + 3 / 255)
    with pytest.raises(ExportError, match=r"differs from the PyTorch net by up to 0\.0118 \(> 2/255\) on 3x3x"):
        export_net(net, "torchscript", tmp_path / "sr.pt")
    assert not (tmp_path / "sr.pt").exists()
