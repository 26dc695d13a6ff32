"""Reading and writing images as float RGB tensors in [0, 1]."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from perceptual.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (a folder) or ``root`` itself (a file), sorted for reproducibility."""
    root = Path(root).expanduser()
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root} does not exist; pass an existing image file or folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and is_image_file(p))


def array_to_tensor(array: np.ndarray) -> Tensor:
    """uint8 HxW, HxWx3 or HxWx4 array -> float [3, H, W] in [0, 1] (gray repeated, alpha dropped)."""
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = array[..., :3]
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float().div_(255.0)


def load_image(path: str | os.PathLike) -> Tensor:
    """Load an image file as RGB float [3, H, W] in [0, 1], honouring EXIF orientation.

    Raises :class:`DataError` with the file name for missing or unreadable files.
    """
    path = Path(path).expanduser()
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            return array_to_tensor(np.asarray(image))
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist; check the path") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"cannot read image {path} ({type(error).__name__}: {error}); replace or remove it") from None


def to_uint8(image: Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> HxWx3 uint8, rounding to the nearest level."""
    return image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def save_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Write [3, H, W] in [0, 1] atomically (temp file + rename), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix or ".png")
    os.close(fd)
    try:
        Image.fromarray(to_uint8(image)).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
