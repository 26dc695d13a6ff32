"""Super-resolution: training degradation, benchmark folders, SR training runs and the evaluate command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchvision.transforms.v2 import functional as TF

from conftest import (
    compose_config,
    error_lines,
    run_cli,
    run_command,
    train_run,
    write_bad_images,
    write_images,
)
from perceptual.checkpoints import checkpoint_metadata, read_checkpoint
from perceptual.data.sample import SampleDataModule
from perceptual.data.sr import SRBenchmark, SRDegradation, modcrop
from perceptual.errors import ConfigError, DataError
from perceptual.evaluation.benchmark import evaluate, load_upscaler, match_histogram, resolve_input
from perceptual.evaluation.metrics import psnr_y
from perceptual.imaging.color import quantize
from perceptual.imaging.io import load_image, save_image
from perceptual.imaging.resize import imresize
from perceptual.losses import PerceptualCriterion, PixelLoss
from perceptual.nets import SuperResolutionNet
from perceptual.tasks.sr import SuperResolutionTask

# One validation (at step 2) and debug=fast's narrow net keep each run to a few seconds.
FAST_SR = ("task=sr", "debug=fast", "trainer.max_steps=2")


def scalar_tags(run_dir: Path) -> list[str]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return events.Tags()["scalars"]


def write_pairs(folder: Path, scale: int, count: int = 2, size: tuple[int, int] = (48, 48)) -> list[Path]:
    """``img_NNN_SRF_<scale>_HR/LR.png`` pairs as benchmark folders ship them (LR = MATLAB bicubic on 8 bit)."""
    hr_paths = []
    for path in write_images(folder, count, size):
        hr_path = path.rename(folder / f"{path.stem}_SRF_{scale}_HR.png")
        lr = imresize(load_image(hr_path), scale=1 / scale, uint8=True)
        save_image(lr, folder / f"{path.stem}_SRF_{scale}_LR.png")
        hr_paths.append(hr_path)
    return hr_paths


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short x8 SR training with the perceptual loss, shared by the tests that need an SR checkpoint."""
    run_dir = tmp_path_factory.mktemp("sr_run")
    train_run(run_dir, *FAST_SR, "scale=8", "loss=perceptual")
    return run_dir


def test_degradation_shapes_and_determinism() -> None:
    crop = torch.rand(3, 50, 50, generator=torch.Generator().manual_seed(0))
    first, second = SRDegradation(scale=4)(crop), SRDegradation(scale=4)(crop)
    assert first["hr"].shape == (3, 48, 48) and first["lr"].shape == (3, 12, 12)  # HR modcropped to a multiple of 4
    assert torch.equal(first["lr"], second["lr"])
    assert torch.equal(first["lr"] * 255, (first["lr"] * 255).round())  # 8-bit levels, like a saved LR image


def test_degradation_is_bicubic_of_blurred_hr() -> None:
    hr = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(1))
    lr = SRDegradation(scale=4, blur_sigma=1.0, quantize_lr=False).degrade(hr)
    expected = imresize(TF.gaussian_blur(hr, [7, 7], [1.0, 1.0]), scale=1 / 4).clamp(0, 1)
    torch.testing.assert_close(lr, expected)
    unblurred = SRDegradation(scale=4, blur_sigma=0.0).degrade(hr)
    assert not torch.equal(SRDegradation(scale=4, blur_sigma=1.0).degrade(hr), unblurred)


def test_benchmark_uses_named_pairs_of_its_scale(tmp_path: Path) -> None:
    write_pairs(tmp_path, scale=4)
    save_image(torch.rand(3, 20, 20), tmp_path / "img_009_SRF_2_HR.png")  # another scale's pair: ignored
    dataset = SRBenchmark(tmp_path, scale=4)
    assert [name for name, _, _ in dataset.files] == ["img_000", "img_001"]
    sample = dataset[1]
    assert sample["name"] == "img_001" and sample["hr"].shape == (3, 48, 48)
    assert torch.equal(sample["lr"], load_image(tmp_path / "img_001_SRF_4_LR.png"))  # LR used as given


def test_benchmark_makes_lr_for_hr_only_folder(tmp_path: Path) -> None:
    write_images(tmp_path, 2, size=(50, 45))
    sample = SRBenchmark(tmp_path, scale=4)[0]
    hr = modcrop(load_image(tmp_path / "img_000.png"), 4)
    assert sample["hr"].shape == (3, 48, 44) and sample["lr"].shape == (3, 12, 11)
    assert torch.equal(sample["lr"], imresize(hr, scale=1 / 4, uint8=True))


