"""Apply a trained net to image files (one image or a folder): batched by size, every good file written even
when some inputs are unreadable."""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from perceptual.errors import DataError
from perceptual.imaging.io import is_image_file, list_images, load_image, read_image_size, save_image

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """What a batch command did: files written and files that failed, with the reason."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def fail(self, path: Path, reason: str) -> None:
        log.error("skipped %s: %s", path, reason)
        self.failed.append((path, reason))

    def summarise(self, destination: str | Path) -> int:
        """Print what was written and what failed (on stderr); return the exit code (1 if any failed)."""
        for path, reason in self.failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        print(f"wrote {len(self.written)} image(s) to {destination}; {len(self.failed)} failed")
        return 1 if self.failed else 0


def plan_outputs(source: str | Path, destination: str | Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs: a file to a file (or into a folder), a folder tree to a mirrored tree."""
    source, destination = Path(source).expanduser(), Path(destination).expanduser()
    files = list_images(source)
    if not files:
        raise DataError(f"input={source} contains no images (jpg, png, ...); pass input=<image or folder>")
    if source.is_file():
        target = destination if is_image_file(destination) else destination / source.name
        return [(source, target)]
    return [(path, destination / path.relative_to(source)) for path in files]


def _fit(image: Tensor, max_size: int | None) -> Tensor:
    if max_size and max(image.shape[-2:]) > max_size:
        scale = max_size / max(image.shape[-2:])
        size = [max(1, round(s * scale)) for s in image.shape[-2:]]
        return TF.resize(image, size, antialias=True)
    return image


def transform_files(
    apply: Callable[[Tensor], Tensor],
    pairs: list[tuple[Path, Path]],
    batch_size: int = 4,
    max_size: int | None = None,
) -> BatchReport:
    """Run ``apply`` ([B,3,H,W] -> [B,3,H',W']) over the files, batching images of equal size; a progress bar per
    image on a terminal (tiled runs add one per tile)."""
    report = BatchReport()
    groups: dict[tuple[int, int], list[tuple[Path, Path]]] = defaultdict(list)
    for source, target in pairs:
        try:
            groups[read_image_size(source)].append((source, target))
        except DataError as error:
            report.fail(source, str(error))
    with tqdm(total=sum(map(len, groups.values())), unit="image", disable=None) as bar:
        for group in groups.values():
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                _transform_chunk(apply, chunk, max_size, report)
                bar.update(len(chunk))
    return report


def _transform_chunk(
    apply: Callable[[Tensor], Tensor], pairs: list[tuple[Path, Path]], max_size: int | None, report: BatchReport
) -> None:
    """One batch of equally sized files: read, apply, write; failures go to ``report``."""
    readable, images = [], []
    for source, target in pairs:
        try:
            images.append(_fit(load_image(source), max_size))
            readable.append((source, target))
        except DataError as error:
            report.fail(source, str(error))
    if not images:
        return
    outputs = apply(torch.stack(images))
    for (source, target), output in zip(readable, outputs):
        try:
            report.written.append(save_image(output, target))
        except DataError as error:
            report.fail(source, str(error))
            continue
        log.info("%s -> %s", source, target)
