"""User-facing errors: entry points print their one-line message (no traceback) and exit non-zero."""


class PerceptualError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ConfigError(PerceptualError, ValueError):
    """An invalid configuration value."""


class DataError(PerceptualError):
    """Missing, empty or unreadable input data."""


class WeightsUnavailableError(PerceptualError):
    """Pretrained loss-network weights were requested but cannot be had."""


class ExportError(PerceptualError):
    """An exported graph that does not reproduce the net it was exported from."""


class TrainingDivergedError(PerceptualError):
    """The training loss or the weights stopped being finite."""
