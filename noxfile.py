"""Sessions: `nox -s matrix` runs the matrix (arguments after -- go to `fips-matrix run`),
`nox -s tests` runs the test suite, `nox -s lint` runs ruff and mypy."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # a warm rerun should not reinstall anything

PYTHON = None  # the interpreter that runs nox
PYPROJECT = Path(__file__).parent / "pyproject.toml"

# What the tests need beyond Python: a command that shows it is there, and the Debian package
# that brings it. The README's install line and .ci/run install exactly these packages (a test
# keeps the three in step); the end-to-end ones are not needed for `-m "not e2e"`.
UNIT_TOOLS = {
    "gcc": "gcc",  # the probe's trace harness, the batch driver, the ELF tests
    "/usr/include/stdio.h": "libc6-dev",
    "musl-gcc": "musl-tools",  # the same with musl
    "readelf": "binutils",  # readelf, nm, strip: ELF tests check against them
    "gpg": "gnupg",  # signature tests sign
    "gpgv": "gpgv",
    "busybox": "busybox",  # the build script is checked under it too
}
E2E_TOOLS = {
    "dockerd": "docker.io",  # the engine (and the docker CLI the reproducer test runs)
    "debootstrap": "debootstrap",  # base images where no registry is reachable
    "chromium": "chromium",  # the HTML report's end-to-end test
}


def missing_tools(e2e: bool) -> list[str]:
    """The Debian packages whose commands are not here (sbin included: dockerd lives there)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    tools = {**UNIT_TOOLS, **(E2E_TOOLS if e2e else {})}
    gone = [
        package
        for tool, package in tools.items()
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool, path=path))
    ]
    return list(dict.fromkeys(gone))


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
        # written in the install step, so that `-R`/`--no-install` (where nox skips the
        # install above) writes no stamp for packages it never installed
        session.run_install(
            "python",
            "-c",
            "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
            str(stamp),
            wanted,
            silent=True,
        )


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    """The matrix (default: the built-in one); arguments after -- go to `fips-matrix run`."""
    install(session, ".")
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
    install(session, ".")
    session.run("fips-matrix", "run", *only, "--results", f"results/cells/{name}", *rest)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Cold, warm and side-by-side figures (removes the tool's images first), and the test
    suite's time on a fresh engine."""
    install(session, ".")
    session.run("fips-matrix", "bench", *session.posargs)


@nox.session(python=PYTHON)
def readme(session: nox.Session) -> None:
    """The generated sections, made from the reference run: the README's "What it measured
    here" and docs/speed.md's figures."""
    install(session, ".")
    files = [arg for name in ("README.md", "docs/speed.md") for arg in ("--readme", name)]
    session.run("fips-matrix", "report", "results/reference", *files)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite, unit and end to end; `-- -m "not e2e"` for the fast unit tests only."""
    unit_only = any("not e2e" in arg for arg in session.posargs)
    gone = missing_tools(e2e=not unit_only)
    if gone:
        session.error(
            f"the tests need {', '.join(gone)}, not installed here; as root: "
            f"apt-get install {' '.join(gone)}"
        )
    install(session, ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict."""
    install(session, ".[test,lint]", "nox")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "matrix", "noxfile.py")
