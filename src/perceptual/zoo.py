"""The model zoo: trained nets shipped in the repository and addressable as ``ckpt=zoo:<name>``.

An entry is one file ``<zoo>/<name>.pt``: a slim checkpoint (:func:`perceptual.checkpoints.slim_checkpoint`: the
checkpoint metadata and the net's weights only, floating tensors as float16 so that the repository stays small) that
:func:`perceptual.inference.runner.load_net` reads like a training checkpoint, plus :data:`ZOO_KEY`, the metadata
that says how it was made (:data:`TEXT_FIELDS`, ``task``, ``steps``, ``metrics``). Entries hold plain dicts, lists,
strings, numbers and tensors only, so they load with ``torch.load(weights_only=True)``. Entries written in an earlier
checkpoint format load through the checkpoint migration.

Where the zoo folder is and what ``zoo:<name>`` names: :mod:`perceptual.locations`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from perceptual.checkpoints import (
    METADATA_KEY,
    CheckpointMetadata,
    checkpoint_metadata,
    migrate,
    net_weights,
    read_checkpoint,
    slim_checkpoint,
)
from perceptual.errors import ConfigError, DataError
from perceptual.locations import LIST_COMMAND, SUFFIX, entry_names, zoo_folder
from perceptual.lossnet.weights import WeightsSource

ZOO_KEY = "zoo"  # the entry's zoo metadata, beside the checkpoint's
# Metadata every entry records as text; steps default to the checkpoint's global step, metrics to {}, and
# loss_net_weights to the source the checkpoint records (WeightsSource.summary), when it records one.
TEXT_FIELDS = ("description", "trained_on", "loss_net_weights", "wall_time", "hardware", "command")


@dataclass(frozen=True)
class ZooEntry:
    """One entry as listed: its name, file, size on disk, metadata (the entry's ``zoo`` dict) and the loss-network
    weights its checkpoint metadata records (``None`` for entries that predate the record)."""

    name: str
    path: Path
    size_mb: float
    metadata: dict[str, Any]
    loss_net: WeightsSource | None = None

    @property
    def loss_net_weights(self) -> str:
        """The loss-network weights as listed: the recorded source, with the hand-typed text when it says more."""
        typed = str(self.metadata.get("loss_net_weights", ""))
        if self.loss_net is None:
            return typed
        recorded = self.loss_net.summary()
        return recorded if typed in ("", recorded, self.loss_net.name) else f"{recorded}; {typed}"


def slim(checkpoint: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The entry for a checkpoint (of any format version): net weights as float16 (integer buffers unchanged), no
    optimiser or trainer state, and the zoo metadata with the task, (by default) the step count and the loss-network
    weights the checkpoint records filled in."""
    checkpoint = migrate(checkpoint)
    info = checkpoint_metadata(checkpoint)
    if metadata.get("loss_net_weights") in (None, "") and info.loss_net_source is not None:
        metadata = {**metadata, "loss_net_weights": info.loss_net_source.summary()}
    missing = [key for key in TEXT_FIELDS if metadata.get(key) in (None, "")]
    if missing:
        given = " ".join(f"{key}=..." for key in missing)
        raise ConfigError(f"zoo entry metadata lacks {', '.join(missing)}; give {given}")
    steps = metadata.get("steps")
    steps = checkpoint.get("global_step") if steps is None else steps
    if not isinstance(steps, int):
        raise ConfigError(f"steps={steps} is not a step count; give steps=<number of training steps>")
    weights = {}
    for name, value in net_weights(checkpoint).items():
        if value.is_floating_point():
            if value.numel() and value.abs().max() > torch.finfo(torch.float16).max:
                raise DataError(f"weight {name} exceeds the float16 range; this net cannot be stored as a zoo entry")
            value = value.half()
        weights[name] = value
    entry = slim_checkpoint(info, weights)
    entry[ZOO_KEY] = {
        **{key: str(metadata[key]) for key in TEXT_FIELDS},
        "task": info.task,
        "steps": steps,
        "metrics": dict(metadata.get("metrics") or {}),
    }
    return entry


def save_entry(
    checkpoint: Mapping[str, Any] | str | Path,
    name: str,
    metadata: Mapping[str, Any],
    zoo_dir: str | Path | None = None,
) -> Path:
    """Write ``<zoo>/<name>.pt`` from a training checkpoint (dict or ``.ckpt`` path); a crash leaves no partial file,
    and an existing entry is never overwritten (replacing a published net should be a deliberate ``rm``)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"zoo entry name={name!r} must be letters, digits, '_' and '-' (e.g. name=starry_night)")
    folder = zoo_folder(zoo_dir)
    path = folder / f"{name}{SUFFIX}"
    if path.exists():
        raise ConfigError(f"zoo entry {path} exists; remove it first or pick another name")
    entry = slim(checkpoint if isinstance(checkpoint, Mapping) else read_checkpoint(checkpoint), metadata)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(entry, tmp)
        try:  # the format's promise: loadable without unpickling code
            torch.load(tmp, weights_only=True)
        except Exception as error:
            raise ConfigError(f"zoo entry metadata must be plain str/int/float/list/dict values ({error})") from None
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an entry is for everyone
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_entry(path: Path) -> dict[str, Any]:
    """An entry file, safely (``weights_only``) and lazily (memory-mapped tensors)."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise DataError(f"cannot read zoo entry {path} ({type(error).__name__}); remove or re-add it") from None
    if not isinstance(entry, dict) or not isinstance(entry.get(ZOO_KEY), dict):
        raise DataError(f"{path} is not a zoo entry (no zoo metadata); remove it or re-add it with {LIST_COMMAND}")
    return entry


def list_entries(zoo_dir: str | Path | None = None) -> list[ZooEntry]:
    """Every entry with its metadata, by name; an unreadable file is an error rather than silently left out."""
    folder = zoo_folder(zoo_dir)
    entries = []
    for name in entry_names(folder):
        path = folder / f"{name}{SUFFIX}"
        entry = read_entry(path)
        recorded = entry.get(METADATA_KEY)
        source = CheckpointMetadata.from_dict(recorded).loss_net_source if isinstance(recorded, Mapping) else None
        entries.append(ZooEntry(name, path, path.stat().st_size / 2**20, entry[ZOO_KEY], source))
    return entries


# The figures a listing shows from an entry's metrics, in this order: key, label, format. Style nets record the
# judge's and objective parity's figures (experiments/style_quality), super-resolution nets their benchmark scores.
HEADLINE_FIGURES = (
    ("parity_iterations", "parity", "{:.1f}"),  # recorded as text, ">100" past the last count
    ("gram_ratio", "Gram", "{:.3f}"),
    ("edge_correlation", "edges", "{:.2f}"),
    ("halo", "halo", "{:+.2f}"),
    ("set5_psnr", "Set5", "{:.2f} dB"),
    ("set5_sharpness", "sharpness", "{:.2f}"),
    ("set5_grid", "grid", "{:.2f}"),
    ("set14_psnr", "Set14", "{:.2f} dB"),
    ("set14_sharpness", "sharpness", "{:.2f}"),
    ("set14_grid", "grid", "{:.2f}"),
)


def headline(metrics: Mapping[str, Any]) -> str:
    """An entry's main figures in one cell; a multi-style entry (StyleBank: one dict of figures per style) shows
    each figure's range over its styles."""
    per_style = [value for value in metrics.values() if isinstance(value, Mapping)]
    parts = []
    for key, label, form in HEADLINE_FIGURES:
        values = [figures[key] for figures in per_style if key in figures] if per_style else [metrics.get(key)]
        if not values or values[0] in (None, "", "n/a"):
            continue
        shown = [form.format(value) if isinstance(value, int | float) else str(value) for value in values]
        if len(set(shown)) == 1:
            parts.append(f"{label} {shown[0]}")
        else:
            numbers = [value for value in values if isinstance(value, int | float)]
            span = f"{form.format(min(numbers))}-{form.format(max(numbers))}" if numbers else "/".join(shown)
            parts.append(f"{label} {span}")
    return ", ".join(parts) or "-"


def format_table(entries: list[ZooEntry]) -> str:
    """The entries as a markdown table, as ``python src/zoo.py`` prints them."""
    lines = [
        "| name | task | description | size (MB) | steps | loss-net weights | figures |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for entry in entries:
        info = entry.metadata
        lines.append(
            f"| {entry.name} | {info['task']} | {info['description']} | {entry.size_mb:.1f} | {info['steps']} "
            f"| {entry.loss_net_weights} | {headline(info.get('metrics') or {})} |"
        )
    return "\n".join(lines)


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Figures to record with an entry, from a JSON object file (e.g. an evaluation's results.json)."""
    path = Path(path).expanduser()
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read metrics={path} ({type(error).__name__}); pass a JSON file") from None
    if not isinstance(metrics, dict):
        raise DataError(f"metrics={path} holds a {type(metrics).__name__}; pass a JSON object of figures")
    return metrics
