"""Errors shown to the user: each message says what went wrong and what to do, and each kind
carries the exit status the command line ends with. Nothing else in the package prints them."""

from __future__ import annotations

from pathlib import Path


class MatrixError(Exception):
    """Base of every user-facing error; the CLI prints the message without a traceback."""

    exit_code = 2  # bad input, a missing engine, a lock that does not hold


class DefinitionError(MatrixError):
    """The matrix file (or a cell selection) is invalid; the message names file:line."""


class SourceError(MatrixError):
    """An OpenSSL source tarball could not be fetched or verified."""


class BaseImageError(MatrixError):
    """The base image can neither be found, pulled nor made here."""


class EngineError(MatrixError):
    """No engine answers, or it went away."""


class LockMismatch(MatrixError):
    """--locked, and something would differ from the lock: the run stops."""


class BuildFailed(MatrixError):
    """A `docker build` failed; the cell records it (BUILD_FAILED) with the log."""

    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(message)
        self.log_path = log_path


class BuildTimedOut(BuildFailed):
    """A `docker build` ran past --build-timeout and was abandoned; the cell is a TIMEOUT."""


class NothingMeasured(MatrixError):
    """An empty selection, or a run in which no cell was measured (all skipped, none built):
    a CI job must not pass on it unless told so (--allow-empty)."""

    exit_code = 1


class Abandoned(KeyboardInterrupt):
    """A second Ctrl-C: the cells in progress were left unfinished, and their worker threads
    still run. Finished cells are on disk; the process must end without waiting for them."""
