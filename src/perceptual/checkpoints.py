"""The checkpoint format: what a checkpoint carries besides weights, and how it is written, read and migrated.

A checkpoint is a dict -- Lightning's training checkpoint, or a slim zoo entry (:mod:`perceptual.zoo`) -- whose
``state_dict`` holds the net's weights under :data:`NET_PREFIX` and whose :data:`METADATA_KEY` entry is a
:class:`CheckpointMetadata` as plain values (str, int, float, list, dict, None), so ``torch.load(weights_only=True)``
reads it: the format version, the net's config (``_target_`` + constructor arguments: inference rebuilds the net
without Hydra configs or loss-network weights), the task, the styles, the loss network's weights and their checksum,
package versions and the run's composed config.

Format versions, oldest first; :func:`migrate` brings any of them to :data:`FORMAT_VERSION`:

- 0 (no version recorded): top-level ``net_config``, ``task``, ``styles`` (StyleBank: the style of each bank) and
  ``style_image`` (style transfer: the style image as uint8; never read, so the migration drops it).
- 1: everything under ``perceptual``; styles for every task that has them.

Reading is safe by default: :func:`load_file` unpickles with ``torch.load(weights_only=True)``, which builds only
tensors and plain containers and never calls code named in the file. Every checkpoint this project writes (training
checkpoints, zoo entries, the migrated formats) needs nothing more: the run config is stored as YAML text. A file that
needs more is refused in one line naming what it asked for; ``trust_checkpoint=true`` (``trust=True``) loads it with
full unpickling, which runs whatever code the file names: only for files from a source you trust.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import pickle
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

import perceptual
from perceptual.errors import DataError
from perceptual.locations import resolve
from perceptual.lossnet.weights import WeightsSource

FORMAT_VERSION = 1
METADATA_KEY = "perceptual"
STATE_KEY = "state_dict"
NET_PREFIX = "net."  # the task's ``net`` attribute: its weights are ``net.<name>`` in the task's state dict
VERSIONED_PACKAGES = ("torchvision", "pytorch-lightning", "hydra-core")  # beside perceptual and torch
WRITE_HINT = "pass a .ckpt written by src/train.py or a zoo entry (ckpt=zoo:<name>)"
TRUST_OPTION = "trust_checkpoint=true"


def software_versions() -> dict[str, str]:
    """Versions of this package and of the libraries whose behaviour the weights depend on."""
    versions = {"perceptual": perceptual.__version__, "torch": str(torch.__version__)}  # names the build (+cu130)
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class CheckpointMetadata:
    """Everything about a trained net except its weights.

    Attributes:
        net: the net's config (``_target_`` + constructor arguments), as the net's ``config()`` gives it.
        task: the task that trained it (``style``, ``sr``, ``stylebank``, ...).
        styles: the style image (style transfer) or the style of each bank in order (StyleBank), as given in the
            config (a path or a built-in name); empty for tasks without styles.
        loss_net: the criterion's loss-network weights as :meth:`WeightsSource.record` stores them (``arch``,
            ``weights``: a source name or a file's path, ``sha256``); ``None`` when the loss used none or the
            checkpoint predates this record. :attr:`loss_net_source` reads it back.
        versions: :func:`software_versions` when the checkpoint was written (empty for migrated checkpoints).
        run_config: the run's composed config as YAML; ``None`` when the net was not trained from a config.
    """

    net: dict[str, Any]
    task: str
    styles: list[str] = field(default_factory=list)
    loss_net: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=software_versions)
    run_config: str | None = None

    @property
    def loss_net_source(self) -> WeightsSource | None:
        """The recorded loss-network weights as a typed source; ``None`` when none was recorded."""
        return WeightsSource.from_record(self.loss_net) if isinstance(self.loss_net, Mapping) else None

    @property
    def training_size(self) -> int | None:
        """The side of the crops the net was trained on (the run config's ``data.image_size``); ``None`` when the
        checkpoint records no run config or no such key."""
        if not self.run_config:
            return None
        size = OmegaConf.select(OmegaConf.create(self.run_config), "data.image_size", default=None)
        return int(size) if isinstance(size, int | float) and size > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Plain values with the format version, as stored under :data:`METADATA_KEY`."""
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CheckpointMetadata:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


def write_metadata(checkpoint: MutableMapping[str, Any], metadata: CheckpointMetadata) -> None:
    """Store ``metadata`` in ``checkpoint`` (e.g. in a LightningModule's ``on_save_checkpoint``)."""
    checkpoint[METADATA_KEY] = metadata.to_dict()


def slim_checkpoint(metadata: CheckpointMetadata, net_weights: Mapping[str, Tensor]) -> dict[str, Any]:
    """A checkpoint of the net alone (no optimiser or trainer state): what a zoo entry stores."""
    state = {NET_PREFIX + name: value for name, value in net_weights.items()}
    return {METADATA_KEY: metadata.to_dict(), STATE_KEY: state}


def _from_version_0(checkpoint: dict[str, Any]) -> dict[str, Any]:
    metadata = CheckpointMetadata(
        net=dict(checkpoint.pop("net_config")),
        task=checkpoint.pop("task"),
        styles=list(checkpoint.pop("styles", [])),
        versions={},
    )
    checkpoint.pop("style_image", None)
    checkpoint[METADATA_KEY] = metadata.to_dict()
    return checkpoint


# MIGRATIONS[v] turns a version-v checkpoint into a version-(v + 1) one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _from_version_0}


def format_version(checkpoint: Mapping[str, Any]) -> int | None:
    """The format version of ``checkpoint``; ``None`` when it is not one of this project's checkpoints."""
    if isinstance(checkpoint.get(METADATA_KEY), Mapping):
        return int(checkpoint[METADATA_KEY].get("format_version", 0))
    if checkpoint.get("net_config") and "task" in checkpoint:
        return 0
    return None


def migrate(checkpoint: Mapping[str, Any], source: str | Path = "checkpoint") -> dict[str, Any]:
    """``checkpoint`` in the current format (a new dict; tensors are shared, not copied)."""
    version = format_version(checkpoint) if isinstance(checkpoint, Mapping) else None
    if version is None or STATE_KEY not in checkpoint:
        raise DataError(f"{source} is not a perceptual checkpoint (no net config and weights); {WRITE_HINT}")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{source} has checkpoint format {version}, newer than this version of perceptual reads "
            f"({FORMAT_VERSION}); update perceptual"
        )
    migrated = dict(checkpoint)
    for step in range(version, FORMAT_VERSION):
        migrated = MIGRATIONS[step](migrated)
    return migrated


