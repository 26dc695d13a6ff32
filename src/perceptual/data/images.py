"""Datasets over image files that skip unreadable files instead of crashing a long run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset, default_collate

from perceptual.data.batch import SKIPPED_KEY
from perceptual.errors import DataError
from perceptual.imaging.io import load_image

log = logging.getLogger(__name__)


class ImageFileDataset(Dataset):
    """Loads ``files`` and applies ``transform`` (a callable on [3, H, W] returning a dict of tensors).

    An unreadable file yields ``None``; :func:`collate_skipping` drops it and counts it, so one
    corrupt JPEG among 80k never stops training.
    """

    def __init__(self, files: Sequence[Path], transform: Callable[[Tensor], dict[str, Tensor]]) -> None:
        self.files = list(files)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor] | None:
        try:
            image = load_image(self.files[index])
        except DataError as error:
            log.warning("skipping unreadable image: %s", error)
            return None
        return self.transform(image)


def collate_skipping(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Collate the readable samples; ``batch[SKIPPED_KEY]`` counts the dropped ones (an int, which stays on the host
    when the batch moves to a GPU)."""
    good = [s for s in samples if s is not None]
    batch: dict[str, Any] = default_collate(good) if good else {}
    batch[SKIPPED_KEY] = len(samples) - len(good)
    return batch


def require_images(files: Sequence[Path], key: str, root: Path) -> None:
    """Fail early, in one line, when a data folder holds no images."""
    if not files:
        raise DataError(f"{key}={root} contains no images (jpg, png, ...); pass {key}=<folder of images>")
