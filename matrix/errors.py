"""Errors shown to the user: each message says what went wrong and what to do."""


class MatrixError(Exception):
    """Base of every user-facing error; the CLI prints the message without a traceback."""


class DefinitionError(MatrixError):
    """The matrix file (or a cell selection) is invalid; the message names file:line."""


class SourceError(MatrixError):
    """An OpenSSL source tarball could not be fetched or verified."""
