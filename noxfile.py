"""Sessions: `nox -s matrix` runs the matrix (arguments after -- go to `fips-matrix run`),
`nox -s tests` runs the test suite, `nox -s lint` runs ruff and mypy."""

from __future__ import annotations

import hashlib

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # a warm rerun should not reinstall anything

PYTHON = None  # the interpreter that runs nox


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    """The matrix (default: the built-in one); arguments after -- go to `fips-matrix run`."""
    session.install("-e", ".")
    session.run("fips-matrix", "run", *session.posargs)


@nox.session(python=PYTHON)
def cell(session: nox.Session) -> None:
    """One CI job of a fanned-out matrix: `nox -s cell -- CELLS [run options]`.

    CELLS is a cell id or pattern (a platform's `debian-12/*`), or several separated by
    spaces, as `fips-matrix plan --format github` gives them; the results go to
    results/cells/<CELLS with / as __, * as ALL, spaces as +> for `fips-matrix merge`."""
    if not session.posargs:
        session.error("usage: nox -s cell -- 'PLATFORM/VERSION/VARIANT ...' [run options]")
    cells, *rest = session.posargs
    patterns = cells.split()
    name = "+".join(patterns).replace("/", "__").replace("*", "ALL")
    if len(name) > 120:  # a file name has 255 bytes at most
        name = f"{name[:100]}+{hashlib.sha256(cells.encode()).hexdigest()[:12]}"
    only = [arg for pattern in patterns for arg in ("--only", pattern)]
    session.install("-e", ".")
    session.run("fips-matrix", "run", *only, "--results", f"results/cells/{name}", *rest)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Cold, warm and side-by-side figures (removes the tool's images first)."""
    session.install("-e", ".")
    session.run("fips-matrix", "bench", *session.posargs)


@nox.session(python=PYTHON)
def readme(session: nox.Session) -> None:
    """The README's "What it measured here" section, made from the reference run."""
    session.install("-e", ".")
    session.run("fips-matrix", "report", "results/reference", "--readme", "README.md")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite, unit and end to end; `-- -m "not e2e"` for the fast unit tests only."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict."""
    session.install("-e", ".[test,lint]", "nox")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "matrix", "noxfile.py")
