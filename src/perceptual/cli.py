"""Error reporting for the command-line entry points: one line, no traceback, non-zero exit."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from hydra.errors import InstantiationException

from perceptual.errors import PerceptualError

log = logging.getLogger("perceptual")

EXIT_USER_ERROR = 2


def _user_error(error: BaseException) -> PerceptualError | None:
    """The PerceptualError behind ``error`` (Hydra wraps errors raised while instantiating)."""
    while error is not None:
        if isinstance(error, PerceptualError):
            return error
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def report_errors() -> Iterator[None]:
    """Turn user errors (bad paths, config values, missing weights) into ``error: ...`` + exit 2."""
    try:
        yield
    except (PerceptualError, InstantiationException) as error:
        cause = _user_error(error)
        message = str(cause) if cause is not None else " ".join(str(error).split())
        log.error(message)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
