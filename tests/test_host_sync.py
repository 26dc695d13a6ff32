"""Between logging steps a training step never reads a tensor back to the host: on a GPU each read (``.item()``, a
tensor's truth value, ...) would make the host wait for every queued kernel and leave the GPU idle while it catches
up. Reads are counted on the CPU, where every tensor is a host tensor; the data loader's own work is left out."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import compose_config
from perceptual import training
from perceptual.training import train

READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


class Reads(pl.Callback):
    """Records each tensor read from the third step's start to the end of training (the first steps set things up)."""

    def __init__(self) -> None:
        self.open = False
        self.reads: list[str] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        self.open = self.open or trainer.global_step >= 2

    def on_train_end(self, *args: object) -> None:
        self.open = False

    def record(self, name: str) -> None:
        stack = traceback.format_stack()
        if self.open and not any("torch/utils/data/" in frame for frame in stack):
            self.reads.append(f"{name} at {stack[-3].strip().splitlines()[0]}")


@pytest.mark.parametrize("task", ["style", "sr"])
def test_training_steps_do_not_wait_for_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    reads = Reads()
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args: object, _original=original, _name=name, **kwargs: object) -> object:
            reads.record(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    instantiate = training.instantiate

    def with_reads(config: object, *args: object, **kwargs: object) -> object:
        if "callbacks" in kwargs:  # the Trainer
            kwargs["callbacks"] = [*kwargs["callbacks"], reads]
        return instantiate(config, *args, **kwargs)

    monkeypatch.setattr(training, "instantiate", with_reads)
    overrides = ("debug=fast", f"task={task}", "trainer.max_steps=6", "trainer.log_every_n_steps=50")
    train(compose_config("train", *overrides, "trainer.val_check_interval=50", output_dir=tmp_path))
    assert reads.reads == []
