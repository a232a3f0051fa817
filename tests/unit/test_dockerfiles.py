"""The Dockerfile contract: the shipped Dockerfiles pass the product's own check
(matrix/model/contract.py, which `plan` and `run` apply to every Dockerfile a matrix names),
and each rule really fails on a broken copy, at its line. The shared build script gets a
syntax check and its usage error under every POSIX shell found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from matrix import cli
from matrix.assets import DEFAULT_MATRIX
from matrix.errors import DefinitionError
from matrix.model.contract import (
    FULL,
    GENERIC,
    PACKAGE_STAGES,
    SCRIPT_COPY,
    Problem,
    problems,
)
from matrix.model.definition import load_definition
from matrix.model.dockerfile import Instruction, Stage, normalised, parse
from matrix.model.load import check_dockerfiles

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "dockerfiles"
BUILD_SCRIPT = DOCKERFILES / "fips-matrix-build.sh"

# Built and probed on this project's machine: the compile and link stages of every other
# platform Dockerfile must be the same instructions as this one's.
REFERENCE = "debian.Dockerfile"

# Dockerfiles that are not "build OpenSSL from the verified tarball" and so keep only the
# rules every Dockerfile keeps (GENERIC), each with the reason.
OTHER_KINDS = {
    "debian-distro.Dockerfile": "the distribution's own libcrypto and fips.so: nothing is built",
    "skew.Dockerfile": "puts together two cell images that exist already: nothing is built",
    "plain-bench.Dockerfile": "the benchmark's plain way, one Dockerfile per cell: not a platform",
    "portable-probe.Dockerfile": "builds the portable probe for any image: no OpenSSL at all",
}
# The shipped Dockerfiles that allow a package manager in fewer stages than a user's may.
PACKAGE_MANAGER_STAGES: dict[str, set[str]] = {
    "debian-distro.Dockerfile": {"toolchain", "runtime"},  # the runtime needs the package
    "plain-bench.Dockerfile": {"runtime"},  # one stage: the plain way builds where it runs
    "portable-probe.Dockerfile": {"toolchain"},  # the compilers; nothing else installs
}


def problems_of(directory: Path, name: str) -> list[Problem]:
    """The product's check of one Dockerfile of `directory`, as the rules of its kind."""
    return problems(
        directory / name,
        GENERIC if name in OTHER_KINDS else FULL,
        directory / REFERENCE,
        PACKAGE_MANAGER_STAGES.get(name, PACKAGE_STAGES),
        older=False,  # the shipped ones keep the current contract
    )


def all_problems(directory: Path) -> list[Problem]:
    return [
        p
        for path in sorted(directory.glob("*.Dockerfile"))
        for p in problems_of(directory, path.name)
    ]


# ---------- the repository's Dockerfiles ----------

ALL = sorted(p.name for p in DOCKERFILES.glob("*.Dockerfile"))
BUILDING = [n for n in ALL if n not in OTHER_KINDS]


def test_the_reference_and_the_exceptions_exist() -> None:
    assert REFERENCE in BUILDING
    assert set(OTHER_KINDS) <= set(ALL), "an exception names a Dockerfile that is gone"


@pytest.mark.parametrize("name", ALL)
def test_a_shipped_dockerfile_keeps_its_rules(name: str) -> None:
    assert problems_of(DOCKERFILES, name) == []


def test_the_default_matrix_passes_the_check_plan_and_run_make() -> None:
    check_dockerfiles(load_definition(DEFAULT_MATRIX))


def dnf_packages(name: str) -> list[str]:
    toolchain = parse(DOCKERFILES / name).stage("toolchain")
    assert toolchain is not None
    for i in toolchain.find("RUN", r"\bdnf install\b"):
        words = toolchain.instructions[i].args.split("&&")[0].split()
        return sorted(w for w in words[2:] if not w.startswith("-"))
    return []


