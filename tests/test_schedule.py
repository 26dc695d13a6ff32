"""scheduler=cosine: the learning rate anneals to 0 over the run's steps, and a run without a step bound is refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import compose_config, script_module, train_run
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


def reproducing_command(command: str, steps: int) -> str:
    """experiments/zoo/pack.py's rewrite of a GPU run's command into the one its zoo entry records."""
    return script_module("experiments/zoo/pack.py").reproducing_command(command, steps)


@pytest.mark.parametrize(("reached", "t_max"), [(1900, 2000), (2000, 2000)])
def test_a_zoo_entrys_command_replays_the_schedule_of_a_run_cut_short(reached: int, t_max: int) -> None:
    command = "python src/train.py scheduler=cosine trainer.max_steps=2000 experiment=zoo_style hydra.run.dir=/tmp/r"
    replay = reproducing_command(f"{command} trainer.max_time=00:00:07:40", reached)
    assert "max_time" not in replay and "hydra.run.dir" not in replay
    cfg = compose_config("train", *replay.split()[2:])
    assert cfg.trainer.max_steps == reached and cfg.task.scheduler.T_max == t_max
