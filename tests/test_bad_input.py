"""Bad input: each bad image file is a one-line error naming the file, and none stops a batch command or a training
epoch; bad config values and checkpoints are one-line errors naming the key or file and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra.errors import HydraException
from PIL import Image

from conftest import BAD_IMAGES, compose_config, write_bad_images, write_images
from perceptual.checkpoints import read_checkpoint
from perceptual.cli import composition_error
from perceptual.config_types import check_types
from perceptual.data.batch import SKIPPED_KEY
from perceptual.data.modules import FolderDataModule
from perceptual.errors import ConfigError, DataError
from perceptual.imaging.io import list_images, load_image, read_image_size
from perceptual.inference.image_files import transform_files
from perceptual.training import with_trainer_precision

PILLOW_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
REASONS = {
    "bomb.png": "is too large to decode safely (Image size (1600000000 pixels) exceeds limit of 178956970 pixels",
    "cut.png": "(OSError: image file is truncated)",
    "cut.jpg": "(OSError: Truncated File Read)",
    "empty.png": "(UnidentifiedImageError: cannot identify image file",
    "notes.jpg": "(UnidentifiedImageError: cannot identify image file",
    "loop.png": "Too many levels of symbolic links",
    "dangling.png": "is a symbolic link to a missing file",
}
HEADER_FAILURES = ["bomb.png", "empty.png", "notes.jpg", "loop.png", "dangling.png"]  # the others have a good header


def bad_image(folder: Path, name: str) -> Path:
    return next(path for path in write_bad_images(folder) if path.name == name)


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_load_image_names_the_file_and_the_problem_in_one_line(tmp_path: Path, name: str) -> None:
    path = bad_image(tmp_path, name)
    with pytest.raises(DataError) as error:
        load_image(path)
    message = str(error.value)
    assert message.startswith(f"{'image' if name in ('bomb.png', 'dangling.png') else 'cannot read image'} {path}")
    assert REASONS[name] in message
    assert "\n" not in message
    assert Image.MAX_IMAGE_PIXELS == PILLOW_DEFAULT_MAX_PIXELS  # the bomb was refused, not let through


@pytest.mark.parametrize("name", HEADER_FAILURES)
def test_read_image_size_fails_like_load_image(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=REASONS[name].replace("(", r"\(").replace(")", r"\)")):
        read_image_size(bad_image(tmp_path, name))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_permissions_are_a_data_error(tmp_path: Path) -> None:
    [path] = write_images(tmp_path, 1)
    path.chmod(0)
    with pytest.raises(DataError, match=r"PermissionError: \[Errno 13\] Permission denied"):
        load_image(path)


def test_folder_listing_includes_broken_links_but_not_folders(tmp_path: Path) -> None:
    write_bad_images(tmp_path)
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "link_to_folder.png").symlink_to("folder.png")
    assert [path.name for path in list_images(tmp_path)] == sorted(BAD_IMAGES)


def test_transform_files_writes_the_good_files_and_lists_each_bad_one(tmp_path: Path) -> None:
    """Unreadable inputs and unwritable outputs (here a folder in the way) fail alone; everything else is written."""
    sources = write_images(tmp_path / "in", 3, size=(24, 32)) + write_bad_images(tmp_path / "in")
    pairs = [(source, tmp_path / "out" / source.name) for source in sources]
    (tmp_path / "out" / "img_001.png").mkdir(parents=True)
    report = transform_files(lambda batch: 1 - batch, pairs, batch_size=2)
    assert sorted(path.name for path in report.written) == ["img_000.png", "img_002.png"]
    reasons = {path.name: reason for path, reason in report.failed}
    assert sorted(reasons) == sorted([*BAD_IMAGES, "img_001.png"])
    assert reasons["img_001.png"].startswith(f"cannot write {tmp_path / 'out' / 'img_001.png'} (")
    for name, expected in REASONS.items():
        assert expected in reasons[name], name
    inverted = load_image(tmp_path / "out" / "img_002.png")
    assert torch.allclose(inverted, 1 - load_image(tmp_path / "in" / "img_002.png"), atol=0.5 / 255)


def test_training_epoch_skips_and_counts_every_bad_file(tmp_path: Path) -> None:
    """One epoch over 3 good and 7 bad files in batches of 5: 3 images trained on, 7 counted as skipped."""
    write_images(tmp_path, 3, size=(24, 32))
    write_bad_images(tmp_path)
    data = FolderDataModule(root=str(tmp_path), val_root=str(tmp_path), batch_size=5, image_size=16)
    data.setup()
    assert len(data.train_set) == 10
    batches = list(data.train_dataloader())
    assert len(batches) == 2
    assert sum(int(batch[SKIPPED_KEY]) for batch in batches) == 7
    images = torch.cat([batch["image"] for batch in batches if "image" in batch])
    assert images.shape == (3, 3, 16, 16)


# --- bad configs and checkpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=four", "data.batch_size=four must be an integer; pass data.batch_size=<an integer>"),
        ("data.batch_size=true", "data.batch_size=true must be an integer"),  # a boolean is not a number here
        ("model.width=2.5", "model.width=2.5 must be an integer"),
        ("trainer.max_steps=[1]", None),  # a list: not a plain value, left to the target
        ("trainer.precision=fp16", "trainer.precision=fp16 must be one of: 64, 32, 16, transformer-engine,"),
        ("task.style_size=null", None),  # int | None
        ("data.resize_to=2", None),  # an integer is a float
        ("trainer.precision=16", None),
        ("trainer.precision=auto", None),  # resolved to a Lightning value first, as train() does
    ],
)
def test_config_values_are_checked_against_the_type_hints(override: str, message: str | None) -> None:
    override = f"+{override}" if "resize_to" in override else override  # the sample data has no such key
    cfg = with_trainer_precision(compose_config("train", "debug=fast", override, "paths.output_dir=/tmp/unused"))
    if message is None:
        check_types(cfg)
        return
    with pytest.raises(ConfigError) as error:
        check_types(cfg)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batchsize=4", "data.batchsize is not a config key (did you mean data.batch_size?); check the spelling"),
        ("colour=1", "colour is not a config key; check the spelling (--cfg job prints every key) or add a new key"),
        ("task=nosuch", "task=nosuch is not an option; use one of: sr, style, stylebank, stylebank_incremental"),
        ("data.batch_size=[1", "no viable alternative at input '[1' See https://hydra.cc/"),
    ],
)
def test_hydra_composition_errors_become_one_line(override: str, message: str) -> None:
    with pytest.raises(HydraException) as error:
        compose_config("train", override)
    assert composition_error(error.value).startswith(message)
    assert "\n" not in composition_error(error.value)


def test_a_renamed_key_answers_with_its_new_name() -> None:
    with pytest.raises(HydraException) as error:
        compose_config("stylize", "ckpt=x", "input=y", "output=z", "styles=[0,2]")
    assert composition_error(error.value, "stylize") == (
        "styles was renamed: pass banks= instead (--cfg job prints every key)"
    )
    assert "did you mean tile?" in composition_error(error.value)  # what it said without knowing the command


def test_corrupt_or_foreign_checkpoint_for_stylize_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "cut.ckpt").write_bytes(b"PK\x03\x04 a truncated zip archive")
    with pytest.raises(DataError, match=r"cannot read checkpoint .*cut\.ckpt \(RuntimeError\); pass a \.ckpt"):
        read_checkpoint(tmp_path / "cut.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(DataError, match=r"foreign\.ckpt is not a perceptual checkpoint \(no net config and weights\)"):
        read_checkpoint(tmp_path / "foreign.ckpt")
