"""A training data order that a killed run resumes exactly, mid-epoch included.

Three pieces, because each source of difference needs its own fix:

- :class:`EpochSampler` shuffles with ``(seed, epoch)`` alone and can start an epoch part-way through; it is a
  ``DistributedSampler``, so under DDP each process takes its share and Lightning does not wrap it again;
- each sample's random crop, flip or style index comes from its own seed ``(seed, epoch, index)`` set around the
  dataset's ``__getitem__`` (:class:`SeededSamples`), so it does not depend on which worker process loads it, on
  how many workers there are, or on what was drawn before a restart;
- :class:`ResumableLoader` counts epochs and the batches of an epoch the training loop took, and implements the
  ``state_dict`` / ``load_state_dict`` protocol Lightning saves in checkpoints for stateful dataloaders.

torchdata's ``StatefulDataLoader`` would keep the loader state too but is not a dependency here, and augmentations
drawn from per-worker random streams would still depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

SampleKey = tuple[int, int]  # (index into the dataset, seed of that sample's random transforms)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` of ``epoch``: unrelated streams for neighbouring indices and epochs."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class SeededSamples(Dataset):
    """``dataset[index]`` with torch's RNG seeded from the key, restored afterwards (the caller's stream is kept)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> Any:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class EpochSampler(DistributedSampler):
    """Shuffled :data:`SampleKey` s of this process's share of ``dataset``, the order a function of (seed, epoch).

    The first ``skip`` samples of the next iteration are left out: a resumed run starts where the killed one stopped.
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def __iter__(self) -> Iterator[SampleKey]:
        epoch, skip, self.skip = self.epoch, self.skip, 0
        for index in list(super().__iter__())[skip:]:
            yield index, sample_seed(self.seed, epoch, index)


class ResumableLoader(DataLoader):
    """A training DataLoader over an :class:`EpochSampler` that knows where it is: the epoch and the batches of it
    handed out, which go into checkpoints through the ``state_dict`` / ``load_state_dict`` protocol Lightning uses
    for stateful dataloaders.

    It counts epochs itself (each iteration after the first is the next epoch) instead of taking them from
    Lightning's ``set_epoch`` calls: after two restarts at the end of an epoch, Lightning 2.6 counts one epoch too
    few and would replay an epoch's order. Counting batches as they are handed out is exact because Lightning does
    not prefetch from loaders with a length.
    """

    sampler: EpochSampler

    def __init__(self, dataset: Dataset, sampler: EpochSampler, **kwargs: Any) -> None:
        super().__init__(SeededSamples(dataset), sampler=sampler, **kwargs)
        self.epoch = 0
        self.consumed = 0  # batches of this epoch handed out
        self.resuming = True  # the next iteration goes on with this epoch (a new loader: from its start)

    def __iter__(self) -> Iterator[Any]:
        if not self.resuming:
            self.epoch, self.consumed = self.epoch + 1, 0
        self.resuming = False
        self.sampler.set_epoch(self.epoch)
        self.sampler.skip = self.consumed * self.batch_size
        for batch in super().__iter__():
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed, self.resuming = state["epoch"], state["batches"], True
        if self.consumed >= len(self):  # saved after the epoch's last batch: the next epoch starts from its beginning
            self.epoch, self.consumed = self.epoch + 1, 0
