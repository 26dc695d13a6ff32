"""The user's commands, run as subprocesses: train, stylize, resume, multirun, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import run_cli, write_images


def event_tags(run_dir: Path) -> dict[str, list[str]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events.Tags()


def test_training_leaves_checkpoint_logs_and_samples(trained_style_run: Path) -> None:
    checkpoint = torch.load(trained_style_run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 4
    assert checkpoint["net_config"]["_target_"] == "perceptual.nets.StyleTransferNet"
    assert not any(key.startswith("criterion.") for key in checkpoint["state_dict"])  # no VGG in checkpoints
    tags = event_tags(trained_style_run)
    for tag in ("train/loss", "train/content", "train/style", "train/tv", "val/loss"):
        assert tag in tags["scalars"], tag
    assert tags["images"], "no image grid logged"
    samples = sorted((trained_style_run / "samples").glob("step_*.png"))
    assert samples and Image.open(samples[-1]).size[0] > 32
    assert (trained_style_run / "WARNING_random_loss_network.txt").is_file()


def test_stylize_writes_every_good_file_and_reports_bad_ones(trained_style_run: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_images(inputs, 2, size=(30, 41))
    write_images(inputs / "nested", 1, size=(50, 37), seed=1)
    (inputs / "broken.jpg").write_bytes(b"not an image")
    result = run_cli(
        "stylize.py",
        f"ckpt={trained_style_run / 'checkpoints' / 'last.ckpt'}",
        f"input={inputs}",
        f"output={tmp_path / 'out'}",
        f"hydra.run.dir={tmp_path / 'log'}",
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "broken.jpg" in result.stderr
    written = {p.relative_to(tmp_path / "out"): Image.open(p).size for p in (tmp_path / "out").rglob("*.png")}
    assert written == {
        Path("img_000.png"): (41, 30),
        Path("img_001.png"): (41, 30),
        Path("nested/img_000.png"): (37, 50),
    }


def test_stylize_single_file(trained_style_run: Path, tmp_path: Path) -> None:
    [image] = write_images(tmp_path, 1, size=(33, 35))
    out = tmp_path / "styled.png"
    result = run_cli(
        "stylize.py",
        f"ckpt={trained_style_run / 'checkpoints' / 'last.ckpt'}",
        f"input={image}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'log'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(out).size == (35, 33)


def test_resume_continues_at_saved_step_with_optimizer_state(trained_style_run: Path, tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "debug=fast",
        "trainer.max_steps=6",
        f"ckpt_path={trained_style_run / 'checkpoints' / 'last.ckpt'}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["global_step"] == 6
    adam_state = resumed["optimizer_states"][0]["state"]
    assert adam_state and all(int(s["step"]) == 6 for s in adam_state.values())  # Adam moments carried over


def test_multirun_sweep_gives_one_run_per_job(tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "-m",
        "debug=fast",
        "trainer.max_steps=2",
        "loss.terms.style.weight=1,100",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").is_file()
        hparams = (tmp_path / job / "tensorboard" / "hparams.yaml").read_text()
        assert "loss.terms.style.weight" in hparams
    assert "loss.terms.style.weight: 100" in (tmp_path / "1" / "tensorboard" / "hparams.yaml").read_text()
    events = EventAccumulator(str(tmp_path / "1" / "tensorboard"))
    events.Reload()
    assert "_hparams_/experiment" in events.PluginTagToContent("hparams")  # HParams view compares the jobs


def test_corrupt_images_in_dataset_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    write_images(folder, 6)
    (folder / "zz_corrupt_1.jpg").write_bytes(b"\xff\xd8 truncated")
    (folder / "zz_corrupt_2.png").write_bytes(b"")
    result = run_cli(
        "train.py",
        "debug=fast",
        "data=folder",
        f"data.root={folder}",
        "data.val_size=1",
        "data.num_workers=0",
        "trainer.max_steps=6",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping unreadable image" in (tmp_path / "run" / "train.log").read_text()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert events.Scalars("data/skipped_images")[-1].value >= 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["style=/no/such/style.jpg"], "style=/no/such/style.jpg is neither an existing image file"),
        (["data=folder", "data.root=/no/such/dir"], "data.root=/no/such/dir contains no images"),
        (["ckpt_path=/no/such.ckpt"], "ckpt_path=/no/such.ckpt does not exist"),
        (["+loss.terms.extra._target_=perceptual.losses.NoSuchLoss"], "NoSuchLoss"),
        (["+loss.terms.extra.weight=1"], "loss.terms.extra has no _target_"),
        (["model.norm=group"], "norm=group is not supported; use one of: batch, instance, none"),
    ],
)
def test_bad_input_gives_one_line_error(overrides: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("train.py", "debug=fast", *overrides, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1


def test_stylize_missing_checkpoint(tmp_path: Path) -> None:
    [image] = write_images(tmp_path, 1)
    result = run_cli(
        "stylize.py",
        "ckpt=/no/such.ckpt",
        f"input={image}",
        f"output={tmp_path}/o.png",
        f"hydra.run.dir={tmp_path / 'log'}",
    )
    assert result.returncode == 2 and "checkpoint /no/such.ckpt does not exist" in result.stderr
    assert "Traceback" not in result.stderr
