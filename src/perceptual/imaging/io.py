"""Reading and writing images as float RGB tensors in [0, 1]."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from perceptual.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
# What Pillow raises on a malformed file (the list its own fuzzing tests accept), plus its decompression-bomb
# refusal of images above 2 x Image.MAX_IMAGE_PIXELS, which is left at Pillow's default on purpose.
IMAGE_READ_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    MemoryError,
    NotImplementedError,
    Image.DecompressionBombError,
)


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
    return sorted(p for p in root.glob(pattern) if is_image_file(p) and (p.is_file() or _is_broken_link(p)))


def _is_broken_link(path: Path) -> bool:
    """A symbolic link to nothing or to itself: listed, so that readers report it instead of missing it silently."""
    return path.is_symlink() and not path.exists()


def array_to_tensor(array: np.ndarray) -> Tensor:
    """uint8 HxW, HxWx3 or HxWx4 array -> float [3, H, W] in [0, 1] (gray repeated, alpha dropped)."""
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = array[..., :3]
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float().div_(255.0)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn whatever opening or decoding ``path`` raises into a one-line :class:`DataError` naming the file."""
    try:
        yield
    except FileNotFoundError:
        problem = "is a symbolic link to a missing file" if path.is_symlink() else "does not exist"
        raise DataError(f"image {path} {problem}; check the path") from None
    except Image.DecompressionBombError as error:
        raise DataError(
            f"image {path} is too large to decode safely ({_one_line(error)}); downscale or remove it"
        ) from None
    except IMAGE_READ_ERRORS as error:
        raise DataError(
            f"cannot read image {path} ({type(error).__name__}: {_one_line(error)}); replace or remove it"
        ) from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_image(path: str | os.PathLike) -> Tensor:
    """Load an image file as RGB float [3, H, W] in [0, 1], honouring EXIF orientation.

    Raises :class:`DataError` with the file name for missing, unreadable, corrupt or oversized files.
    """
    path = Path(path).expanduser()
    with _reading(path), Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        return array_to_tensor(np.asarray(image))


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file as :func:`load_image` will return it, from its header alone.

    Raises :class:`DataError` like :func:`load_image` for files whose header cannot be read.
    """
    path = Path(path).expanduser()
    with _reading(path), Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that rotate by 90 degrees
            width, height = height, width
    return height, width


def to_uint8(image: Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> HxWx3 uint8, rounding to the nearest level."""
    return image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def save_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Write [3, H, W] in [0, 1] atomically (temp file + rename), creating parent folders.

    Raises :class:`DataError` naming the file when it cannot be written (no space, no permission, a folder of
    that name, ...), so that batch commands report it and go on with the other files.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix or ".png")
        os.close(fd)
        Image.fromarray(to_uint8(image)).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
        os.replace(tmp, path)
    except OSError as error:
        raise DataError(f"cannot write {path} ({_one_line(error)}); check the output folder") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path
