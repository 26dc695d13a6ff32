"""Every config composes, and command-line choices beat task and experiment defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from conftest import REPO, compose_config

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(experiment: str) -> None:
    cfg = compose_config("train", f"experiment={experiment}", "data=sample")
    assert cfg.task._target_.startswith("perceptual.tasks.")
    instantiate(cfg.model)  # every net config is valid
    for term in cfg.loss.terms.values():
        instantiate(term)


def test_command_line_choices_beat_task_defaults() -> None:
    cfg = compose_config("train", "loss=pixel", "data=folder", "data.root=/images")
    assert list(cfg.loss.terms) == ["pixel"]
    assert cfg.data.root == "/images"
    assert cfg.task._target_.endswith("StyleTransferTask")


def test_experiment_preset_matches_paper() -> None:
    cfg = compose_config("train", "experiment=johnson16_style")
    assert list(cfg.loss.terms.content.layers) == ["relu2_2"]
    assert list(cfg.loss.terms.style.layers) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert cfg.data.image_size == 256 and cfg.data.batch_size == 4
    assert cfg.trainer.max_steps == 40000 and cfg.task.optimizer.lr == 1e-3
    impl = compose_config("train", "experiment=johnson16_style_impl")
    assert list(impl.loss.terms.content.layers) == ["relu3_3"]
    assert impl.model.norm == "instance" and impl.model.width == 16 and impl.loss.terms.style.norm == "mse"


def test_run_directories(tmp_path: Path) -> None:
    cfg = compose_config("train", hydra=True)
    assert cfg.hydra.run.dir.startswith("outputs/style/")
    assert cfg.hydra.sweep.dir.startswith("outputs/multirun/")