def test_rpm_platforms_install_one_package_list() -> None:
    """fedora, rhel and amazonlinux name the same perl modules (the comment in
    fedora.Dockerfile says how the list was found): they must not drift apart."""
    lists = {n: dnf_packages(n) for n in BUILDING if dnf_packages(n)}
    assert len(lists) >= 2, lists
    first = next(iter(lists.values()))
    assert all(packages == first for packages in lists.values()), lists
    assert "'perl(FindBin)'" in first and "'perl(IPC::Cmd)'" in first


# ---------- the parser, and the rules on broken copies ----------


def test_parser_joins_continuations_and_drops_comments(tmp_path: Path) -> None:
    path = tmp_path / "x.Dockerfile"
    path.write_text(
        "# header\nARG BASE_IMAGE=debian:bookworm\n\nfrom ${BASE_IMAGE} as ToolChain\n"
        "RUN a \\\n# a comment inside the continuation\n    && b \\\n    && c\n"
        'ENTRYPOINT ["/x"]\n'
    )
    dockerfile = parse(path)
    assert [i.text() for i in dockerfile.preamble] == ["ARG BASE_IMAGE=debian:bookworm"]
    assert [(s.name, s.base, s.line) for s in dockerfile.stages] == [
        ("toolchain", "${BASE_IMAGE}", 4)
    ]
    run, entrypoint = dockerfile.stages[0].instructions
    assert (run.line, run.text()) == (5, "RUN a && b && c")
    assert json.loads(entrypoint.args) == ["/x"]


def test_install_line_normalisation_keeps_only_root_and_what_follows() -> None:
    stage = Stage(
        "link",
        "compile",
        (
            Instruction(1, "RUN", "ROOT=/rootfs fips-matrix-build.sh install && cp a b"),
            Instruction(2, "RUN", "fips-matrix-build.sh install"),
            Instruction(3, "RUN", "fips-matrix-build.sh install --other"),
        ),
    )
    assert normalised(stage) == [
        "RUN fips-matrix-build.sh install",
        "RUN fips-matrix-build.sh install",
        "RUN fips-matrix-build.sh install --other",
    ]


def broken_copy(tmp_path: Path, name: str, edit: Callable[[str], str]) -> Path:
    directory = tmp_path / "dockerfiles"
    directory.mkdir()
    for path in DOCKERFILES.glob("*.Dockerfile"):
        shutil.copy(path, directory / path.name)
    original = (directory / name).read_text(encoding="utf-8")
    edited = edit(original)
    assert edited != original, "the edit changed nothing"
    (directory / name).write_text(edited, encoding="utf-8")
    return directory


def drop_line(line: str) -> Callable[[str], str]:
    return lambda text: text.replace(line + "\n", "", 1)


def replace(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new, 1)


def move_arg_after_run(text: str) -> str:
    text = text.replace('ARG LINK_OPTIONS=""\n', "", 1)
    return text.replace(
        "RUN fips-matrix-build.sh link\n", 'RUN fips-matrix-build.sh link\nARG LINK_OPTIONS=""\n', 1
    )


