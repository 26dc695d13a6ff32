"""Check a config's plain values against the type hints of the classes they configure, before anything is built.

A value of the wrong type (``data.batch_size=abc``) otherwise fails far from its key, deep inside a DataLoader or
the Trainer, with a traceback. Only what a command line can get wrong is checked: numbers, booleans, strings, nulls
and fixed choices (``Literal``); any other hint accepts everything. Written here because no runtime type-checking
library (typeguard, pydantic, beartype) is a dependency, and Hydra's structured configs would need a schema
dataclass for every config node.
"""

from __future__ import annotations

import contextlib
import types
import typing
from typing import Any, Literal, Union

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from perceptual.errors import ConfigError

SIMPLE = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def check_types(cfg: DictConfig, path: str = "") -> None:
    """Raise :class:`ConfigError` naming the first value under ``cfg`` that its ``_target_``'s signature rules out."""
    for key in cfg:
        if OmegaConf.is_missing(cfg, key):
            continue  # '???': instantiation names it
        node = cfg[key]
        if isinstance(node, DictConfig):
            check_types(node, f"{path}{key}.")
        elif isinstance(node, ListConfig):
            for index, item in enumerate(node):
                if isinstance(item, DictConfig):
                    check_types(item, f"{path}{key}[{index}].")
    if "_target_" not in cfg:
        return
    for key, hint in _type_hints(cfg._target_).items():
        if key not in cfg or OmegaConf.is_missing(cfg, key) or isinstance(cfg[key], (DictConfig, ListConfig)):
            continue
        value = cfg[key]
        if not _accepts(hint, value):
            wanted = _describe(hint)
            fix = "pick one of them" if wanted.startswith("one of") else f"pass {path}{key}=<{wanted}>"
            raise ConfigError(f"{path}{key}={_show(value)} must be {wanted}; {fix}")


def _type_hints(target: str) -> dict[str, Any]:
    """Type hints of ``target``'s parameters; for a class, of every ``__init__`` in its MRO, since subclasses pass
    ``**kwargs`` on to their bases. Hints that cannot be resolved are left out."""
    try:
        obj = get_object(target)
    except Exception:
        return {}  # instantiation reports an unknown target
    if isinstance(obj, type):
        functions = [c.__dict__["__init__"] for c in reversed(obj.__mro__) if "__init__" in c.__dict__]
    else:
        functions = [obj]
    hints: dict[str, Any] = {}
    for function in functions:
        with contextlib.suppress(Exception):  # e.g. a name imported only for type checkers
            hints.update(typing.get_type_hints(function))
    hints.pop("return", None)
    return hints


def _members(hint: Any) -> list[Any] | None:
    """The simple types and literal values ``hint`` allows, or None when it allows anything else too."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [_members(arg) for arg in typing.get_args(hint)]
        return None if any(m is None for m in members) else [x for m in members for x in m]
    if origin is Literal:
        return [("literal", value) for value in typing.get_args(hint)]
    return [hint] if hint in SIMPLE else None


def _accepts(hint: Any, value: Any) -> bool:
    members = _members(hint)
    return members is None or any(_matches(value, member) for member in members)


def _matches(value: Any, member: Any) -> bool:
    """``value`` is ``member`` (a literal) or of type ``member``; booleans are not numbers, integers are floats."""
    if isinstance(member, tuple):
        return value == member[1] and type(value) is type(member[1])
    if isinstance(value, bool):
        return member is bool
    return isinstance(value, (int, float) if member is float else member)


def _describe(hint: Any) -> str:
    members = _members(hint) or []
    choices = dict.fromkeys(_show(m[1]) for m in members if isinstance(m, tuple))  # 16 and "16" read the same
    kinds = [SIMPLE[m] for m in members if not isinstance(m, tuple)]
    return " or ".join(([f"one of: {', '.join(choices)}"] if choices else []) + kinds)


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
