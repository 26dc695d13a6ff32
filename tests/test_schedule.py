"""scheduler=cosine: the learning rate anneals to 0 over the run's steps, and a run without a step bound is refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import compose_config, train_run
from perceptual.errors import ConfigError
from perceptual.training import train


def test_the_cosine_preset_follows_the_formula_to_the_runs_last_step(tmp_path: Path) -> None:
    metrics = train_run(tmp_path, "debug=fast", "scheduler=cosine", "trainer.max_steps=4")
    base = compose_config("train").task.optimizer.lr
    last_logged_step = 3  # the monitor logs the rate each step is taken with, before its update
    assert metrics["lr-Adam"] == pytest.approx(base * (1 + math.cos(math.pi * last_logged_step / 4)) / 2)


def test_the_preset_composes_under_an_experiment_and_spans_its_steps() -> None:
    cfg = compose_config("train", "experiment=zoo_style", "scheduler=cosine", "trainer.max_steps=300")
    assert cfg.task.scheduler.T_max == 300 and cfg.task.optimizer.lr == 1.0e-4


def test_a_run_without_a_step_bound_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = compose_config("train", "debug=fast", "scheduler=cosine", "trainer.max_steps=-1", output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"set trainer\.max_steps"):
        train(cfg)
    assert not any(tmp_path.iterdir())
