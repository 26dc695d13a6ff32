"""SR validation metrics under DDP equal the single-process ones.

PSNR / SSIM are means of per-image values; each rank only sees part of the images, so the metrics must sync sums and
counts (not average per-rank means, and not report rank 0's share). Two CPU processes over gloo check it. Every
validation set has an even number of images: DistributedSampler pads odd counts with repeats, which would change
the mean.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import write_images
from perceptual.data.sample import SampleDataModule
from perceptual.data.sr import SRBenchmark, SRDegradation
from perceptual.losses import PerceptualCriterion, PixelLoss
from perceptual.nets import SuperResolutionNet
from perceptual.tasks.sr import SuperResolutionTask

METRICS = ("val/psnr", "val/ssim", "val/bench/psnr", "val/bench/ssim")


def make_task() -> SuperResolutionTask:
    """A tiny SR task with a pixel-only criterion (no VGG); seeded so that both runs get the same weights."""
    torch.manual_seed(0)
    return SuperResolutionTask(
        scale=4,
        val_sets=["bench"],
        net=SuperResolutionNet(scale=4, width=8),
        criterion=PerceptualCriterion({"pixel": PixelLoss()}),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
    )


def make_data(bench: Path) -> SampleDataModule:
    """Two held-out crops (the sample module's two validation photos) and a four-image benchmark set."""
    return SampleDataModule(
        batch_size=1, image_size=32, make_sample=SRDegradation(scale=4), val_sets={"bench": SRBenchmark(bench, scale=4)}
    )


def validate(bench: Path, **trainer_options: object) -> dict[str, float]:
    """The logged validation metrics; for ddp_spawn, Lightning hands rank 0's callback_metrics back to this process."""
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_options,
    )
    trainer.validate(make_task(), datamodule=make_data(bench))
    return {key: float(trainer.callback_metrics[key]) for key in METRICS}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ddp_validation_metrics_equal_single_process(tmp_path: Path) -> None:
    write_images(tmp_path, 4, size=(48, 48))
    single = validate(tmp_path, devices=1)
    ddp = validate(tmp_path, devices=2, strategy="ddp_spawn")
    assert ddp == pytest.approx(single, abs=1e-6)
