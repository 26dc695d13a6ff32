"""A training whose loss or weights stop being finite stops with a one-line error and keeps no NaN checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from perceptual.callbacks import DivergenceGuard
from perceptual.errors import TrainingDivergedError


class Diverging(pl.LightningModule):
    """A one-weight model whose loss turns NaN (``loss_at``) or whose weight turns NaN (``weight_at``) at a step."""

    def __init__(self, loss_at: int | None = None, weight_at: int | None = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.loss_at, self.weight_at = loss_at, weight_at

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.global_step == self.weight_at:
            with torch.no_grad():
                self.weight.fill_(float("nan"))
        loss = (self.weight * batch[0]).pow(2).mean()
        return loss * float("nan") if self.global_step == self.loss_at else loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(model: Diverging, folder: Path, log_every: int, save_every: int) -> None:
    checkpoints = ModelCheckpoint(dirpath=folder, every_n_train_steps=save_every, save_last=True)
    trainer = pl.Trainer(
        max_steps=12,
        log_every_n_steps=log_every,
        callbacks=[checkpoints, DivergenceGuard()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(TensorDataset(torch.randn(32, 1)), batch_size=2))


def test_a_nan_loss_stops_training_naming_the_last_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(
        TrainingDivergedError, match=r"by step 6: the training loss is not finite; resume from ckpt_path=.*last"
    ):
        fit(Diverging(loss_at=5), tmp_path, log_every=3, save_every=4)
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 4


def test_nan_weights_are_never_checkpointed(tmp_path: Path) -> None:
    with pytest.raises(TrainingDivergedError, match=r"by step 8: a weight is not finite"):
        fit(Diverging(weight_at=5), tmp_path, log_every=50, save_every=4)
    state = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert state["global_step"] == 4 and torch.isfinite(state["state_dict"]["weight"]).all()


def test_a_finite_training_runs_to_the_end(tmp_path: Path) -> None:
    fit(Diverging(), tmp_path, log_every=1, save_every=4)
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 12
