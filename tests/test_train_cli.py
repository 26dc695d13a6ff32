"""The user's commands: train, stylize, resume, sweep, bad input.

Most run in this process on configs composed as the commands compose them; the tests marked ``slow`` run the real
commands in new processes, for what only they have (Hydra's run directory and train.log, multirun, exit codes).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import (
    compose_config,
    error_lines,
    run_cli,
    run_command,
    run_entry_point,
    train_run,
    write_bad_images,
    write_images,
)
from perceptual.checkpoints import checkpoint_metadata, read_checkpoint


def event_tags(run_dir: Path) -> dict[str, list[str]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events.Tags()


def stylize(*overrides: str) -> int:
    return run_command("stylize.py", "device=cpu", *overrides)


def test_training_leaves_checkpoint_logs_and_samples(style_run: Path) -> None:
    checkpoint = read_checkpoint(style_run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 4
    metadata = checkpoint_metadata(checkpoint)
    assert metadata.net["_target_"] == "perceptual.nets.johnson.StyleTransferNet" and metadata.styles == ["mosaic"]
    assert yaml.safe_load(metadata.run_config)["trainer"]["max_steps"] == 4
    assert not any(key.startswith("criterion.") for key in checkpoint["state_dict"])  # no VGG in checkpoints
    tags = event_tags(style_run)
    for tag in ("train/loss", "train/content", "train/style", "train/tv", "val/loss"):
        assert tag in tags["scalars"], tag
    assert tags["images"], "no image grid logged"
    samples = sorted((style_run / "samples").glob("step_*.png"))
    assert samples and Image.open(samples[-1]).size[0] > 32
    assert (style_run / "WARNING_random_loss_network.txt").is_file()


def test_stylize_writes_every_good_file_and_reports_bad_ones(
    style_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inputs = tmp_path / "in"
    write_images(inputs, 2, size=(30, 41))
    write_images(inputs / "nested", 1, size=(50, 37), seed=1)
    bad = write_bad_images(inputs / "nested")
    ckpt = style_run / "checkpoints" / "last.ckpt"
    assert stylize(f"ckpt={ckpt}", f"input={inputs}", f"output={tmp_path / 'out'}") == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    failed = sorted(line.split(": ")[1] for line in err.splitlines() if line.startswith("failed: "))
    assert failed == sorted(str(path) for path in bad)
    assert "wrote 3 image(s)" in out and f"{len(bad)} failed" in out
    written = {p.relative_to(tmp_path / "out"): Image.open(p).size for p in (tmp_path / "out").rglob("*.png")}
    assert written == {
        Path("img_000.png"): (41, 30),
        Path("img_001.png"): (41, 30),
        Path("nested/img_000.png"): (37, 50),
    }


def test_stylize_single_file(style_run: Path, tmp_path: Path) -> None:
    [image] = write_images(tmp_path, 1, size=(33, 35))
    out = tmp_path / "styled.png"
    assert stylize(f"ckpt={style_run / 'checkpoints' / 'last.ckpt'}", f"input={image}", f"output={out}") == 0
    assert Image.open(out).size == (35, 33)


def test_stylize_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    [image] = write_images(tmp_path, 1)
    assert stylize("ckpt=/no/such.ckpt", f"input={image}", f"output={tmp_path}/o.png") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "checkpoint /no/such.ckpt does not exist" in line


def test_resume_continues_at_saved_step_with_optimizer_state(style_run: Path, tmp_path: Path) -> None:
    train_run(tmp_path, "debug=fast", "trainer.max_steps=6", f"ckpt_path={style_run / 'checkpoints' / 'last.ckpt'}")
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["global_step"] == 6
    adam_state = resumed["optimizer_states"][0]["state"]
    assert adam_state and all(int(s["step"]) == 6 for s in adam_state.values())  # Adam moments carried over


def test_bad_images_in_dataset_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two good and two bad training images in one batch of 4 per epoch: 3 steps skip exactly 6 samples."""
    folder = tmp_path / "data"
    write_images(folder, 2)
    write_bad_images(tmp_path / "bad")
    for name in ("bomb.png", "cut.jpg"):
        (tmp_path / "bad" / name).rename(folder / name)
    write_images(tmp_path / "val", 1)
    overrides = (
        "debug=fast",
        "data=folder",
        f"data.root={folder}",
        f"data.val_root={tmp_path / 'val'}",
        "data.batch_size=4",
        "data.num_workers=0",
        "trainer.max_steps=3",
    )
    with caplog.at_level(logging.WARNING, logger="perceptual"):
        train_run(tmp_path / "run", *overrides)
    assert "6 unreadable training image(s) were skipped" in caplog.text
    assert caplog.text.count(f"skipping unreadable image: image {folder / 'bomb.png'} is too large to decode") == 3
    assert caplog.text.count(f"skipping unreadable image: cannot read image {folder / 'cut.jpg'}") == 3
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [event.value for event in events.Scalars("data/skipped_images")] == [2.0, 4.0, 6.0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["style=/no/such/style.jpg"], "style=/no/such/style.jpg is neither an existing image file"),
        (["data=folder", "data.root=/no/such/dir"], "data.root=/no/such/dir contains no images"),
        (["data=folder", "data.root={tmp}"], "data.root={tmp} contains no images"),
        (["data=folder"], "data.root has no value; pass data.root=<value>"),
        (["ckpt_path=/no/such.ckpt"], "ckpt_path=/no/such.ckpt does not exist"),
        (["ckpt_path={tmp}/corrupt.ckpt"], "ckpt_path={tmp}/corrupt.ckpt cannot be read (RuntimeError); it is corrupt"),
        (["+loss.terms.extra._target_=perceptual.losses.NoSuchLoss"], "NoSuchLoss"),
        (["+loss.terms.extra.weight=1"], "loss.terms.extra has no _target_"),
        (["model.norm=group"], "model.norm=group must be one of: batch, instance, none; pick one of them"),
    ],
)
def test_bad_input_gives_one_line_error(
    overrides: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "corrupt.ckpt").write_bytes(b"PK\x03\x04 a truncated zip archive")
    overrides = [override.format(tmp=tmp_path) for override in overrides]
    cfg = compose_config("train", "debug=fast", *overrides, output_dir=tmp_path / "run")
    assert run_entry_point("train.py", cfg) == 2
    stderr = capsys.readouterr().err
    assert len(error_lines(stderr)) == 1 and message.format(tmp=tmp_path) in error_lines(stderr)[0]
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_train_and_stylize_commands_end_to_end(tmp_path: Path) -> None:
    """The real commands: Hydra's run directory (config, log, checkpoints, TensorBoard), then stylize's exit code."""
    run_dir = tmp_path / "run"
    result = run_cli("train.py", "debug=fast", "trainer.max_steps=2", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["trainer"]["max_steps"] == 2
    assert "finished at step 2" in (run_dir / "train.log").read_text()
    assert "val/loss" in event_tags(run_dir)["scalars"]
    inputs = tmp_path / "in"
    write_images(inputs, 1, size=(30, 41))
    (inputs / "broken.jpg").write_bytes(b"not an image")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    result = run_cli("stylize.py", f"ckpt={ckpt}", f"input={inputs}", f"output={tmp_path / 'out'}", "device=cpu")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "failed: " in result.stderr and "broken.jpg" in result.stderr
    assert Image.open(tmp_path / "out" / "img_000.png").size == (41, 30)


@pytest.mark.slow
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
    for job, weight in (("0", 1), ("1", 100)):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").is_file()
        hparams = yaml.safe_load((tmp_path / job / "tensorboard" / "hparams.yaml").read_text())
        assert hparams["loss.terms.style.weight"] == weight
        events = EventAccumulator(str(tmp_path / job / "tensorboard"))
        events.Reload()
        assert "_hparams_/experiment" in events.PluginTagToContent("hparams")  # HParams view compares the jobs


@pytest.mark.slow
def test_bad_input_command_exits_2_with_one_line(tmp_path: Path) -> None:
    """A key Hydra cannot compose fails before any code of ours runs: only the command shows that error."""
    result = run_cli("train.py", "debug=fast", "data.batchsize=4", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    [line] = error_lines(result.stderr)
    assert line.startswith("error: data.batchsize is not a config key (did you mean data.batch_size?)")
    assert "Traceback" not in result.stderr