BROKEN = {
    "no ARG LINK_OPTIONS": (drop_line('ARG LINK_OPTIONS=""'), "does not declare ARG LINK_OPTIONS"),
    "ARG after its use": (move_arg_after_run, "after the build step uses it"),
    "no ARG MAKE_JOBS": (drop_line("ARG MAKE_JOBS=2"), "does not declare ARG MAKE_JOBS"),
    "no BASE_IMAGE default": (
        lambda t: re.sub(r"(?m)^ARG BASE_IMAGE=.*$", "ARG BASE_IMAGE", t, count=1),
        "ARG BASE_IMAGE has no default",
    ),
    "tarball after compile": (
        lambda t: t.replace(
            "COPY openssl.tar.gz /src/\nRUN fips-matrix-build.sh compile\n",
            "RUN fips-matrix-build.sh compile\nCOPY openssl.tar.gz /src/\n",
        ),
        "does not COPY openssl.tar.gz before compiling",
    ),
    "script not copied": (drop_line(SCRIPT_COPY), "does not `COPY fips-matrix-build.sh"),
    "extra env": (replace(SCRIPT_COPY, "ENV CFLAGS=-O0\n" + SCRIPT_COPY), "may set only"),
    "toolchain depends on the cell": (
        replace(SCRIPT_COPY, "ARG OPENSSL_VERSION\n" + SCRIPT_COPY),
        "it may declare no ARG",
    ),
    "probe before compile": (
        lambda t: t.replace(
            "RUN fips-matrix-build.sh compile\nCOPY probes/ /src/probes/\n",
            "COPY probes/ /src/probes/\nRUN fips-matrix-build.sh compile\n",
        ),
        "must compile, then COPY probes/",
    ),
    "no probe step": (
        drop_line("RUN fips-matrix-build.sh probe"),
        "the compile stage never builds the probe",
    ),
    "probes in the link stage (the old way)": (
        lambda t: t.replace(
            "RUN fips-matrix-build.sh link\n",
            "RUN fips-matrix-build.sh link\nCOPY probes/ /src/probes/\n",
        ),
        "the link stage copies probes/",
    ),
    "install before relink": (
        lambda t: t.replace(
            "RUN fips-matrix-build.sh link\nRUN fips-matrix-build.sh install\n",
            "RUN fips-matrix-build.sh install\nRUN fips-matrix-build.sh link\n",
        ),
        "must relink, then install",
    ),
    "changed compile step": (
        replace("RUN fips-matrix-build.sh compile", "RUN fips-matrix-build.sh compile && true"),
        "never runs fips-matrix-build.sh compile",
    ),
    "compile stage drifts": (
        replace("ARG MAKE_JOBS=2", "ARG MAKE_JOBS=4"),
        "stage 'compile' differs from debian.Dockerfile's",
    ),
    "runtime not last": (
        lambda t: t + "\nFROM runtime AS extra\n",
        "the last stage is not named 'runtime'",
    ),
    "stage renamed": (replace("AS link", "AS relink"), "not ['toolchain', 'compile', 'link'"),
    "entrypoint shell form": (
        replace(
            'ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]',
            "ENTRYPOINT /opt/fips-matrix/bin/fips_probe",
        ),
        "ENTRYPOINT in shell form",
    ),
    "wrong entrypoint": (
        replace('["/opt/fips-matrix/bin/fips_probe"]', '["/opt/fips-matrix/bin/fips_probe", "-v"]'),
        "runtime ENTRYPOINT is",
    ),
    "curl": (
        replace("RUN fips-matrix-build.sh link", "RUN curl -fsSLO x && fips-matrix-build.sh link"),
        "curl in RUN",
    ),
    "wget in toolchain": (
        replace(SCRIPT_COPY, "RUN wget -q x\n" + SCRIPT_COPY),
        "wget in RUN",
    ),
    "ADD url": (
        replace(SCRIPT_COPY, "ADD https://example.test/openssl.tar.gz /src/\n" + SCRIPT_COPY),
        "ADD from a URL",
    ),
    "package manager in link": (
        replace(
            "RUN fips-matrix-build.sh link",
            "RUN apt-get update && apt-get install -y x && fips-matrix-build.sh link",
        ),
        "apt-get in stage 'link'",
    ),
    "image named in FROM": (
        replace("FROM ${BASE_IMAGE} AS runtime", "FROM debian:bookworm AS runtime"),
        "pulled behind the matrix's back",
    ),
    "COPY from an image": (
        replace(
            "COPY --from=link /opt/fips-matrix /opt/fips-matrix",
            "COPY --from=busybox:latest /bin/busybox /bin/busybox\n"
            "COPY --from=link /opt/fips-matrix /opt/fips-matrix",
        ),
        "is not an earlier stage",
    ),
    "RUN --mount": (
        replace(
            "RUN fips-matrix-build.sh link",
            "RUN --mount=type=cache,target=/x fips-matrix-build.sh link",
        ),
        "needs BuildKit",
    ),
    "heredoc": (
        replace(SCRIPT_COPY, "RUN <<EOF\necho hi\nEOF\n" + SCRIPT_COPY),
        "heredoc in RUN needs BuildKit",
    ),
}


