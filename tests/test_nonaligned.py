"""Non-aligned SR pairs (``SRDegradation(max_shift=...)``) and aligned validation pairs (``make_val_sample``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose_config, train_run
from perceptual.checkpoints import checkpoint_metadata, read_checkpoint
from perceptual.data.sample import SampleDataModule
from perceptual.data.sr import SRDegradation
from perceptual.errors import ConfigError
from perceptual.losses.builder import build_criterion


@pytest.fixture
def crop() -> torch.Tensor:
    """A 3x42x46 crop (not multiples of 4) with distinct values everywhere, so any displacement shows."""
    torch.manual_seed(0)
    return torch.rand(3, 42, 46)


def test_shifted_pairs_have_consistent_shapes(crop: torch.Tensor) -> None:
    degrade = SRDegradation(scale=4, max_shift=5)
    for _ in range(10):
        pair = degrade(crop)
        # window = (42 - 10, 46 - 10) = (32, 36), already multiples of 4
        assert pair["hr"].shape == (3, 32, 36)
        assert pair["lr"].shape == (3, 8, 9)


def test_target_is_a_displaced_window_of_the_crop(crop: torch.Tensor) -> None:
    m = 5
    aligned = crop[..., m : m + 32, m : m + 36]
    shifts = set()
    for _ in range(20):
        pair = SRDegradation(scale=4, max_shift=m)(crop)
        matches = [
            (dy, dx)
            for dy in range(-m, m + 1)
            for dx in range(-m, m + 1)
            if torch.equal(pair["hr"], crop[..., m + dy : m + dy + 32, m + dx : m + dx + 36])
        ]
        assert len(matches) == 1  # exactly one offset within [-m, m]^2 explains the target
        shifts.add(matches[0])
        assert torch.equal(pair["lr"], SRDegradation(scale=4).degrade(aligned))  # LR always from the centre window
    assert len(shifts) > 1 and shifts != {(0, 0)}


def test_shifts_are_reproducible_under_a_torch_seed(crop: torch.Tensor) -> None:
    degrade = SRDegradation(scale=4, max_shift=5)

    def targets() -> list[torch.Tensor]:
        torch.manual_seed(123)
        return [degrade(crop)["hr"] for _ in range(5)]

    first, second = targets(), targets()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_zero_shift_is_the_aligned_pair(crop: torch.Tensor) -> None:
    state = torch.get_rng_state()
    pair = SRDegradation(scale=4, max_shift=0)(crop)
    assert torch.equal(torch.get_rng_state(), state)  # draws nothing: seeded runs without shifts are unchanged
    hr = crop[..., :40, :44]  # modcrop to multiples of 4
    assert torch.equal(pair["hr"], hr)
    assert torch.equal(pair["lr"], SRDegradation(scale=4).degrade(hr))


def test_invalid_shifts_are_config_errors(crop: torch.Tensor) -> None:
    with pytest.raises(ConfigError, match="max_shift"):
        SRDegradation(scale=4, max_shift=-1)
    with pytest.raises(ConfigError, match="image_size"):
        SRDegradation(scale=4, max_shift=20)(crop)


def test_validation_pairs_stay_aligned_when_training_pairs_are_shifted() -> None:
    datamodule = SampleDataModule(
        batch_size=2,
        image_size=48,
        val_image_size=32,
        samples_per_epoch=2,
        make_sample=SRDegradation(scale=4, max_shift=8),
        make_val_sample=SRDegradation(scale=4),
    )
    datamodule.setup()
    torch.manual_seed(0)
    train = next(iter(datamodule.train_dataloader()))
    assert train["hr"].shape[-2:] == (32, 32) and train["lr"].shape[-2:] == (8, 8)
    val = next(iter(datamodule.val_dataloader()))
    assert val["hr"].shape[-2:] == (32, 32)  # a shifted pair of a 32 crop would have a 16 target
    assert torch.equal(val["lr"], SRDegradation(scale=4).degrade(val["hr"]))


def test_validation_pairs_default_to_training_pairs() -> None:
    make_sample = SRDegradation(scale=4)
    assert SampleDataModule(make_sample=make_sample).make_val_sample is make_sample


def test_cx_nonaligned_experiment_trains(tmp_path: Path) -> None:
    metrics = train_run(tmp_path, "experiment=cx_nonaligned_sr", "debug=fast", "trainer.max_steps=2")
    assert set(metrics) >= {"train/contextual", "train/low_frequency", "val/psnr"}
    assert all(math.isfinite(value) for value in metrics.values())
    terms = metrics["train/contextual"] + metrics["train/low_frequency"]
    assert math.isclose(metrics["train/loss"], terms, rel_tol=1e-4)  # the logged loss is the sum of its terms
    info = checkpoint_metadata(read_checkpoint(tmp_path / "checkpoints" / "last.ckpt"))
    assert info.task == "sr" and info.net["scale"] == 4 and info.loss_net_source.arch == "vgg19"


def test_cx_objective_trains_a_net_on_a_shifted_pair(crop: torch.Tensor) -> None:
    """The experiment's objective (CX + blurred pixel loss) goes down for a pair whose target is displaced."""
    cfg = compose_config("train", "experiment=cx_nonaligned_sr", "loss_net.weights=random")
    net, criterion = instantiate(cfg.model), build_criterion(cfg.loss, cfg.loss_net)
    pair = SRDegradation(scale=4, max_shift=5)(crop)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = criterion(net(pair["lr"][None]), target=pair["hr"][None]).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("experiment", ["cx_nonaligned_sr", "pixel_nonaligned_sr"])
def test_nonaligned_experiments_shift_training_pairs_only(experiment: str) -> None:
    datamodule = instantiate(compose_config("train", f"experiment={experiment}").data)
    assert datamodule.make_sample.max_shift == 8 and datamodule.make_val_sample.max_shift == 0