def test_benchmark_x8_from_x4_folder_downscales_its_hr_images(tmp_path: Path) -> None:
    write_pairs(tmp_path, scale=4)
    dataset = SRBenchmark(tmp_path, scale=8)
    assert [(name, hr.name, lr) for name, hr, lr in dataset.files] == [
        ("img_000", "img_000_SRF_4_HR.png", None),
        ("img_001", "img_001_SRF_4_HR.png", None),
    ]
    assert dataset[0]["lr"].shape == (3, 6, 6)


def test_benchmark_skips_pair_whose_lr_does_not_fit(tmp_path: Path) -> None:
    write_pairs(tmp_path, scale=4)
    save_image(torch.rand(3, 10, 12), tmp_path / "img_001_SRF_4_LR.png")
    dataset = SRBenchmark(tmp_path, scale=4)
    assert dataset[0] is not None and dataset[1] is None
    with pytest.raises(DataError, match=r"img_001_SRF_4_LR\.png"):
        dataset.load(1)


def test_sr_training_logs_psnr_ssim_and_checkpoint(sr_run: Path) -> None:
    metadata = checkpoint_metadata(read_checkpoint(sr_run / "checkpoints" / "last.ckpt"))
    assert metadata.task == "sr" and metadata.net["scale"] == 8 and metadata.styles == []
    tags = scalar_tags(sr_run)
    for tag in ("train/feature", "train/tv", "val/psnr", "val/ssim"):
        assert tag in tags, tag


def test_pixel_loss_run_with_benchmark_val_set(tmp_path: Path) -> None:
    """``task=sr loss=pixel`` trains on the pixel term alone; a benchmark val set logs under its name."""
    write_images(tmp_path / "bench", 2, size=(48, 48))
    val_set = f"{{_target_:perceptual.data.sr.SRBenchmark,root:'{tmp_path / 'bench'}',scale:4}}"
    run_dir = tmp_path / "run"
    train_run(run_dir, *FAST_SR, "loss=pixel", f"+data.val_sets.bench={val_set}")
    tags = scalar_tags(run_dir)
    assert "train/pixel" in tags and "train/feature" not in tags
    assert "val/bench/psnr" in tags and "val/bench/ssim" in tags
    assert not (run_dir / "WARNING_random_loss_network.txt").exists()  # no loss network at all


def test_unsupported_scale_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_command("train.py", *FAST_SR, "scale=3", output_dir=tmp_path) == 2
    assert error_lines(capsys.readouterr().err) == ["error: model.scale=3 must be one of: 2, 4, 8; pick one of them"]


def test_validation_set_names_come_from_the_config() -> None:
    val_set = "{_target_:perceptual.data.sr.SRBenchmark,root:/bench,scale:4}"
    cfg = compose_config("train", "task=sr", f"+data.val_sets.set5={val_set}", f"+data.val_sets.set14={val_set}")
    assert list(cfg.task.val_sets) == ["set5", "set14"]
    assert list(compose_config("train", "task=sr").task.val_sets) == []


def test_validation_set_without_a_name_is_a_config_error(tmp_path: Path) -> None:
    write_images(tmp_path, 2, size=(48, 48))
    task = SuperResolutionTask(
        scale=4,
        net=SuperResolutionNet(scale=4, width=4),
        criterion=PerceptualCriterion({"pixel": PixelLoss()}),
        optimizer=torch.optim.Adam,
    )
    data = SampleDataModule(
        batch_size=1, image_size=32, make_sample=SRDegradation(scale=4), val_sets={"bench": SRBenchmark(tmp_path, 4)}
    )
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match=r"validation loader 1 has no name; set task\.val_sets"):
        trainer.validate(task, datamodule=data)