# Where the rule is broken on one line, that line is the one named.
LINE_SHOWS = {
    "ARG after its use": 'ARG LINK_OPTIONS=""',
    "extra env": "ENV CFLAGS=-O0",
    "toolchain depends on the cell": "ARG OPENSSL_VERSION",
    "curl": "RUN curl",
    "wget in toolchain": "RUN wget",
    "ADD url": "ADD https://",
    "package manager in link": "apt-get update",
    "image named in FROM": "FROM debian:bookworm AS runtime",
    "COPY from an image": "COPY --from=busybox",
    "RUN --mount": "RUN --mount",
    "heredoc": "RUN <<EOF",
    "entrypoint shell form": "ENTRYPOINT /opt",
    "stage renamed": "FROM ${BASE_IMAGE} AS toolchain",
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_dockerfile_is_named_at_its_line(tmp_path: Path, broken: str) -> None:
    edit, expected = BROKEN[broken]
    target = "ubuntu.Dockerfile"
    directory = broken_copy(tmp_path, target, edit)
    found = all_problems(directory)
    ours = [p for p in found if p.path.name == target and expected in p.message]
    assert ours, found
    assert not [p for p in found if p.path.name != target], found
    lines = (directory / target).read_text(encoding="utf-8").splitlines()
    for problem in ours:
        assert str(problem).startswith(f"{directory / target}:{problem.line}: ")
        assert 1 <= problem.line <= len(lines)
        if broken in LINE_SHOWS:
            assert LINE_SHOWS[broken] in lines[problem.line - 1], (problem, lines)


def test_the_copies_are_clean_before_any_edit(tmp_path: Path) -> None:
    directory = broken_copy(tmp_path, "ubuntu.Dockerfile", lambda t: t + "\n")
    assert all_problems(directory) == []


def test_a_broken_reference_shows_in_every_platform(tmp_path: Path) -> None:
    directory = broken_copy(tmp_path, REFERENCE, drop_line('ARG LINK_OPTIONS=""'))
    found = all_problems(directory)
    assert any(p.path.name == REFERENCE and "ARG LINK_OPTIONS" in p.message for p in found)
    for name in BUILDING:
        if name != REFERENCE:
            assert any(p.path.name == name and "differs from" in p.message for p in found), name


# ---------- the shared build script ----------


def shells() -> list[Any]:
    found = []
    for command in (["sh"], ["dash"], ["bash", "--posix"], ["busybox", "sh"]):
        found.append(
            pytest.param(
                command,
                id=command[0],
                marks=pytest.mark.skipif(
                    shutil.which(command[0]) is None, reason=f"{command[0]} not installed"
                ),
            )
        )
    return found


def test_build_script_is_executable() -> None:
    """The Dockerfiles run it by name from /usr/local/bin, with the mode the context gives."""
    assert os.access(BUILD_SCRIPT, os.X_OK)
    assert BUILD_SCRIPT.read_text(encoding="utf-8").startswith("#!/bin/sh\n")


@pytest.mark.parametrize("shell", shells())
def test_build_script_parses(shell: list[str]) -> None:
    result = subprocess.run(
        [*shell, "-n", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("shell", shells())
def test_build_script_refuses_an_unknown_step(shell: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [*shell, str(BUILD_SCRIPT), "frobnicate"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: fips-matrix-build.sh compile|probe|link|install" in result.stderr


def first_run(name: str, stage: str) -> str:
    found = parse(DOCKERFILES / name).stage(stage)
    assert found is not None, (name, stage)
    return found.instructions[found.find("RUN")[0]].text()


@pytest.mark.parametrize(
    ("name", "stage", "reference_stage"),
    [
        ("musl.Dockerfile", "toolchain", "toolchain"),
        ("debian-distro.Dockerfile", "toolchain", "toolchain"),
        ("debian-distro.Dockerfile", "runtime", "runtime-base"),
    ],
)
def test_platforms_on_one_base_share_their_first_package_layer(
    name: str, stage: str, reference_stage: str
) -> None:
    """The engine makes a layer once for every build with the same instruction on the same
    image: these stages start with debian.Dockerfile's own step, word for word, so that a
    base image shared by two platforms gets the compiler (or Python) installed once."""
    assert first_run(name, stage) == first_run(REFERENCE, reference_stage)


# ---------- the check as plan and run make it ----------

FIXTURE_MATRIX = REPO / "tests" / "unit" / "fixtures" / "two-platforms.toml"


def project_with(tmp_path: Path, edit: Callable[[str], str]) -> tuple[Path, Path]:
    """A matrix file of a user's, whose own dockerfiles/ holds debian.Dockerfile edited."""
    project = tmp_path / "project"
    (project / "dockerfiles").mkdir(parents=True)
    matrix = project / "m.toml"
    shutil.copy(FIXTURE_MATRIX, matrix)
    dockerfile = project / "dockerfiles" / REFERENCE
    dockerfile.write_text(edit((DOCKERFILES / REFERENCE).read_text(encoding="utf-8")))
    return matrix, dockerfile


@pytest.mark.parametrize("command", [["plan"], ["run", "--list"], ["run"]])
def test_plan_and_run_refuse_a_broken_dockerfile_before_anything_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # never reached
    matrix, dockerfile = project_with(
        tmp_path,
        replace("RUN fips-matrix-build.sh link", "RUN curl -fsSLO x && fips-matrix-build.sh link"),
    )
    line = next(
        n
        for n, text in enumerate(dockerfile.read_text().splitlines(), 1)
        if text.startswith("RUN curl")
    )
    results = tmp_path / "results"
    extra = ["--results", str(results)] if command[0] == "run" else []
    assert cli.main([*command, "--matrix", str(matrix), *extra]) == DefinitionError.exit_code
    out = capsys.readouterr().out
    assert f"{dockerfile}:{line}: curl in RUN (nothing is downloaded)" in out
    assert "platform 'debian-12'" in out and "Adding a platform" in out
    assert "no Docker engine answers" not in out
    assert not results.exists()


def test_plan_takes_a_users_dockerfile_that_keeps_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix, _ = project_with(tmp_path, lambda text: text)
    assert cli.main(["plan", "--matrix", str(matrix)]) == 0
    assert "debian-12/3.0.20/default" in capsys.readouterr().out


def older_style(text: str) -> str:
    """debian.Dockerfile as written before the probe step: probes/ copied into the link
    stage and built by the install step (as the end-to-end test of a new platform has it)."""
    text = text.replace("COPY probes/ /src/probes/\nRUN fips-matrix-build.sh probe\n", "")
    return text.replace(
        "RUN fips-matrix-build.sh link\n",
        "RUN fips-matrix-build.sh link\nCOPY probes/ /src/probes/\n",
    )


def test_a_users_dockerfile_of_the_older_contract_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix, dockerfile = project_with(tmp_path, older_style)
    assert cli.main(["plan", "--matrix", str(matrix)]) == 0
    shipped_rules = problems(dockerfile, FULL, DOCKERFILES / REFERENCE, older=False)
    assert {p.message for p in shipped_rules} >= {
        "the compile stage never builds the probe",
        "the link stage copies probes/: each relink would rebuild them",
    }
