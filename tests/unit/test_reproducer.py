"""The reproducer (matrix/report/reproducer.py, `fips-matrix repro`): one C file per scenario
made of just the sections it needs, compiled here against the project's own declarations of
OpenSSL's API (probes/portable) with each C compiler, warnings as errors; a Dockerfile with
the matrix's pinned source and the cell's options; a README with the two docker commands and
what the recorded result says to expect. The real build and run: tests/e2e/test_repro_e2e.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.made_results import measured

from matrix import assets, cli
from matrix.acquire.mirror import debian_mirror
from matrix.errors import MatrixError
from matrix.model.cells import Cell, expand
from matrix.model.definition import load_definition
from matrix.model.vocabulary import KNOWN_SCENARIOS
from matrix.report import reproducer
from matrix.results.store import ResultsDir

CELLS = {c.id: c for c in expand(load_definition(assets.DEFAULT_MATRIX))}
CRASH = "debian-12/4.0.2/no-pinshared"
PORTABLE = assets.PROBES_DIR / "portable"


def cell(cell_id: str) -> Cell:
    return CELLS[cell_id]


@pytest.mark.parametrize("scenario", KNOWN_SCENARIOS)
def test_each_scenario_has_one_small_c_file_of_what_it_needs(scenario: str) -> None:
    source = reproducer.c_source(scenario)
    assert source.count("int main(") == 1
    # the controls of the worker scenarios run their partners' workers, with no failure
    assert ("worker_start(" in source) == (
        scenario.removesuffix("-no-failure") in ("worker-thread", "worker-no-stop", "thread-pool")
    )
    assert ("static void fail(" in source) == ("fail(" in source.split("int main(")[1])
    assert "@@" not in source and len(source.splitlines()) < 400


@pytest.mark.parametrize("compiler", ["gcc", "musl-gcc"])
def test_every_c_file_compiles_without_a_warning(compiler: str, tmp_path: Path) -> None:
    assert shutil.which(compiler), f"{compiler} is needed (.ci/run installs it)"
    for scenario in KNOWN_SCENARIOS:
        path = tmp_path / f"{scenario}.c"
        path.write_text(reproducer.c_source(scenario))
        done = subprocess.run(
            [compiler, "-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{PORTABLE}", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and done.stderr == "", f"{scenario}: {done.stderr}"


def test_the_dockerfile_pins_the_source_and_builds_as_the_cell() -> None:
    c = cell(CRASH)
    text = reproducer.dockerfile(c, "worker-thread")
    assert "ARG BASE=debian:bookworm\nFROM ${BASE}\n" in text
    assert f"ARG OPENSSL_URL={c.source.urls[0]}\n" in text
    assert f"ARG OPENSSL_SHA256={c.source.sha256}\n" in text
    assert 'echo "$OPENSSL_SHA256  openssl.tar.gz" | sha256sum -c -' in text
    assert 'ARG CONFIGURE_OPTIONS="no-pinshared"' in text
    assert "./Configure enable-fips shared no-afalgeng --prefix=/repro --libdir=lib" in text
    assert "make test" not in text and "install_docs" not in text
    assert 'ENV CC="gcc"' in text and text.rstrip().endswith('CMD ["/repro/repro"]')
    deferred = reproducer.dockerfile(cell("debian-12/4.0.2/no-pinshared-deferred"), "load-kat")
    assert "'defer-tests = 1'" in deferred  # the variant's module lines, in both configs
    musl = reproducer.dockerfile(cell("musl-debian-12/3.0.20/default"), "worker-no-stop")
    assert 'ENV CC="musl-gcc -idirafter /opt/musl-kernel-headers"' in musl
    assert 'ARG CONFIGURE_OPTIONS=""' in musl
    # this machine's mirror is its configuration, never written into a reproducer
    host = urlsplit(debian_mirror() or "http://mirror.invalid/debian").hostname or "?"
    for written in (text, deferred, musl):
        assert host not in written and "<debian-mirror>" not in written


def test_cells_it_cannot_build_are_refused_with_the_reason() -> None:
    with pytest.raises(MatrixError, match="compiled cells only"):
        reproducer.dockerfile(cell("debian-13-distro/distro/packaged"), "ondemand-kat")
    with pytest.raises(MatrixError, match="compiled cells only"):
        reproducer.dockerfile(cell("debian-12/4.0.2/fips-3.0.20"), "ondemand-kat")
    with pytest.raises(MatrixError, match="apt-based platforms"):
        reproducer.dockerfile(cell("alpine-3.23/3.0.20/default"), "ondemand-kat")
    with pytest.raises(MatrixError, match="no reproducer for scenario"):
        reproducer.c_source("nope")


def test_the_readme_says_what_the_recorded_result_was() -> None:
    c = cell(CRASH)
    died = measured(CRASH, "unpinned", died=("worker-thread",))
    s = next(s for s in died.scenarios if s.scenario == "worker-thread")
    name = reproducer.image_name(c, "worker-thread")
    text = reproducer.readme(c, "worker-thread", (died, s), name)
    assert re.search(rf"^docker build -t {re.escape(name)} \.$", text, re.M)
    assert re.search(rf"^docker run --rm {re.escape(name)};", text, re.M)
    assert "**DIED_AFTER_RELOAD**" in text
    assert "ends with **exit status 139 (killed by signal 11)**" in text
    assert "`fips.so lines in /proc/self/maps:` shows 0" in text
    assert "loads, passes its self-test and digests" in text
    assert all(f"- {e}" in text for e in s.evidence)
    unknown = reproducer.readme(c, "worker-thread", None, name)
    assert "No recorded result of this cell was found" in unknown
    # a death that is a rate is said as one: the reproducer shows it in some runs only
    s.facts["fate"] = {"died": 2, "runs": 5, "ends": {"SIGSEGV": 2}}
    text = reproducer.readme(c, "worker-thread", (died, s), name)
    assert "(killed by signal 11)** in 2 of 5 runs of the probe (run it a few times)" in text


def test_the_command_writes_the_directory(tmp_path: Path) -> None:
    results = tmp_path / "results"
    out = ResultsDir(results)
    out.prepare()
    out.write_cell(measured(CRASH, "unpinned", died=("worker-thread",)))
    target = tmp_path / "repro"
    args = [CRASH, "worker-thread", "--output", str(target), "--results", str(results)]
    assert cli.main(["repro", *args]) == 0
    assert sorted(p.name for p in target.iterdir()) == ["Dockerfile", "README.md", "repro.c"]
    assert (target / "repro.c").read_text() == reproducer.c_source("worker-thread")
    assert "exit status 139" in (target / "README.md").read_text()
    assert cli.main(["repro", CRASH, "nope", "--output", str(tmp_path / "x")]) != 0
    assert (
        cli.main(["repro", "no/such/cell", "worker-thread", "--output", str(tmp_path / "x")]) != 0
    )
    assert not (tmp_path / "x").exists()
