"""Sessions: `nox -s matrix` runs the matrix (arguments after -- go to `fips-matrix run`),
`nox -s tests` runs the test suite, `nox -s lint` runs ruff and mypy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # a warm rerun should not reinstall anything

PYTHON = None  # the interpreter that runs nox
PYPROJECT = Path(__file__).parent / "pyproject.toml"


def install(session: nox.Session, *extra: str) -> None:
    """The package, editable (so code changes need no reinstall), and `extra` packages; pip
    runs only when the venv has not got them from this very pyproject.toml (a stamp in the
    venv says what was installed), so a warm rerun installs nothing."""
    spec = [*extra]
    wanted = hashlib.sha256(PYPROJECT.read_bytes() + repr(spec).encode()).hexdigest()
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location) / f"fips-matrix-{session.name}.installed" if location else None
    if stamp is not None and stamp.is_file() and stamp.read_text() == wanted:
        return
    session.install("-e", *spec)
    if stamp is not None:
        stamp.write_text(wanted)


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    install(session, ".")
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
    install(session, ".")
    session.run("fips-matrix", "run", "--only", cell_id, "--results", results, *rest)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Cold, warm and side-by-side figures (removes the tool's images first), and the test
    suite's time on a fresh engine."""
    install(session, ".")
    session.run("fips-matrix", "bench", *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session, ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    install(session, ".[test,lint]", "nox")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "matrix", "noxfile.py")
