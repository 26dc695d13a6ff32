"""Every config composes, and command-line choices beat task and experiment defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import REPO, compose_config
from perceptual.config_types import check_types
from perceptual.data.modules import default_num_workers
from perceptual.errors import ConfigError
from perceptual.losses import GramStyleLoss, Reference
from perceptual.losses.builder import build_criterion

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds_a_net_its_loss_can_train(experiment: str) -> None:
    cfg = compose_config("train", f"experiment={experiment}", "data=sample", "loss_net.weights=random")
    assert cfg.task._target_.startswith("perceptual.tasks.")
    net, criterion = instantiate(cfg.model), build_criterion(cfg.loss, cfg.loss_net)
    scale, banks = net.capabilities.scale, net.capabilities.banks
    assert scale == (cfg.scale if cfg.task._target_.endswith("SuperResolutionTask") else 1)
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    style_index = torch.tensor([0, banks - 1]) if banks else None  # each sample may pick its own bank
    output = net(image, style_index) if style_index is not None else net(image)
    assert output.shape == (2, 3, 16 * scale, 16 * scale)
    if criterion.needs_styles:
        criterion.set_styles([torch.rand(3, 16, 16) for _ in range(max(banks, 1))])
    target = image if scale == 1 else torch.rand(output.shape)
    losses = criterion(output, target=target, style_index=style_index)
    torch.testing.assert_close(losses.total, sum(losses.terms.values()))  # the total is the sum of its terms
    if criterion.loss_net is not None:  # truncated after the deepest layer a term reads
        term_layers = {layer for term in criterion.terms.values() for layer in term.layers}
        assert criterion.loss_net.layers[-1] in term_layers
    losses.total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())  # the loss reaches the net


def test_command_line_choices_beat_task_defaults() -> None:
    cfg = compose_config("train", "loss=pixel", "data=folder", "data.root=/images")
    assert list(cfg.loss.terms) == ["pixel"]
    assert cfg.data.root == "/images"
    assert cfg.task._target_.endswith("StyleTransferTask")


def test_johnson16_presets_build_the_papers_objective() -> None:
    cfg = compose_config("train", "experiment=johnson16_style", "loss_net.weights=random")
    criterion = build_criterion(cfg.loss, cfg.loss_net)
    assert criterion.network_layers(Reference.TARGET) == ["relu2_2"]  # feature reconstruction at relu2_2
    assert criterion.gram_layer_sets() == [["relu1_2", "relu2_2", "relu3_3", "relu4_3"]]
    assert criterion.loss_net.arch == "vgg16" and criterion.loss_net.layers[-1] == "relu4_3"  # no deeper pass
    impl_cfg = compose_config("train", "experiment=johnson16_style_impl", "loss_net.weights=random")
    paper, impl = instantiate(cfg.model), instantiate(impl_cfg.model)
    assert impl.capabilities.norm == "instance" and paper.capabilities.stride == impl.capabilities.stride == 4

    def params(net: torch.nn.Module) -> int:
        return sum(p.numel() for p in net.parameters())

    assert abs(params(impl) / params(paper) - 0.25) < 0.01  # half the width: a quarter of the weights
    features = {"relu1_2": torch.rand(1, 64, 8, 8)}
    reference = {"relu1_2": torch.rand(1, 64, 8, 8)}
    paper_term, impl_term = (GramStyleLoss(1.0, ["relu1_2"], norm=c.loss.terms.style.norm) for c in (cfg, impl_cfg))
    paper_value = paper_term(features, paper_term.prepare_reference(reference))
    impl_value = impl_term(features, impl_term.prepare_reference(reference))
    torch.testing.assert_close(paper_value, impl_value * 64**2)  # squared Frobenius = C^2 x the mean square


def test_run_directories(tmp_path: Path) -> None:
    cfg = compose_config("train", hydra=True)
    assert cfg.hydra.run.dir.startswith("outputs/style/")
    assert cfg.hydra.sweep.dir.startswith("outputs/multirun/")


def test_data_workers_default_to_half_the_cpus_shared_by_the_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert [default_num_workers(processes) for processes in (1, 2, 4, 16)] == [8, 4, 2, 0]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert default_num_workers() == 8  # enough to keep a GPU fed; more only cost memory
    cfg = compose_config("train", "data=folder", "data.root=/unused")
    assert cfg.data.num_workers == "auto"
    check_types(cfg.data)  # auto passes the type check of data.num_workers
    with pytest.raises(ConfigError, match=r"data\.num_workers=many must be one of: auto or an integer"):
        check_types(compose_config("train", "data=folder", "data.root=/unused", "data.num_workers=many").data, "data.")
