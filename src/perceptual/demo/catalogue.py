"""The nets the demo offers: the checkpoints named on its command line, then every zoo entry, and nothing else.

The page picks a net by its name in this list, so nothing a visitor uploads is ever read as a checkpoint. The
command-line checkpoints are read when the demo starts (a wrong path fails the command in one line, not a request
later); zoo entries are read on first use. Every net is built once and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from perceptual.checkpoints import CheckpointMetadata
from perceptual.errors import ConfigError
from perceptual.inference.runner import load_net
from perceptual.locations import PREFIX
from perceptual.nets.base import TransformNet
from perceptual.zoo import list_entries

Kind = Literal["style", "sr", "stylebank"]


@dataclass(frozen=True)
class LoadedNet:
    """A net of the catalogue, built, with its checkpoint's metadata."""

    name: str
    net: TransformNet
    metadata: CheckpointMetadata

    @property
    def kind(self) -> Kind:
        """What the page offers for it: style controls (``style``), bicubic beside the net (``sr``), or banks and
        fusion on top of the style controls (``stylebank``)."""
        capabilities = self.net.capabilities
        if not capabilities.styled:
            return "sr"
        return "stylebank" if capabilities.fusion else "style"

    @property
    def bank_names(self) -> list[str]:
        """One label per style bank: the style image's name where the checkpoint records it."""
        banks = self.net.capabilities.banks
        styles = [Path(style).stem for style in self.metadata.styles]
        return styles if len(styles) == banks else [f"bank {index}" for index in range(banks)]

    def describe(self) -> str:
        """One line for the page: what the net does."""
        if self.kind == "sr":
            return f"x{self.net.capabilities.scale} super-resolution: bicubic upscaling beside the net's output"
        if self.kind == "stylebank":
            return f"StyleBank net with {len(self.bank_names)} style banks: {', '.join(self.bank_names)}"
        style = ", ".join(Path(style).stem for style in self.metadata.styles) or "a style"
        return f"style-transfer net for {style}"


class Catalogue:
    """The demo's choices (see the module docstring).

    Args:
        checkpoints: checkpoint paths (or ``zoo:<name>``) from the command line, offered first.
        trust: load the command-line checkpoints with full unpickling (``trust_checkpoint=true``; zoo entries never
            need it).

    The zoo is the folder every command reads (``$PERCEPTUAL_ZOO`` or the repository's ``zoo/``).
    """

    def __init__(self, checkpoints: Sequence[str] = (), trust: bool = False) -> None:
        self.trust = trust
        self.local = [str(spec) for spec in checkpoints]
        self.zoo = {f"{PREFIX}{entry.name}": str(entry.metadata.get("description", "")) for entry in list_entries()}
        self.names = list(dict.fromkeys([*self.local, *self.zoo]))
        if not self.names:
            raise ConfigError("the demo has no nets to offer: the zoo is empty; pass ckpt=<checkpoint path>")
        self._loaded: dict[str, LoadedNet] = {}
        for name in self.local:
            self.load(name)

    def load(self, name: str) -> LoadedNet:
        """The net called ``name`` in :attr:`names`, built on first use; any other name is refused."""
        if name not in self.names:
            raise ConfigError(
                f"{name!r} is not one of the demo's nets; pick one from the list (the demo offers zoo entries and "
                "the checkpoints given on its command line as ckpt=...)"
            )
        if name not in self._loaded:
            net, metadata = load_net(name, self.trust and name in self.local)
            self._loaded[name] = LoadedNet(name, net, metadata)
        return self._loaded[name]

    def describe(self, name: str) -> str:
        """What the net called ``name`` does: the zoo entry's description, else what its checkpoint says."""
        return self.zoo.get(name) or self.load(name).describe()
