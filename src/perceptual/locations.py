"""Where a ``ckpt=`` value points: a file, or ``zoo:<name>``, an entry of the model zoo's folder.

Below both :mod:`perceptual.checkpoints` (which reads any of them) and :mod:`perceptual.zoo` (which writes and lists
entries), so neither imports the other's callers. The zoo folder is the repository's ``zoo/`` (:data:`ZOO_DIR`); the
environment variable ``PERCEPTUAL_ZOO`` points every command at another folder (read at call time, so tests and other
checkouts can redirect it).
"""

from __future__ import annotations

import os
from pathlib import Path

from perceptual.errors import DataError

ZOO_DIR = Path(__file__).resolve().parents[2] / "zoo"
ZOO_ENV = "PERCEPTUAL_ZOO"
PREFIX = "zoo:"
SUFFIX = ".pt"
LIST_COMMAND = "python src/zoo.py"


def zoo_folder(zoo_dir: str | Path | None = None) -> Path:
    """``zoo_dir``, else ``$PERCEPTUAL_ZOO``, else the repository's ``zoo/``."""
    return Path(zoo_dir or os.environ.get(ZOO_ENV) or ZOO_DIR).expanduser()


def entry_names(zoo_dir: str | Path | None = None) -> list[str]:
    """The names usable as ``zoo:<name>``, sorted."""
    return sorted(path.stem for path in zoo_folder(zoo_dir).glob(f"*{SUFFIX}"))


def resolve(spec: str | Path, zoo_dir: str | Path | None = None) -> Path:
    """A ``ckpt=`` value as a file: ``zoo:<name>`` is the zoo entry ``<name>``, anything else a path."""
    if not str(spec).startswith(PREFIX):
        return Path(spec).expanduser()
    name, names = str(spec).removeprefix(PREFIX), entry_names(zoo_dir)
    if name not in names:  # also refuses names that would leave the folder (zoo:../x)
        raise DataError(
            f"no zoo entry '{name}' in {zoo_folder(zoo_dir)}; available: {', '.join(names) or 'none'} "
            f"(list them with: {LIST_COMMAND})"
        )
    return zoo_folder(zoo_dir) / f"{name}{SUFFIX}"