def _unsafe_reason(error: pickle.UnpicklingError) -> str | None:
    """What a file asked for that ``weights_only`` refused (``exec``, ``os.system``, a class), or ``None`` when the
    error is not such a refusal (a corrupt file)."""
    text = str(error)
    if "Weights only load failed" not in text:
        return None
    found = re.search(r"Unsupported (?:global: GLOBAL|operand) ?([^\s]+)", text)
    return f"it names {found.group(1)}" if found else "it holds more than tensors and plain values"


class UnsafeCheckpointError(DataError):
    """A file that ``torch.load(weights_only=True)`` refuses: loading it would run code it names."""


def load_file(path: str | Path, trust: bool = False, mmap: bool = False, what: str = "checkpoint") -> Any:
    """``torch.load`` of ``path`` on the CPU, safely unless ``trust`` (see the module docstring). A file that needs
    more than tensors and plain values is an :class:`UnsafeCheckpointError` in one line (``what`` names the file's
    role); other failures (a corrupt file) propagate for the caller to word."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust, mmap=mmap)
    except pickle.UnpicklingError as error:
        reason = None if trust else _unsafe_reason(error)
        if reason is None:
            raise
        raise UnsafeCheckpointError(
            f"refused to load {what} {path}: {reason}, and unpickling it could run code; "
            f"if you trust its source, pass {TRUST_OPTION} (unsafe)"
        ) from None


def read_checkpoint(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """A checkpoint file, or a zoo entry given as ``zoo:<name>``, in the current format; loaded safely unless
    ``trust`` (see :func:`load_file`)."""
    path = resolve(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist; pass ckpt=<run dir>/checkpoints/last.ckpt")
    try:
        checkpoint = load_file(path, trust)
    except UnsafeCheckpointError:
        raise
    except Exception as error:  # corrupt or foreign file: report, do not dump a traceback
        raise DataError(f"cannot read checkpoint {path} ({type(error).__name__}); {WRITE_HINT}") from None
    return migrate(checkpoint, path)


def checkpoint_metadata(checkpoint: Mapping[str, Any]) -> CheckpointMetadata:
    """The metadata of a checkpoint in the current format (see :func:`migrate`)."""
    return CheckpointMetadata.from_dict(checkpoint[METADATA_KEY])


def net_weights(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The net's entries of the checkpoint's state dict, without :data:`NET_PREFIX`, as stored (zoo: float16)."""
    return {
        name.removeprefix(NET_PREFIX): value
        for name, value in checkpoint[STATE_KEY].items()
        if name.startswith(NET_PREFIX)
    }


def build_net(checkpoint: Mapping[str, Any]) -> nn.Module:
    """The checkpoint's net with its weights (floating ones as float32), in eval mode."""
    net = instantiate(checkpoint_metadata(checkpoint).net)
    weights = {name: v.float() if v.is_floating_point() else v for name, v in net_weights(checkpoint).items()}
    net.load_state_dict(weights)
    return net.eval()
