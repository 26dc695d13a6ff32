"""Loss-network weights as typed sources: what each names, how ``auto`` chooses, one builder for every command, and
the source round-tripping through a checkpoint and a zoo entry (old records included)."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import compose_config, style_task
from perceptual.checkpoints import CheckpointMetadata, checkpoint_metadata, read_checkpoint, slim_checkpoint
from perceptual.errors import ConfigError, WeightsUnavailableError
from perceptual.losses.builder import build_criterion, build_loss_network
from perceptual.lossnet import hed
from perceptual.lossnet import weights as weights_module
from perceptual.lossnet.vgg import LossNetwork
from perceptual.lossnet.weights import WeightsKind, WeightsSource
from perceptual.nets import StyleTransferNet
from perceptual.zoo import format_table, list_entries, save_entry

# What the zoo entries trained on a GPU machine record: a float16 copy of HED's VGG-16 up to relu4_3, as a file.
GPU_RECORD = {"arch": "vgg16", "weights": "/work/main/.gpu/vgg16_hed_relu4_3.pth", "sha256": "ab" * 32}
ZOO_TEXT = {
    "description": "tiny",
    "trained_on": "nothing",
    "wall_time": "1 s",
    "hardware": "CPU",
    "command": "python src/train.py debug=fast",
}


@pytest.fixture
def vgg_file(tmp_path: Path) -> Path:
    path = tmp_path / "vgg.pth"
    torch.save(LossNetwork(["relu2_2"], weights="random", seed=5).features.state_dict(), path)
    return path


def test_file_source_round_trips_through_a_checkpoint(vgg_file: Path, tmp_path: Path) -> None:
    loss_net = LossNetwork(["relu2_2"], weights=str(vgg_file))
    source = loss_net.source
    assert (source.kind, source.file, source.sha256) == (
        "file",
        str(vgg_file),
        hashlib.sha256(vgg_file.read_bytes()).hexdigest(),
    )
    checkpoint = {"state_dict": style_task(loss_net).state_dict()}
    style_task(loss_net).on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "run.ckpt")
    recorded = checkpoint_metadata(read_checkpoint(tmp_path / "run.ckpt")).loss_net_source
    assert recorded == source  # kind, arch, file and hash: the source is recorded once, whole
    rebuilt = LossNetwork(["relu2_2"], weights=recorded)  # the recorded value names the same weights again
    assert all(
        torch.equal(a, b)
        for a, b in zip(rebuilt.features.state_dict().values(), loss_net.features.state_dict().values())
    )


def test_a_recorded_file_must_still_have_its_hash(vgg_file: Path) -> None:
    source = LossNetwork(["relu1_2"], weights=str(vgg_file)).source
    torch.save(LossNetwork(["relu2_2"], weights="random", seed=6).features.state_dict(), vgg_file)
    with pytest.raises(WeightsUnavailableError, match="not the recorded") as error:
        LossNetwork(["relu1_2"], weights=source)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("record", "kind", "summary"),
    [
        (GPU_RECORD, WeightsKind.FILE, "file vgg16_hed_relu4_3.pth (sha256 abababab)"),
        ({"arch": "vgg16", "weights": "hed", "sha256": hed.HED_H5_SHA256}, WeightsKind.HED, "hed"),
        ({"arch": "vgg19", "weights": "imagenet", "sha256": "dcbb9e9d"}, WeightsKind.IMAGENET, "imagenet"),
        ({"arch": "vgg16", "weights": "random", "sha256": None}, WeightsKind.RANDOM, "random"),
    ],
)
def test_records_read_back_as_sources(record: dict, kind: WeightsKind, summary: str) -> None:
    source = WeightsSource.from_record(record)
    assert source.kind is kind and source.summary() == summary and source.arch == record["arch"]
    assert source.record() == record  # the stored shape is unchanged: old checkpoints and new ones agree
    assert source.provenance and "RGB in [0, 1]" in source.preprocessing


def test_sources_say_what_they_are() -> None:
    hed_source = weights_module.hed_source("vgg16")
    assert "close to, not equal to" in hed_source.provenance and hed.HED_REQUIREMENT in hed_source.file
    assert "Caffe" in hed_source.preprocessing and hed_source.sha256 == hed.HED_H5_SHA256
    imagenet = weights_module.imagenet_source("vgg16")
    assert imagenet.file.startswith("vgg16-") and imagenet.file.split("-")[1].startswith(imagenet.sha256)
    assert not WeightsSource(WeightsKind.RANDOM, "vgg16").is_pretrained and imagenet.is_pretrained


def test_auto_logs_what_it_chose_and_why(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    state = LossNetwork(["relu1_2"], weights="random").features.state_dict()
    monkeypatch.setattr(weights_module, "_load_imagenet", lambda arch: state)
    with caplog.at_level(logging.INFO, logger="perceptual.lossnet.weights"):
        source = LossNetwork(["relu1_2"], weights="auto").source
    assert source.kind is WeightsKind.IMAGENET and "cached or downloadable" in source.reason
    assert "loss_net.weights=auto resolved to imagenet: ImageNet weights are cached or downloadable" in caplog.text

    def unavailable(arch: str) -> dict:
        raise WeightsUnavailableError("offline")

    monkeypatch.setattr(weights_module, "_load_imagenet", unavailable)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="perceptual.lossnet.weights"):
        source = LossNetwork(["relu1_2"], arch="vgg19", weights="auto").source
    assert source.kind is WeightsKind.RANDOM and "HED provides VGG-16 only" in source.reason
    assert "resolved to random" in caplog.text and "RANDOM" in caplog.text
    assert source.reason in source.note() or source.note() == weights_module.RANDOM_WEIGHTS_WARNING


def test_a_source_for_another_arch_is_refused() -> None:
    with pytest.raises(ConfigError, match=re.escape("not loss_net.arch=vgg19; pass arch=vgg16")):
        LossNetwork(["relu1_2"], arch="vgg19", weights=WeightsSource.from_record(GPU_RECORD))


@pytest.mark.parametrize("command", ["train", "optimize_image", "reconstruct"])
def test_every_command_builds_its_loss_network_from_the_whole_config(command: str) -> None:
    cfg = compose_config(command, "loss_net.weights=random", "loss_net.pooling=avg", "loss_net.seed=3")
    net = build_loss_network(cfg.loss_net, ["relu3_3"])
    pools = [module for module in net.features if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))]
    assert pools and all(isinstance(module, nn.AvgPool2d) for module in pools)  # reconstruct dropped pooling
    assert net.source.kind is WeightsKind.RANDOM
    torch.testing.assert_close(
        net.features[0].weight, LossNetwork(["conv1_1"], weights="random", seed=3).features[0].weight
    )
    if "loss" in cfg:
        criterion = build_criterion(cfg.loss, cfg.loss_net)
        assert isinstance(criterion.loss_net.features[4], nn.AvgPool2d)


def _checkpoint_with(record: dict | None) -> dict:
    net = StyleTransferNet(width=4, n_residual=1)
    checkpoint = slim_checkpoint(CheckpointMetadata(net=net.config(), task="style", loss_net=record), net.state_dict())
    return {**checkpoint, "global_step": 3}


def test_zoo_entries_read_the_recorded_source(tmp_path: Path) -> None:
    save_entry(_checkpoint_with(GPU_RECORD), "gpu", ZOO_TEXT, zoo_dir=tmp_path)  # loss_net_weights from the record
    typed = {**ZOO_TEXT, "loss_net_weights": "HED's VGG-16 up to relu4_3, float16"}
    save_entry(_checkpoint_with(GPU_RECORD), "typed", typed, zoo_dir=tmp_path)
    save_entry(_checkpoint_with(None), "old", {**ZOO_TEXT, "loss_net_weights": "hed"}, zoo_dir=tmp_path)
    entries = {entry.name: entry for entry in list_entries(tmp_path)}
    assert entries["gpu"].metadata["loss_net_weights"] == "file vgg16_hed_relu4_3.pth (sha256 abababab)"
    assert entries["gpu"].loss_net == WeightsSource.from_record(GPU_RECORD)
    assert (
        entries["typed"].loss_net_weights
        == "file vgg16_hed_relu4_3.pth (sha256 abababab); " + typed["loss_net_weights"]
    )
    assert entries["old"].loss_net is None and entries["old"].loss_net_weights == "hed"
    table = format_table(list(entries.values()))
    assert "| 3 | file vgg16_hed_relu4_3.pth (sha256 abababab) |" in table and "| 3 | hed |" in table
    with pytest.raises(ConfigError, match=re.escape("lacks loss_net_weights; give loss_net_weights=...")):
        save_entry(_checkpoint_with(None), "unknown", ZOO_TEXT, zoo_dir=tmp_path)
