"""Sessions: `nox -s matrix` runs the matrix (arguments after -- go to `fips-matrix run`),
`nox -s tests` runs the test suite, `nox -s lint` runs ruff and mypy."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # a warm rerun should not reinstall anything

PYTHON = None  # the interpreter that runs nox


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("fips-matrix", "run", *session.posargs)


@nox.session(python=PYTHON)
def cell(session: nox.Session) -> None:
    """One cell (or a pattern, e.g. a platform's `debian-12/*`), as a CI job of a fanned-out
    matrix runs it: `nox -s cell -- CELL_ID`; its results go to results/cells/<cell id with /
    as __, * as ALL> for `fips-matrix merge`."""
    if not session.posargs:
        session.error("usage: nox -s cell -- PLATFORM/VERSION/VARIANT [fips-matrix run options]")
    cell_id, *rest = session.posargs
    results = f"results/cells/{cell_id.replace('/', '__').replace('*', 'ALL')}"
    session.install("-e", ".")
    session.run("fips-matrix", "run", "--only", cell_id, "--results", results, *rest)


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
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("-e", ".[test,lint]", "nox")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "matrix", "noxfile.py")
