"""Error types whose message is meant for the user (printed in one line by the CLI)."""
from __future__ import annotations


class Pose3DError(Exception):
    """An error caused by input (a file, a key, a value): its message names what and why."""


class ConfigError(Pose3DError, ValueError):
    """A config key is unknown, missing, or has the wrong type."""


class DataError(Pose3DError, ValueError):
    """A data file is missing, truncated, or does not follow its schema."""


class CheckpointError(Pose3DError, ValueError):
    """A checkpoint is missing, corrupt, unsafe or incompatible."""
