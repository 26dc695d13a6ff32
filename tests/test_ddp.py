"""SR validation metrics under DDP equal the single-process ones.

PSNR / SSIM are means of per-image values; each rank only sees part of the images, so the metrics must sync sums and
counts (not average per-rank means, and not report rank 0's share). Two CPU processes over gloo check it. Every
validation set has an even number of images: DistributedSampler pads odd counts with repeats, which would change
the mean.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import write_images
from perceptual.callbacks import AtomicCheckpointIO, ProcessGroupTeardown, RandomState
from perceptual.data.resumable import EpochSampler
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
        callbacks=[ProcessGroupTeardown()],
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


@pytest.mark.slow  # two DDP processes
@pytest.mark.timeout(240)
def test_ddp_training_shards_the_resumable_loader_and_returns_the_weights(tmp_path: Path) -> None:
    """Two CPU processes train two steps: each rank's EpochSampler takes its half of the samples, and the trained
    weights come back to this process through the atomic checkpoint plugin's files."""
    write_images(tmp_path, 4, size=(48, 48))
    task = make_task()
    before = {name: value.clone() for name, value in task.state_dict().items()}
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_steps=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        callbacks=[RandomState(), ProcessGroupTeardown()],
    )
    trainer.fit(task, datamodule=make_data(tmp_path))  # set up in each process: its transforms do not pickle
    assert any(not torch.equal(before[name], value) for name, value in task.state_dict().items())
    data = make_data(tmp_path)
    data.setup()
    shards = [EpochSampler(data.train_set, seed=0, num_replicas=2, rank=rank) for rank in (0, 1)]
    first, second = ({index for index, _ in shard} for shard in shards)
    assert not first & second and len(first | second) == len(data.train_set)


EXIT_PROBE = """
import atexit
import torch.distributed as dist
from perceptual.callbacks import ProcessGroupTeardown

atexit.register(lambda: print("initialised at exit:", dist.is_initialized()))  # registered first: runs last
dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
if {teardown}:
    for _ in range(2):  # a second fit in the same process registers nothing more
        ProcessGroupTeardown().setup(None, None, "fit")
"""


@pytest.mark.parametrize("teardown", [True, False])
def test_gloo_process_group_is_destroyed_before_the_interpreter_shuts_down(teardown: bool) -> None:
    """Left to the interpreter's finalisation, a gloo group can abort a finished process (SIGABRT); the callback
    destroys it from an exit handler, while Python is still whole. Without it the group is still alive there."""
    probe = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE.format(teardown=teardown)], capture_output=True, text=True, check=True
    )
    assert probe.stdout.strip() == f"initialised at exit: {not teardown}"