def test_evaluate_bicubic_baseline_skips_unreadable_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The library call behind the command (see test_evaluate_command_end_to_end): without ckpt, bicubic only."""
    hr_paths = write_images(tmp_path / "hr", 3, size=(48, 48))
    bad = write_bad_images(tmp_path / "hr")
    run_dir = tmp_path / "run"
    results, report = evaluate(SRBenchmark(tmp_path / "hr", scale=4), run_dir)
    assert report.summarise(run_dir) == 1  # the CLI's exit code
    assert sorted(path for path, _ in report.failed) == sorted(bad)
    err = capsys.readouterr().err
    assert all(f"failed: {path}: " in err for path in bad)
    assert results.markdown().splitlines()[-1].startswith("| **mean** |")
    assert sorted(p.name for p in (run_dir / "bicubic").iterdir()) == ["img_000.png", "img_001.png", "img_002.png"]
    assert not (run_dir / "model").exists()
    means = json.loads((run_dir / "results.json").read_text())
    assert list(means) == ["bicubic"] and set(means["bicubic"]) == {"psnr", "ssim", "sharpness", "grid"}
    assert 0 < means["bicubic"]["sharpness"] < 1  # bicubic upscaling is blurrier than the HR image
    with open(run_dir / "results.csv") as file:
        assert len(list(csv.DictReader(file))) == 3
    expected = []
    for path in hr_paths:
        hr = modcrop(load_image(path), 4)[None]
        bicubic = imresize(imresize(hr, scale=1 / 4, uint8=True), size=tuple(hr.shape[-2:]), uint8=True)
        expected.append(psnr_y(bicubic, hr, crop=4).item())
    assert means["bicubic"]["psnr"] == pytest.approx(np.mean(expected), abs=1e-9)


def test_evaluate_checkpoint_with_histogram_matching(
    sr_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_images(tmp_path / "hr", 2, size=(64, 64))
    run_dir = tmp_path / "run"
    ckpt = sr_run / "checkpoints" / "last.ckpt"
    overrides = (f"input={tmp_path / 'hr'}", "scale=8", f"ckpt={ckpt}", "histogram_match=true", "device=cpu")
    assert run_command("evaluate.py", *overrides, output_dir=run_dir) == 0
    header = (
        "| image | bicubic PSNR | bicubic SSIM | bicubic sharpness | bicubic grid | model PSNR | model SSIM |"
        " model sharpness | model grid |"
    )
    assert header in capsys.readouterr().out
    means = json.loads((run_dir / "results.json").read_text())
    assert list(means) == ["bicubic", "model"] and all(np.isfinite(list(means["model"].values())))
    assert load_image(run_dir / "model" / "img_001.png").shape == (3, 64, 64)
    with open(run_dir / "results.csv") as file:
        assert [(row["image"], row["method"]) for row in csv.DictReader(file)] == [
            ("img_000", "bicubic"),
            ("img_000", "model"),
            ("img_001", "bicubic"),
            ("img_001", "model"),
        ]


@pytest.mark.slow
def test_evaluate_command_end_to_end(tmp_path: Path) -> None:
    """The real command: the table on stdout, the files in Hydra's run directory, exit code 1 for a bad image."""
    write_images(tmp_path / "hr", 2, size=(48, 48))
    (tmp_path / "hr" / "zz_broken.png").write_bytes(b"not a png")
    run_dir = tmp_path / "run"
    result = run_cli("evaluate.py", f"input={tmp_path / 'hr'}", "scale=4", f"hydra.run.dir={run_dir}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "zz_broken.png" in result.stderr and "| **mean** |" in result.stdout
    assert sorted(p.name for p in (run_dir / "bicubic").iterdir()) == ["img_000.png", "img_001.png"]
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "results.json").is_file()


def test_checkpoint_scale_must_match(sr_run: Path) -> None:
    with pytest.raises(ConfigError, match="upscales x8 but scale=4; pass scale=8"):
        load_upscaler(sr_run / "checkpoints" / "last.ckpt", scale=4, device="cpu")


def test_evaluate_option_errors(tmp_path: Path) -> None:
    write_images(tmp_path, 1, size=(48, 48))
    with pytest.raises(ConfigError, match="exactly one of input="):
        resolve_input(str(tmp_path), "set5", tmp_path, scale=4)
    with pytest.raises(ConfigError, match="benchmark=urban100 is not supported; use one of: set5, set14"):
        resolve_input(None, "urban100", tmp_path, scale=4)
    with pytest.raises(DataError, match=r"set paths\.benchmark_dir="):
        resolve_input(None, "set5", tmp_path, scale=4)
    with pytest.raises(ConfigError, match=r"histogram_match=true .* pass ckpt="):
        evaluate(SRBenchmark(tmp_path, scale=4), tmp_path / "out", histogram_match=True)


def test_histogram_matching_gives_output_the_input_histogram() -> None:
    generator = torch.Generator().manual_seed(0)
    lr = quantize(0.2 + 0.5 * torch.rand(3, 8, 8, generator=generator))
    sr = torch.rand(3, 32, 32, generator=generator)
    matched = match_histogram(sr, lr)
    assert matched.shape == sr.shape
    for channel in range(3):
        out, source, reference = matched[channel].flatten(), sr[channel].flatten(), lr[channel].flatten()
        assert reference.min() <= out.min() and out.max() <= reference.max()
        assert out.mean().item() == pytest.approx(reference.mean().item(), abs=0.02)
        assert torch.all(out[source.argsort()].diff() >= 0)  # a monotone mapping: the output keeps its structure


def test_set5_x4_bicubic_matches_published_baseline(shared_data: Path, tmp_path: Path) -> None:
    folder = resolve_input(None, "set5", shared_data / "sr", scale=4)
    results, report = evaluate(SRBenchmark(folder, scale=4), tmp_path)
    assert not report.failed and len(report.written) == 5
    assert results.means()["bicubic"]["psnr"] == pytest.approx(28.42, abs=0.05)
