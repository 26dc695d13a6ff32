"""A callback the multi-node test adds to ``src/train.py`` runs (``+callbacks.probe``): it writes what one process
saw to ``<out>/rank<global rank>.json`` and its net's weights to ``<out>/rank<global rank>.pt``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from perceptual.tasks.base import TransformTask


class Probe(pl.Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.indices: list[int] = []
        self.record: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: TransformTask) -> None:
        sampler = trainer.train_dataloader.sampler
        seen = self.indices

        class Recording(type(sampler)):
            """The process's sampler, noting the dataset index of each sample it hands out."""

            def __iter__(self):
                for key in super().__iter__():
                    seen.append(int(key[0]))
                    yield key

        sampler.__class__ = Recording
        ddp = trainer.strategy.model
        names = {id(p): name for name, p in pl_module.named_parameters()}
        features = pl_module.criterion.loss_net.features
        self.record = {
            "global_rank": trainer.global_rank,
            "node_rank": trainer.node_rank,
            "world_size": trainer.world_size,
            "start_step": trainer.global_step,
            "sampler": [sampler.rank, sampler.num_replicas],
            "wrapper": type(ddp).__name__,
            "synced": sorted(names[id(p)] for p in ddp._module_parameters if p.requires_grad),
            "loss_net_params": sum(p.numel() for p in features.parameters()),
            "loss_net_trainable": any(p.requires_grad for p in features.parameters()),
            "loss_net_training": features.training,
            "loss_net_checksum": float(sum(p.double().abs().sum() for p in features.parameters())),
        }

    def on_train_end(self, trainer: pl.Trainer, pl_module: TransformTask) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        self.record.update(indices=self.indices, end_step=trainer.global_step)
        (self.out / f"rank{rank}.json").write_text(json.dumps(self.record))
        torch.save({k: v.detach().cpu() for k, v in pl_module.net.state_dict().items()}, self.out / f"rank{rank}.pt")
