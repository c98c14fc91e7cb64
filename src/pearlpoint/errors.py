"""Errors a user can act on.

Every error meant for a person derives from :class:`PearlError`; the CLI prints its message on one
line (no traceback) and exits with status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class PearlError(Exception):
    """An error with a message that tells the user what to fix."""


class ConfigError(PearlError):
    """The configuration (file, environment or flag) is wrong."""


class InputError(PearlError):
    """A data file or a row in it is wrong. Names the file, the line and the field."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = []
        if self.path:
            where.append(self.path if line is None else f"{self.path}:{line}")
        if field:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.reason = message


class ModelError(PearlError):
    """A model backend failed in a way retries did not fix (unreachable, bad answer, missing file)."""


class BuildError(ModelError):
    """The installed llama.cpp build cannot run on this machine (it crashed or failed its load check)."""


class TransientModelError(ModelError):
    """A failure worth retrying: 429, 5xx, timeout, dropped connection."""


class BudgetExceeded(PearlError):
    """The run's call or token budget is spent; the run stops cleanly."""


class StructuredOutputError(ModelError):
    """The model's answer could not be turned into the requested JSON shape after all tries."""

    def __init__(self, message: str, *, raw: str = "", attempts: int = 0) -> None:
        super().__init__(message)
        self.raw = raw
        self.attempts = attempts
