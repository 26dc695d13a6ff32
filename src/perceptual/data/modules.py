"""LightningDataModules over image folders (COCO train2014 or any tree of images).

What a sample looks like is a task's choice: ``make_sample`` turns a crop into the sample dict
(``{"image": crop}`` for style transfer, ``{"lr", "hr"}`` for super-resolution; keys in :mod:`perceptual.data.batch`).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from perceptual.data.batch import IMAGE_KEY, STYLE_INDEX_KEY
from perceptual.data.images import ImageFileDataset, collate_skipping, require_images
from perceptual.data.resumable import EpochSampler, ResumableLoader
from perceptual.errors import ConfigError
from perceptual.imaging.io import list_images

log = logging.getLogger(__name__)

SampleMaker = Callable[[Tensor], dict[str, Tensor]]  # crop -> sample dict


def default_num_workers(processes: int = 1) -> int:
    """``num_workers=auto``: half the CPUs this process may run on, shared by the ``processes`` training on this
    machine, at most 8. Decoding and cropping then run beside the training step, and the other half stays with the
    main process (which launches the GPU's kernels, or computes on the CPU)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, cpus // (2 * processes))


def image_only(crop: Tensor) -> dict[str, Tensor]:
    return {IMAGE_KEY: crop}


class RandomStyleIndex:
    """Adds a uniformly random ``style_index`` to each training sample (validation picks its own)."""

    def __init__(self, make: Callable[[Tensor], dict[str, Tensor]], num_styles: int) -> None:
        self.make = make
        self.num_styles = num_styles

    def __call__(self, image: Tensor) -> dict[str, Tensor]:
        sample = self.make(image)
        sample[STYLE_INDEX_KEY] = torch.randint(self.num_styles, ())
        return sample


class EnsureMinSize:
    """Upscale images smaller than the crop (with a warning) so a random crop always fits."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        if min(image.shape[-2:]) >= self.size:
            return image
        log.warning("image of %sx%s is smaller than the %s crop: upscaled", *image.shape[-2:], self.size)
        return v2.functional.resize(image, self.size, antialias=True)


class ImageDataModule(pl.LightningDataModule):
    """Shared loader plumbing: crops, the task's sample maker, skip-and-count collation.

    Args:
        batch_size: training batch size (4 in Johnson et al.).
        image_size: side of the square training crops (256 style, 288 SR).
        resize: ``True`` resizes the shorter side to ``image_size`` before cropping (style transfer); a number of
            px resizes it to that instead, so smaller crops keep the scale of larger ones (``image_size=128
            resize=256``: a quarter of the pixels per step, the content at the scale 256 px crops see; validation
            crops larger than it come from photos resized to their own size); ``False`` crops at native
            resolution (SR patches), upscaling only too-small images.
        val_image_size: side of the validation crops (default ``image_size``); larger crops make
            more telling sample images at little cost, since validation runs no backward pass.
        num_workers: DataLoader workers per process; ``auto``: :func:`default_num_workers`.
        val_batch_size: defaults to ``batch_size``.
        make_sample: crop -> sample dict; defaults to ``{"image": crop}``.
        make_val_sample: crop -> sample dict for the held-out crops; defaults to ``make_sample``. Set it when
            training samples are deliberately corrupted (e.g. ``SRDegradation(max_shift=8)``: non-aligned LR/HR
            pairs) but validation metrics must be scored on clean, aligned pairs.
        styles: style images (paths or built-in names) for multi-style tasks (StyleBank): each
            training sample then carries a random ``style_index``.
        val_sets: extra named validation datasets (e.g. SR benchmarks), one loader each at batch
            size 1 after the held-out crops, in this order; tasks log their metrics under ``val/<name>/...``
            (the SR task gets the names from the config: ``task.val_sets``).
    """

    def __init__(
        self,
        batch_size: int = 4,
        image_size: int = 256,
        val_image_size: int | None = None,
        resize: bool | int = True,
        num_workers: int | Literal["auto"] = "auto",
        val_batch_size: int | None = None,
        make_sample: SampleMaker | None = None,
        make_val_sample: SampleMaker | None = None,
        styles: Sequence[str] | None = None,
        val_sets: Mapping[str, Dataset] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(resize, bool) and resize < image_size:
            raise ConfigError(
                f"data.resize={resize} is smaller than data.image_size={image_size}: the crop would not fit; "
                f"set data.resize >= {image_size}, or true"
            )
        self.batch_size = batch_size
        self.image_size = image_size
        self.val_image_size = val_image_size or image_size
        self.resize = resize
        self.num_workers = num_workers
        self.val_batch_size = val_batch_size or batch_size
        self.make_sample = make_sample or image_only
        self.make_val_sample = make_val_sample or self.make_sample
        self.styles = list(styles) if styles else []
        self.val_sets = dict(val_sets or {})
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _crop(self, train: bool) -> v2.Transform:
        size = self.image_size if train else self.val_image_size
        if self.resize is False:
            first: v2.Transform = EnsureMinSize(size)
        else:
            first = v2.Resize(size if self.resize is True else max(self.resize, size), antialias=True)
        crop = v2.RandomCrop(size) if train else v2.CenterCrop(size)
        return v2.Compose([first, crop])

    def transform(self, train: bool) -> Callable[[Tensor], dict[str, Tensor]]:
        crop = self._crop(train)
        make_sample = self.make_sample if train else self.make_val_sample
        if not self.styles or not train:
            return lambda image: make_sample(crop(image))
        return RandomStyleIndex(lambda image: make_sample(crop(image)), len(self.styles))

    def _loader(self, dataset: Dataset | None, batch_size: int, train: bool) -> DataLoader:
        """Training: a :class:`ResumableLoader` (shuffled by the run's seed, resumable mid-epoch); else in order.

        Every loader has its own generator, so that starting one never draws from torch's global RNG: a resumed run,
        which starts its loaders at other moments than the uninterrupted one, then sees the same random numbers.
        """
        if dataset is None:
            raise RuntimeError("setup() must run before the dataloaders are requested")
        seed = torch.initial_seed()  # the run's seed: train.py seeds torch with cfg.seed
        trainer = self.trainer  # None outside a Trainer: one process
        workers = self.num_workers
        if workers == "auto":
            workers = default_num_workers(trainer.num_devices if trainer is not None else 1)
        options = {
            "batch_size": batch_size,
            "num_workers": workers,
            "collate_fn": collate_skipping,
            "persistent_workers": workers > 0,
            # page-locked batches copy to a GPU while it computes (Lightning moves them with non_blocking=True)
            "pin_memory": trainer is not None and trainer.strategy.root_device.type == "cuda",
            "generator": torch.Generator().manual_seed(seed),
        }
        if not train:
            return DataLoader(dataset, shuffle=False, **options)
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = EpochSampler(dataset, seed, num_replicas=replicas, rank=rank)
        return ResumableLoader(dataset, sampler, drop_last=len(sampler) > batch_size, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        crops = self._loader(self.val_set, self.val_batch_size, train=False)
        if not self.val_sets:
            return crops
        return [crops, *(self._loader(dataset, 1, train=False) for dataset in self.val_sets.values())]


class FolderDataModule(ImageDataModule):
    """Images from a folder tree, e.g. COCO ``train2014/``; validation from ``val_root`` or held out.

    Args:
        root: training images (searched recursively).
        val_root: validation images; when unset, ``val_size`` images of ``root`` are held out.
        val_size: how many images to validate on (kept small: they are logged as image grids).
        max_images: use at most this many training images (Johnson et al. SR used 10k COCO images).
        seed: which images are held out / kept.
    """

    def __init__(
        self,
        root: str,
        val_root: str | None = None,
        val_size: int = 8,
        max_images: int | None = None,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.val_root = Path(val_root).expanduser() if val_root else None
        self.val_size = val_size
        self.max_images = max_images
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        files = list_images(self.root) if self.root.exists() else []
        require_images(files, "data.root", self.root)
        random.Random(self.seed).shuffle(files)
        if self.val_root is not None:
            val_files = list_images(self.val_root)[: self.val_size] if self.val_root.exists() else []
            require_images(val_files, "data.val_root", self.val_root)
        else:
            held_out = min(self.val_size, max(len(files) - 1, 0))
            val_files, files = files[:held_out], files[held_out:]
        if self.max_images:
            files = files[: self.max_images]
        log.info("data: %d training and %d validation images from %s", len(files), len(val_files), self.root)
        self.train_set = ImageFileDataset(files, self.transform(train=True))
        self.val_set = ImageFileDataset(val_files or files[:1], self.transform(train=False))
