"""Compact copies of a loss network's weights: its convolutions up to one layer, rounded to float16.

HED's VGG-16 up to relu4_3 in float16 is 15 MB against 60 MB in float32 for the whole of it; that is what a run on an
offline machine carries (``loss_net.weights=<copy>``), and a checkpoint of such a run records the copy's path and
SHA-256. The copy is named ``<arch>_<source>_<layer>.pth`` (e.g. ``vgg16_hed_relu4_3.pth``) and is reproducible byte
for byte: ``torch.save`` writes the same bytes for the same tensors under the same file name (it names its archive
after the file). So where a recorded copy is not on this machine, :func:`remake` writes it again from its source and
the recorded SHA-256 proves it the same file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from perceptual.errors import ConfigError
from perceptual.lossnet.hed import sha256_of
from perceptual.lossnet.vgg import LossNetwork

log = logging.getLogger(__name__)

COMPACT_NAME = re.compile(r"(?P<arch>vgg16|vgg19)_(?P<source>hed|imagenet|random)_(?P<layer>relu\d_\d)\.pth")
COMPACT_DTYPE = torch.float16


def compact_name(source: str, arch: str = "vgg16", layer: str = "relu4_3") -> str:
    """The file name a compact copy goes by, e.g. ``vgg16_hed_relu4_3.pth``."""
    name = f"{arch}_{source}_{layer}.pth"
    if not COMPACT_NAME.fullmatch(name):
        raise ConfigError(f"no compact copy of {source} {arch} up to {layer}: give hed, imagenet or random, reluN_M")
    return name


def write_compact(folder: Path, source: str, arch: str = "vgg16", layer: str = "relu4_3") -> Path:
    """Write the compact copy of ``source``'s ``arch`` up to ``layer`` into ``folder``; returns its path."""
    path = Path(folder) / compact_name(source, arch, layer)
    features = LossNetwork([layer], arch=arch, weights=source).features
    state = {f"features.{key}": value.to(COMPACT_DTYPE) for key, value in features.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def remake(recorded: Path, sha256: str) -> Path | None:
    """A copy of the compact file ``recorded`` (missing here) with the recorded ``sha256``, written under the torch
    hub cache; ``None`` when ``recorded`` is not named as a compact copy or the remade file differs."""
    match = COMPACT_NAME.fullmatch(recorded.name)
    if match is None:
        return None
    folder = Path(torch.hub.get_dir()) / "checkpoints" / "compact"
    path = folder / recorded.name
    if path.is_file() and sha256_of(path) == sha256:  # remade before
        return path
    log.info("remaking %s from loss_net.weights=%s", recorded.name, match["source"])
    path = write_compact(folder, match["source"], match["arch"], match["layer"])
    return path if sha256_of(path) == sha256 else None
