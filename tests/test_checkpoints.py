"""The checkpoint format: metadata written by the tasks, nets rebuilt from it, checkpoints of earlier formats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate
from torch import nn

from conftest import style_task
from perceptual.checkpoints import FORMAT_VERSION, METADATA_KEY, build_net, checkpoint_metadata, migrate
from perceptual.errors import DataError
from perceptual.inference.runner import load_net
from perceptual.lossnet.vgg import LossNetwork
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.nets.stylebank import StyleBankNet
from perceptual.zoo import slim

OLD = Path(__file__).parent / "data" / "checkpoints"
# file -> (key in v0_outputs.pt, task, styles, forward keyword arguments): see tests/data/checkpoints/README.md
OLD_CHECKPOINTS = {
    "style_v0.ckpt": ("style", "style", [], {}),
    "stylebank_v0.ckpt": ("stylebank", "stylebank", ["mosaic", "colorwheel"], {"style_index": 1}),
    "sr_v0.ckpt": ("sr", "sr", [], {}),
    "style_v0_zoo.pt": ("style_v0_zoo", "style", [], {}),
}
ZOO_METADATA = {
    "description": "d",
    "trained_on": "t",
    "loss_net_weights": "random",
    "wall_time": "1 s",
    "hardware": "h",
    "command": "c",
}


@pytest.fixture(scope="module")
def old_outputs() -> dict[str, torch.Tensor]:
    return torch.load(OLD / "v0_outputs.pt", weights_only=True)


@pytest.mark.parametrize("name", OLD_CHECKPOINTS)
def test_old_format_checkpoints_load_and_compute_what_they_did(name: str, old_outputs: dict) -> None:
    output_key, task, styles, forward_options = OLD_CHECKPOINTS[name]
    net, metadata = load_net(OLD / name)
    assert (metadata.task, metadata.styles, metadata.loss_net, metadata.versions) == (task, styles, None, {})
    image, reference = old_outputs["input"], old_outputs[output_key]
    with torch.no_grad():
        output = net(image, **forward_options)
        fresh = instantiate(metadata.net).eval()(image, **forward_options)
    torch.testing.assert_close(output, reference, rtol=0, atol=1e-6)
    assert not torch.allclose(fresh, reference, atol=1e-4)  # the trained weights were loaded, not a fresh init


def test_migration_moves_old_keys_into_the_metadata() -> None:
    old = torch.load(OLD / "style_v0.ckpt", weights_only=False)
    migrated = migrate(old)
    assert not {"net_config", "task", "style_image"} & set(migrated)
    assert migrated[METADATA_KEY]["format_version"] == FORMAT_VERSION
    assert checkpoint_metadata(migrated).net == old["net_config"]
    assert migrated["global_step"] == old["global_step"] and migrated["state_dict"] is old["state_dict"]
    assert "net_config" in old  # the caller's dict is left as it was


def test_zoo_entry_from_an_old_checkpoint_is_in_the_current_format(old_outputs: dict) -> None:
    entry = slim(torch.load(OLD / "sr_v0.ckpt", weights_only=False), ZOO_METADATA)
    assert set(entry) == {METADATA_KEY, "state_dict", "zoo"} and entry["zoo"]["steps"] == 2
    assert all(v.dtype == torch.float16 for v in entry["state_dict"].values() if v.is_floating_point())
    with torch.no_grad():
        output = build_net(entry)(old_outputs["input"])
    torch.testing.assert_close(output, old_outputs["sr"], rtol=0, atol=2e-3)  # float16 weights


@pytest.mark.parametrize(
    "checkpoint",
    [
        {"state_dict": {}},  # a plain Lightning checkpoint of some other project
        {METADATA_KEY: {"format_version": FORMAT_VERSION + 1, "net": {}, "task": "style"}, "state_dict": {}},
        {"net_config": {"_target_": "x"}, "task": "style"},  # no weights
    ],
    ids=["foreign", "newer", "no-weights"],
)
def test_checkpoints_that_cannot_be_read_are_data_errors(checkpoint: dict) -> None:
    with pytest.raises(DataError, match=r"not a perceptual checkpoint|newer than this version"):
        migrate(checkpoint)


@pytest.mark.parametrize(
    "net",
    [
        StyleTransferNet(width=4, n_residual=1, norm="instance", upsample="nearest", padding="same", output="clamp"),
        SuperResolutionNet(scale=2, width=4, n_residual=1, output="clamp", skip="bicubic"),
        StyleBankNet(num_styles=1, width=4, bank_depth=2),
    ],
    ids=type,
)
def test_every_net_rebuilds_from_its_config(net: nn.Module) -> None:
    if isinstance(net, StyleBankNet):
        net.add_banks(1)  # the config counts banks added after construction
    rebuilt = instantiate(net.config())
    assert type(rebuilt) is type(net) and rebuilt.config() == net.config()
    rebuilt.load_state_dict(net.state_dict())  # strict: the same parameters and buffers, of the same shapes


def test_task_checkpoints_carry_the_metadata(tmp_path: Path) -> None:
    vgg = tmp_path / "vgg.pth"
    torch.save(LossNetwork(["relu1_2"], weights="random").features.state_dict(), vgg)
    task = style_task(LossNetwork(["relu1_2"], weights=str(vgg)), run_config="seed: 3\nmodel:\n  width: 4\n")
    checkpoint = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    metadata = checkpoint_metadata(checkpoint)
    assert metadata.task == "style" and metadata.styles == ["mosaic"]
    assert metadata.loss_net == {
        "arch": "vgg16",
        "weights": str(vgg),
        "sha256": hashlib.sha256(vgg.read_bytes()).hexdigest(),
    }
    assert metadata.versions["torch"] == torch.__version__ and "perceptual" in metadata.versions
    assert yaml.safe_load(metadata.run_config) == {"seed": 3, "model": {"width": 4}}
    path = tmp_path / "task.ckpt"
    torch.save(checkpoint, path)
    assert torch.load(path, weights_only=True)[METADATA_KEY] == checkpoint[METADATA_KEY]  # plain values only
    net, loaded = load_net(path)
    assert loaded == metadata
    image = torch.rand(1, 3, 20, 20)
    torch.testing.assert_close(net(image), task.net.eval()(image), rtol=0, atol=0)


def test_random_loss_network_has_no_checksum() -> None:
    assert LossNetwork(["relu1_1"], weights="random").source.record() == {
        "arch": "vgg16",
        "weights": "random",
        "sha256": None,
    }
