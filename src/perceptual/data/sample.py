"""Built-in images that need no download: scikit-image's photographs and a generated mosaic.

They make ``python src/train.py`` work on a fresh machine and give tests real photographs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import skimage.data
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from perceptual.data.modules import ImageDataModule
from perceptual.errors import DataError
from perceptual.imaging.io import array_to_tensor, load_image


def mosaic(size: int = 256, cells: int = 90, seed: int = 0) -> np.ndarray:
    """A Voronoi 'mosaic' of saturated tiles with dark grout: a strong, download-free style image."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, size, (cells, 2))
    palette = np.array(
        [[230, 57, 70], [241, 180, 52], [42, 157, 143], [38, 70, 83], [244, 162, 97], [69, 123, 157], [233, 196, 106]]
    )
    colours = palette[rng.integers(0, len(palette), cells)] + rng.integers(-25, 25, (cells, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    distances = np.hypot(yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1])
    nearest = np.sort(distances, axis=-1)
    image = colours[distances.argmin(axis=-1)].astype(float)
    grout = np.clip((nearest[..., 1] - nearest[..., 0]) / 3.0, 0.0, 1.0)[..., None]
    return np.clip(image * grout + 20 * (1 - grout), 0, 255).astype(np.uint8)


BUILTIN_IMAGES: dict[str, Callable[[], np.ndarray]] = {
    "mosaic": mosaic,
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "camera": skimage.data.camera,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "colorwheel": skimage.data.colorwheel,
}
TRAIN_PHOTOS = ("astronaut", "coffee", "camera", "hubble_deep_field", "immunohistochemistry")
VAL_PHOTOS = ("chelsea", "rocket")


def builtin_image(name: str) -> Tensor:
    return array_to_tensor(BUILTIN_IMAGES[name]())


def resolve_image(spec: str, key: str = "style", size: int | None = None) -> Tensor:
    """An image from a file path or a built-in name (``mosaic``, ``astronaut``, ...), its shorter side
    resized to ``size`` when given."""
    image = _load_spec(spec, key)
    return TF.resize(image, size, antialias=True) if size else image


def _load_spec(spec: str, key: str) -> Tensor:
    if spec in BUILTIN_IMAGES and not Path(spec).exists():
        return builtin_image(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"{key}={spec} is neither an existing image file nor a built-in image; "
            f"pass {key}=<path to an image> or one of: {', '.join(BUILTIN_IMAGES)}"
        )
    return load_image(path)


class BuiltinImageDataset(Dataset):
    """``length`` samples cycling over built-in images (random crops make each one different)."""

    def __init__(self, names: Sequence[str], length: int, transform: Callable[[Tensor], dict[str, Tensor]]) -> None:
        self.images = [builtin_image(name) for name in names]
        self.length = length
        self.transform = transform

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.transform(self.images[index % len(self.images)])


class SampleDataModule(ImageDataModule):
    """Trains on scikit-image's photographs, validates on two others: no download, runs anywhere.

    ``samples_per_epoch`` random crops make an epoch; crops are taken from images resized so their
    shorter side is ``resize_to`` x ``image_size``, which keeps crops varied for small crop sizes.
    """

    def __init__(self, samples_per_epoch: int = 64, resize_to: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.samples_per_epoch = samples_per_epoch
        self.resize_to = resize_to

    def _crop(self, train: bool) -> v2.Transform:
        if not train:
            return v2.Compose([v2.Resize(self.val_image_size, antialias=True), v2.CenterCrop(self.val_image_size)])
        size = round(self.image_size * self.resize_to)
        return v2.Compose([v2.Resize(size, antialias=True), v2.RandomCrop(self.image_size), v2.RandomHorizontalFlip()])

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = BuiltinImageDataset(TRAIN_PHOTOS, self.samples_per_epoch, self.transform(train=True))
            self.val_set = BuiltinImageDataset(VAL_PHOTOS, len(VAL_PHOTOS), self.transform(train=False))
