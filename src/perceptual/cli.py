"""What the command-line entry points share: one-line errors (no traceback, non-zero exit) and the warning filters
that suit a command (the library itself never changes global state such as warning filters)."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

from hydra.errors import InstantiationException

from perceptual.errors import PerceptualError

log = logging.getLogger("perceptual")

EXIT_USER_ERROR = 2
# Lightning warnings that do not apply to this project's training, as (message regex, category):
# - manual-optimisation checkpoints hold the weights after the optimiser step (StyleBank; so do automatic ones);
# - modules in eval mode at the start of training (incremental StyleBank keeps its frozen modules so on purpose).
IRRELEVANT_TRAINING_WARNINGS = (
    ("Using ModelCheckpoint with manual optimization", UserWarning),
    (r"Found \d+ module\(s\) in eval mode", UserWarning),
)


def ignore_irrelevant_training_warnings() -> None:
    """Keep :data:`IRRELEVANT_TRAINING_WARNINGS` out of a training command's output."""
    for message, category in IRRELEVANT_TRAINING_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


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
