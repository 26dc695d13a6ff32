"""One check for options that take one of a fixed set of values.

The values come from the option's ``Literal`` type (``typing.get_args``) or ``Enum`` class, so the type hint, the check
and the error message list the same values and cannot drift apart.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar, get_args

from perceptual.errors import ConfigError

T = TypeVar("T")


def choices(literal: Any) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` type or an ``Enum`` class, in the order written."""
    if isinstance(literal, type) and issubclass(literal, Enum):
        return tuple(member.value for member in literal)
    values = get_args(literal)
    if not values:
        raise TypeError(f"{literal!r} is not a Literal type")
    return values


def check_choice(name: str, value: T, literal: Any) -> T:
    """``value`` when it is one of ``literal``'s values; else a one-line :class:`ConfigError` naming the key and the
    allowed values (e.g. ``norm=group is not supported; use one of: batch, instance, none``)."""
    allowed = choices(literal)
    if value not in allowed:
        raise ConfigError(f"{name}={value} is not supported; use one of: {', '.join(map(str, allowed))}")
    return value
