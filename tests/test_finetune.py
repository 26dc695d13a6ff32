"""``init_ckpt=``: fine-tuning starts from a trained net (checkpoint or zoo entry), not from the configured one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import compose_config, save_net, train_run
from perceptual.checkpoints import read_checkpoint
from perceptual.errors import ConfigError, DataError
from perceptual.nets import StyleTransferNet, SuperResolutionNet
from perceptual.training import initial_net


def _weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.float() for name, value in net.state_dict().items()}


def test_the_run_starts_from_the_checkpoints_net_whatever_model_says(tmp_path: Path) -> None:
    trained = StyleTransferNet(width=8, norm="instance")
    path = save_net(tmp_path / "trained.ckpt", trained)
    net = initial_net(compose_config("train", "debug=fast", "model.norm=batch", f"init_ckpt={path}"))
    assert net.config() == trained.config()  # model.norm=batch and width are ignored
    assert net.training
    for name, value in _weights(trained).items():
        torch.testing.assert_close(_weights(net)[name], value)


def test_without_init_ckpt_the_configured_net_is_built() -> None:
    net = initial_net(compose_config("train", "debug=fast", "model.norm=batch"))
    assert net.config()["norm"] == "batch"


def test_init_net_options_change_the_upsampling_and_keep_the_weights(tmp_path: Path) -> None:
    trained = StyleTransferNet(width=8, n_residual=1, norm="instance", upsample="nearest").eval()
    path = save_net(tmp_path / "trained.ckpt", trained)
    options = "init_net_options={upsample:bilinear}"
    net = initial_net(compose_config("train", "debug=fast", f"init_ckpt={path}", options))
    assert net.config() == {**trained.config(), "upsample": "bilinear"}
    for name, value in _weights(trained).items():
        torch.testing.assert_close(_weights(net)[name], value)
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net.eval()(image), trained(image))  # the same weights, another interpolation


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (("init_net_options={width:16}",), "change the shapes of the net's weights"),
        (("init_net_options={depth:3}",), "depth is not an option of StyleTransferNet"),
        (("init_net_options={upsample:bicubic}",), "upsample=bicubic"),
    ],
)
def test_init_net_options_that_cannot_apply_are_one_line_errors(
    tmp_path: Path, overrides: tuple[str, ...], named: str
) -> None:
    path = save_net(tmp_path / "trained.ckpt", StyleTransferNet(width=8, n_residual=1))
    with pytest.raises(ConfigError, match=named) as error:
        initial_net(compose_config("train", "debug=fast", f"init_ckpt={path}", *overrides))
    assert "\n" not in str(error.value)


def test_init_net_options_without_init_ckpt_is_an_error() -> None:
    with pytest.raises(ConfigError, match="give init_ckpt"):
        initial_net(compose_config("train", "debug=fast", "init_net_options={upsample:bilinear}"))


@pytest.mark.parametrize(
    ("trained", "overrides", "named"),
    [
        (StyleTransferNet(width=8), ("task=sr",), "StyleTransferNet, but this run trains a SuperResolutionNet"),
        (SuperResolutionNet(scale=2, width=8), ("task=sr", "scale=4"), "scale=2, but this run trains"),
    ],
)
def test_a_checkpoint_of_another_task_or_scale_is_a_one_line_error(
    tmp_path: Path, trained: torch.nn.Module, overrides: tuple[str, ...], named: str
) -> None:
    path = save_net(tmp_path / "other.ckpt", trained, task="style")
    with pytest.raises(DataError, match=named) as error:
        initial_net(compose_config("train", "debug=fast", *overrides, f"init_ckpt={path}"))
    assert "\n" not in str(error.value)


def test_fine_tuning_trains_from_the_checkpoint_and_records_it(tmp_path: Path) -> None:
    first = tmp_path / "first"
    train_run(first, "task=sr", "debug=fast", "trainer.max_steps=2")
    start = first / "checkpoints" / "last.ckpt"
    tuned = tmp_path / "tuned"
    train_run(tuned, "task=sr", "debug=fast", "trainer.max_steps=2", "model.width=16", f"init_ckpt={start}")
    before, after = read_checkpoint(start), read_checkpoint(tuned / "checkpoints" / "last.ckpt")
    assert after["global_step"] == 2  # a fresh run (step 0 + 2), not a resume (2 + 2)
    assert after["perceptual"]["net"] == before["perceptual"]["net"]  # width 8, the checkpoint's, not 16
    assert f"init_ckpt: {start}" in after["perceptual"]["run_config"]
    moved = [name for name, value in before["state_dict"].items() if not torch.equal(value, after["state_dict"][name])]
    assert moved  # it trained
