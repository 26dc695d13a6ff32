"""Sweeps through Hydra's submitit launcher (the ``cluster`` extra): ``hydra/launcher=submitit_slurm`` sends each job
to SLURM; ``submitit_local`` runs them as local processes the same way, which is what can be run here."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from conftest import REPO, run_cli
from perceptual.cli import LAUNCHER_SCHEMA_WARNING

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the cluster extra: pip install '.[cluster]'")


def compose_with_hydra(*overrides: str) -> DictConfig:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LAUNCHER_SCHEMA_WARNING, category=UserWarning)
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_asks_for_the_trainers_nodes() -> None:
    cfg = compose_with_hydra("hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.num_nodes=3")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.nodes == 3 and launcher.tasks_per_node == 1 and launcher.timeout_min > 0


@pytest.mark.slow  # a sweep of two training jobs in new processes
@pytest.mark.timeout(600)
def test_submitit_local_sweep_writes_a_run_directory_per_job(tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        "debug=fast",
        "trainer.max_steps=2",
        f"hydra.sweep.dir={tmp_path}",
        "loss.terms.style.weight=1e4,1e5",
        timeout=500,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validated against ConfigStore schema" not in result.stderr
    weights = []
    for job in ("0", "1"):
        run = tmp_path / job
        assert (run / "checkpoints" / "last.ckpt").is_file(), sorted(p.name for p in tmp_path.rglob("*"))
        assert (run / "train.log").is_file()
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        weights += [o.split("=")[1] for o in overrides if o.startswith("loss.terms.style.weight=")]
    assert sorted(float(w) for w in weights) == [1e4, 1e5]
    assert (tmp_path / ".submitit").is_dir()  # the launcher's job folder: scripts, logs, results
