"""Training crops: where their pixels come from at each ``data.resize`` setting."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from perceptual.data.modules import FolderDataModule
from perceptual.errors import ConfigError

PHOTO = torch.rand(3, 48, 96)  # a 48 px short side


def is_window_of(crop: torch.Tensor, image: torch.Tensor) -> bool:
    """Whether ``crop`` equals some window of ``image`` (same size or larger), pixel for pixel."""
    height, width = crop.shape[-2:]
    windows = image.unfold(1, height, 1).unfold(2, width, 1)  # C, rows, cols, height, width
    return bool((windows == crop[:, None, None]).all(-1).all(-1).all(0).any())


@pytest.mark.parametrize(("resize", "scale"), [(True, 8), (16, 16), (False, 48)])
def test_a_crop_is_a_window_of_the_photo_at_the_chosen_scale(resize: bool | int, scale: int) -> None:
    """``True``: the short side resized to the crop; a number: to that many px; ``False``: the photo as it is."""
    data = FolderDataModule(root="unused", image_size=8, resize=resize)
    crop = data.transform(train=True)(PHOTO)["image"]
    assert crop.shape == (3, 8, 8)
    at_scale = v2.Resize(scale, antialias=True)(PHOTO) if scale != 48 else PHOTO
    assert is_window_of(crop, at_scale)
    assert not is_window_of(crop, v2.Resize(scale + 4, antialias=True)(PHOTO))


def test_validation_crops_larger_than_the_resize_come_from_their_own_size() -> None:
    data = FolderDataModule(root="unused", image_size=8, val_image_size=24, resize=16)
    crop = data.transform(train=False)(PHOTO)["image"]
    assert crop.shape == (3, 24, 24)
    assert is_window_of(crop, v2.Resize(24, antialias=True)(PHOTO))


def test_a_resize_smaller_than_the_crop_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data.resize=8 is smaller than data.image_size=16.*data.resize >= 16"):
        FolderDataModule(root="unused", image_size=16, resize=8)
