"""What the command-line entry points share: one-line errors (no traceback, non-zero exit) and the warning filters
that suit a command (the library itself never changes global state such as warning filters)."""

from __future__ import annotations

import contextlib
import difflib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import hydra
from hydra.errors import HydraException, InstantiationException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue

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

# conf/hydra/launcher/submitit_{slurm,local}.yaml keep the names of the submitit plugin's configs, so that
# hydra/launcher=submitit_slurm takes this project's settings and the plugin's schema still checks them; Hydra warns
# about that pairing on every run.
LAUNCHER_SCHEMA_WARNING = r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema"


# Keys that were renamed, per command config: (config name, old full key) -> the new key. A renamed key answers with
# its new name rather than with the closest spelling (stylize's StyleBank key styles= is banks= now, not "tile").
RENAMED_KEYS = {("stylize", "styles"): "banks"}


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


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR) from None


@contextlib.contextmanager
def report_errors() -> Iterator[None]:
    """Turn user errors (bad paths, config values, missing weights) into ``error: ...`` + exit 2."""
    try:
        yield
    except MissingMandatoryValue as error:  # a '???' in the config, e.g. data.root of data=folder
        message = f"{error.full_key} has no value; pass {error.full_key}=<value>"
        log.error(message)
        _fail(message)
    except (PerceptualError, InstantiationException) as error:
        cause = _user_error(error)
        message = str(cause) if cause is not None else " ".join(str(error).split())
        log.error(message)  # into the run's log too
        _fail(message)


def entry_point(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[..., Any]]:
    """``hydra.main`` over ``conf/<config_name>.yaml`` (entry points live in ``src/``) whose own errors, found while
    composing the config (an unknown key, a missing option, bad override syntax), are one ``error:`` line and exit
    code 2 like :func:`report_errors`, instead of Hydra's several lines. ``HYDRA_FULL_ERROR=1`` keeps Hydra's report.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        hydra_task = hydra.main(version_base="1.3", config_path="../conf", config_name=config_name)(task)

        @functools.wraps(task)
        def run(cfg: DictConfig | None = None) -> Any:
            warnings.filterwarnings("ignore", message=LAUNCHER_SCHEMA_WARNING, category=UserWarning)
            if cfg is not None:  # a composed config (tests): Hydra passes it straight to the task
                return hydra_task(cfg)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                return hydra_task()
            os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing them
            try:
                return hydra_task()
            except HydraException as error:
                _fail(composition_error(error, config_name))

        return run

    return decorate


def composition_error(error: HydraException, config_name: str | None = None) -> str:
    """One line for a Hydra composition error, naming the key or option and the fix (a renamed key of the
    ``config_name`` command: its new name, see :data:`RENAMED_KEYS`)."""
    cause = error.__cause__
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key and cause.parent_node is not None:
        renamed = RENAMED_KEYS.get((config_name, cause.full_key))
        if renamed:
            return f"{cause.full_key} was renamed: pass {renamed}= instead (--cfg job prints every key)"
        known = [str(key) for key in cause.parent_node]
        close = difflib.get_close_matches(str(cause.key), known, n=1)
        prefix = cause.full_key[: -len(str(cause.key))]
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        return (
            f"{cause.full_key} is not a config key{hint}; check the spelling (--cfg job prints every key) "
            f"or add a new key with +{cause.full_key}=<value>"
        )
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return f"{group}={name} is not an option; use one of: {', '.join(error.options)}"
    return " ".join(str(error).split())
