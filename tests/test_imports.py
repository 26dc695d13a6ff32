"""Importing the library changes no global state: warning filters are the application's (see perceptual.cli)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

import perceptual

PACKAGE = Path(perceptual.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(("perceptual", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_importing_a_module_sets_no_warning_filter(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    importlib.import_module(module_name(path))  # the libraries it imports are then cached: their filters are set
    calls = []
    for setter in ("filterwarnings", "simplefilter"):
        monkeypatch.setattr(warnings, setter, lambda *args, _name=setter, **kwargs: calls.append((_name, args)))
    spec = importlib.util.spec_from_file_location(f"fresh_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)  # the module's own code runs again
    assert calls == []
