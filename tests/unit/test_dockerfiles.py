"""The platform Dockerfiles keep the contract written at the top of debian.Dockerfile.

No Docker engine: every dockerfiles/*.Dockerfile is parsed (continuation lines joined,
comments dropped) and checked. The checks take a directory, so the tests at the end run
them on broken copies in tmp_path to show that each rule really fails. The shared build
script gets a syntax check and its usage error under every POSIX shell found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "dockerfiles"
BUILD_SCRIPT = DOCKERFILES / "fips-matrix-build.sh"

# Built and probed on this project's machine: the compile and link stages of every other
# platform Dockerfile must be the same instructions as this one's.
REFERENCE = "debian.Dockerfile"

# Dockerfiles that are not "build OpenSSL from the verified tarball" and so keep only the
# rules every Dockerfile keeps (see generic_problems), each with the reason.
OTHER_KINDS = {
    "debian-distro.Dockerfile": "the distribution's own libcrypto and fips.so: nothing is built",
    "skew.Dockerfile": "puts together two cell images that exist already: nothing is built",
    "plain-bench.Dockerfile": "the benchmark's plain way, one Dockerfile per cell: not a platform",
    "portable-probe.Dockerfile": "builds the portable probe for any image: no OpenSSL at all",
}
# The stages in which a distribution's package manager may run (the toolchain, and the
# runtime for the second witness's Python and cffi): the only network access a
# build is allowed (sources come verified through the build context, never downloaded).
PACKAGE_MANAGER_STAGES: dict[str, set[str]] = {
    "debian-distro.Dockerfile": {"toolchain", "runtime"},  # the runtime needs the package
    "plain-bench.Dockerfile": {"runtime"},  # one stage: the plain way builds where it runs
    "portable-probe.Dockerfile": {"toolchain"},  # the compilers; nothing else installs
}

STAGES = ["toolchain", "compile", "link", "runtime"]
# An optional stage for what the runtime needs beside the cell's files (Python for the twin):
# like the toolchain it comes before compile, so the runner builds it ahead of the cells.
OPTIONAL_STAGE = ("runtime-base", 1)  # its name, and its index when present
ENTRYPOINT = ["/opt/fips-matrix/bin/fips_probe"]
BUILD_ARGS_OF = {
    "compile": ["OPENSSL_VERSION", "CONFIGURE_OPTIONS", "MAKE_JOBS"],
    "link": ["LINK_OPTIONS"],
}
SCRIPT_COPY = "COPY fips-matrix-build.sh /usr/local/bin/"
TOOLCHAIN_ENV = {"CC"}  # the only environment the toolchain stage may give the build

PACKAGE_MANAGERS = re.compile(
    r"(?<![\w.-])(apt-get|apt|aptitude|apk|dnf|microdnf|yum|zypper|pacman)(?![\w.-])"
)
NETWORK_TOOLS = re.compile(
    r"(?<![\w./-])(curl|wget|git|pip|pip3|pipx|cpan|cpanm|npm|gem|aria2c|rsync|scp)(?![\w.-])"
)
URL = re.compile(r"(?i)\b(?:https?|ftp|git|ssh)://|\bgit@")
KEYWORDS = re.compile(
    r"ADD|ARG|CMD|COPY|ENTRYPOINT|ENV|EXPOSE|FROM|HEALTHCHECK|LABEL|MAINTAINER|ONBUILD|RUN"
    r"|SHELL|STOPSIGNAL|USER|VOLUME|WORKDIR"
)
HEREDOC = re.compile(r"<<-?\s*['\"]?[A-Za-z_]\w*")
INSTALL_LINE = re.compile(r"^(?:ROOT=\S+\s+)?(fips-matrix-build\.sh install)(?:\s*&&.*)?$")


# ---------- a small Dockerfile parser ----------


@dataclass(frozen=True)
class Instruction:
    line: int  # its first physical line
    keyword: str  # upper case
    args: str  # continuation lines joined with single spaces

    def text(self) -> str:
        """The instruction with its whitespace collapsed, for comparisons."""
        return " ".join([self.keyword, *self.args.split()])


@dataclass(frozen=True)
class Stage:
    name: str  # lower case, as Docker compares stage names
    base: str
    instructions: tuple[Instruction, ...]

    def find(self, keyword: str, pattern: str = "") -> list[int]:
        """Indexes of the instructions with that keyword whose arguments match pattern."""
        return [
            i
            for i, ins in enumerate(self.instructions)
            if ins.keyword == keyword and re.search(pattern, " ".join(ins.args.split()))
        ]


@dataclass(frozen=True)
class Dockerfile:
    name: str
    preamble: tuple[Instruction, ...]  # before the first FROM
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: backslash continuations joined, comment and blank lines dropped
    (Docker drops them inside a continuation too)."""
    result: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            logical = " ".join(p for p in parts if p)
            keyword, _, args = logical.partition(" ")
            result.append(Instruction(start, keyword.upper(), args.strip()))
            parts = []
    if parts:
        raise ValueError(f"line {start}: the file ends inside a continued instruction")
    return result


def parse(path: Path) -> Dockerfile:
    preamble: list[Instruction] = []
    heads: list[tuple[str, str]] = []
    bodies: list[list[Instruction]] = []
    for ins in instructions(path.read_text(encoding="utf-8")):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            heads.append((name.lower(), words[0] if words else ""))
            bodies.append([])
        elif bodies:
            bodies[-1].append(ins)
        else:
            preamble.append(ins)
    stages = tuple(
        Stage(name, base, tuple(body)) for (name, base), body in zip(heads, bodies, strict=True)
    )
    return Dockerfile(path.name, tuple(preamble), stages)


def leading_flags(args: str) -> list[str]:
    """The --flag names an instruction starts with (`COPY --from=link ...` gives --from)."""
    flags = []
    for word in args.split():
        if not word.startswith("--"):
            break
        flags.append(word.split("=", 1)[0])
    return flags


def env_keys(args: str) -> list[str]:
    """The variables an ENV instruction sets (`ENV K=V ...` or the old `ENV K V`)."""
    if "=" not in args.split()[0]:
        return [args.split()[0]]
    return re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", args)


def normalised(stage: Stage) -> list[str]:
    """A compile or link stage as compared across Dockerfiles: the install line may put the
    files under a ROOT of its own and run commands after the install (musl copies its loader
    there); everything else must be written the same."""
    result = []
    for ins in stage.instructions:
        text = ins.text()
        if ins.keyword == "RUN":
            match = INSTALL_LINE.match(" ".join(ins.args.split()))
            if match:
                text = f"RUN {match.group(1)}"
        result.append(text)
    return result


# ---------- the rules ----------


def generic_problems(directory: Path, name: str) -> list[str]:
    """What every Dockerfile keeps: bases only from build args, earlier stages or scratch;
    nothing downloaded but a distribution's packages, and those only in the stages allowed;
    nothing the legacy builder of Docker 20.10 cannot run; the runtime stage last."""
    problems: list[str] = []
    try:
        dockerfile = parse(directory / name)
    except ValueError as exc:
        return [f"{name}: {exc}"]
    args = {
        ins.args.split("=", 1)[0].strip() for ins in dockerfile.preamble if ins.keyword == "ARG"
    }
    seen: list[str] = []
    allowed_pm = PACKAGE_MANAGER_STAGES.get(name, {"toolchain", "runtime-base", "runtime"})
    for stage in dockerfile.stages:
        base = stage.base
        arg = re.fullmatch(r"\$\{?(\w+)\}?", base)
        if arg and arg.group(1) not in args:
            problems.append(f"{name}: stage {stage.name!r} starts FROM {base}, an undeclared ARG")
        elif not arg and base.lower() not in seen and base != "scratch":
            problems.append(
                f"{name}: stage {stage.name!r} starts FROM {base!r}: an image named in the "
                "file is pulled behind the matrix's back; use a build arg or an earlier stage"
            )
        for ins in stage.instructions:
            where = f"{name}:{ins.line}"
            flags = leading_flags(ins.args)
            if not KEYWORDS.fullmatch(ins.keyword):
                problems.append(f"{where}: unknown instruction {ins.keyword}")
            if ins.keyword == "ADD" and URL.search(ins.args):
                problems.append(f"{where}: ADD from a URL (sources come through the context)")
            if ins.keyword in ("ADD", "COPY"):
                for flag in flags:
                    if flag not in ("--from", "--chown"):
                        problems.append(f"{where}: {ins.keyword} {flag} needs BuildKit")
                source = re.search(r"--from=(\S+)", ins.args)
                if source and source.group(1).lower() not in seen:
                    problems.append(
                        f"{where}: COPY --from={source.group(1)} is not an earlier stage "
                        "(an image would be pulled)"
                    )
            if ins.keyword in ("RUN", "COPY", "ADD") and HEREDOC.search(ins.args):
                problems.append(f"{where}: heredoc in {ins.keyword} needs BuildKit")
            if ins.keyword == "RUN":
                if flags:
                    problems.append(f"{where}: RUN with flags (--mount, ...) needs BuildKit")
                if URL.search(ins.args):
                    problems.append(f"{where}: a URL in RUN (nothing is downloaded)")
                tool = NETWORK_TOOLS.search(ins.args)
                if tool:
                    problems.append(f"{where}: {tool.group(1)} in RUN (nothing is downloaded)")
                manager = PACKAGE_MANAGERS.search(ins.args)
                if manager and stage.name not in allowed_pm:
                    problems.append(
                        f"{where}: {manager.group(1)} in stage {stage.name!r}: packages are "
                        f"installed only in {sorted(allowed_pm)}"
                    )
            if ins.keyword == "ENTRYPOINT" and not ins.args.startswith("["):
                problems.append(f"{where}: ENTRYPOINT in shell form")
        seen.append(stage.name)
    if not dockerfile.stages or dockerfile.stages[-1].name != "runtime":
        problems.append(f"{name}: the last stage is not named 'runtime'")
    return problems


def contract_problems(directory: Path, name: str) -> list[str]:
    """The contract of a Dockerfile that builds OpenSSL from the verified tarball."""
    dockerfile = parse(directory / name)
    problems: list[str] = []

    defaults = [
        ins.args.split("=", 1)
        for ins in dockerfile.preamble
        if ins.keyword == "ARG" and ins.args.split("=", 1)[0].strip() == "BASE_IMAGE"
    ]
    if not defaults:
        problems.append(f"{name}: no ARG BASE_IMAGE before the first FROM")
    elif len(defaults[0]) != 2 or not defaults[0][1].strip().strip("\"'"):
        problems.append(f"{name}: ARG BASE_IMAGE has no default")

    names = [s.name for s in dockerfile.stages]
    optional, at = OPTIONAL_STAGE
    if names not in (STAGES, [*STAGES[:at], optional, *STAGES[at:]]):
        problems.append(
            f"{name}: stages are {names}, not {STAGES} (with {optional!r} after "
            f"{STAGES[at - 1]!r} or not at all) in that order"
        )
        return problems
    toolchain, compile_, link, runtime = (dockerfile.stage(n) for n in STAGES)
    assert toolchain and compile_ and link and runtime

    expected_bases = {
        "toolchain": {"${BASE_IMAGE}", "$BASE_IMAGE"},
        "compile": {"toolchain"},
        "link": {"compile"},
        "runtime-base": {"${BASE_IMAGE}", "$BASE_IMAGE", "scratch"},
        "runtime": {"${BASE_IMAGE}", "$BASE_IMAGE", "scratch", "runtime-base"},
    }
    # The runner builds the stages before compile ahead, with BASE_IMAGE alone: they may
    # not depend on anything of the cell's.
    for stage in dockerfile.stages[: names.index("compile")]:
        for ins in stage.instructions:
            if ins.keyword == "ARG":
                problems.append(
                    f"{name}:{ins.line}: stage {stage.name!r} comes before compile, so it is "
                    "built ahead of the cells with BASE_IMAGE alone: it may declare no ARG"
                )
    for stage in dockerfile.stages:
        if stage.base not in expected_bases[stage.name]:
            problems.append(
                f"{name}: stage {stage.name!r} starts FROM {stage.base!r}, "
                f"not one of {sorted(expected_bases[stage.name])}"
            )

    if not any(ins.text() == SCRIPT_COPY for ins in toolchain.instructions):
        problems.append(f"{name}: the toolchain stage does not `{SCRIPT_COPY}`")
    for ins in toolchain.instructions:
        if ins.keyword == "ENV" and set(env_keys(ins.args)) - TOOLCHAIN_ENV:
            problems.append(
                f"{name}:{ins.line}: the toolchain stage may set only {sorted(TOOLCHAIN_ENV)}"
            )

    for stage_name, script_step, context_copy in (
        ("compile", "compile", r"^openssl\.tar\.gz /src/$"),
        ("link", "link", None),
    ):
        stage = dockerfile.stage(stage_name)
        assert stage is not None
        runs = stage.find("RUN", rf"^fips-matrix-build\.sh {script_step}$")
        if not runs:
            problems.append(
                f"{name}: stage {stage_name!r} never runs fips-matrix-build.sh {script_step}"
            )
            continue
        for arg in BUILD_ARGS_OF[stage_name]:
            declared = stage.find("ARG", rf"^{arg}(=|$)")
            if not declared:
                problems.append(f"{name}: stage {stage_name!r} does not declare ARG {arg}")
            elif declared[0] > runs[0]:
                problems.append(
                    f"{name}: stage {stage_name!r} declares ARG {arg} after the build step uses it"
                )
        if context_copy:
            copies = stage.find("COPY", context_copy)
            if not copies or copies[0] > runs[0]:
                problems.append(
                    f"{name}: stage {stage_name!r} does not COPY openssl.tar.gz before compiling"
                )

    # The probe is built once per compile, after it, in the compile stage: a cell that only
    # relinks finds it in the cache with the compile.
    compiles = compile_.find("RUN", r"^fips-matrix-build\.sh compile$")
    probe_copies = compile_.find("COPY", r"^probes/ /src/probes/$")
    probe_runs = compile_.find("RUN", r"^fips-matrix-build\.sh probe$")
    if not probe_runs or not probe_copies or not compiles:
        problems.append(f"{name}: the compile stage never builds the probe")
    elif not compiles[0] < probe_copies[0] < probe_runs[0]:
        problems.append(
            f"{name}: the compile stage must compile, then COPY probes/ /src/probes/, then "
            "build the probe (a probe change then keeps the compile)"
        )
    installs = [
        i for i, line in enumerate(normalised(link)) if line == "RUN fips-matrix-build.sh install"
    ]
    link_runs = link.find("RUN", r"^fips-matrix-build\.sh link$")
    if not installs:
        problems.append(f"{name}: the link stage never runs fips-matrix-build.sh install")
    elif link_runs and link_runs[0] > installs[0]:
        problems.append(f"{name}: the link stage must relink, then install")
    if link.find("COPY", r"^probes/"):
        problems.append(f"{name}: the link stage copies probes/: each relink would rebuild them")

    if name != REFERENCE and (directory / REFERENCE).is_file():
        reference = parse(directory / REFERENCE)
        for stage_name, stage in (("compile", compile_), ("link", link)):
            ours = normalised(stage)
            same = reference.stage(stage_name)
            theirs = normalised(same) if same else []
            if ours != theirs:
                problems.append(
                    f"{name}: stage {stage_name!r} differs from {REFERENCE}'s: {ours} != {theirs}"
                )

    if not runtime.find("COPY", r"--from=link\b"):
        problems.append(f"{name}: the runtime stage copies nothing from the link stage")
    entrypoints = runtime.find("ENTRYPOINT")
    if not entrypoints:
        problems.append(f"{name}: the runtime stage has no ENTRYPOINT")
    else:
        args = runtime.instructions[entrypoints[-1]].args
        try:
            value = json.loads(args)
        except json.JSONDecodeError:
            value = args
        if value != ENTRYPOINT:
            problems.append(f"{name}: runtime ENTRYPOINT is {args}, not {json.dumps(ENTRYPOINT)}")
    return problems


def all_problems(directory: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(directory.glob("*.Dockerfile")):
        problems += generic_problems(directory, path.name)
        if path.name not in OTHER_KINDS:
            problems += contract_problems(directory, path.name)
    return problems


# ---------- the repository's Dockerfiles ----------

ALL = sorted(p.name for p in DOCKERFILES.glob("*.Dockerfile"))
BUILDING = [n for n in ALL if n not in OTHER_KINDS]


def test_the_reference_and_the_exceptions_exist() -> None:
    assert REFERENCE in BUILDING
    assert set(OTHER_KINDS) <= set(ALL), "an exception names a Dockerfile that is gone"


@pytest.mark.parametrize("name", BUILDING)
def test_dockerfile_keeps_the_contract(name: str) -> None:
    assert contract_problems(DOCKERFILES, name) == []


@pytest.mark.parametrize("name", ALL)
def test_dockerfile_downloads_nothing_and_needs_no_buildkit(name: str) -> None:
    assert generic_problems(DOCKERFILES, name) == []


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
    assert [(s.name, s.base) for s in dockerfile.stages] == [("toolchain", "${BASE_IMAGE}")]
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


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_dockerfile_is_named(tmp_path: Path, broken: str) -> None:
    edit, expected = BROKEN[broken]
    target = "ubuntu.Dockerfile"
    directory = broken_copy(tmp_path, target, edit)
    problems = all_problems(directory)
    ours = [p for p in problems if p.startswith(target)]
    assert any(expected in p for p in ours), problems
    assert not [p for p in problems if not p.startswith(target)], problems


def test_the_copies_are_clean_before_any_edit(tmp_path: Path) -> None:
    directory = broken_copy(tmp_path, "ubuntu.Dockerfile", lambda t: t + "\n")
    assert all_problems(directory) == []


def test_a_broken_reference_shows_in_every_platform(tmp_path: Path) -> None:
    directory = broken_copy(tmp_path, REFERENCE, drop_line('ARG LINK_OPTIONS=""'))
    problems = all_problems(directory)
    assert any(p.startswith(REFERENCE) and "ARG LINK_OPTIONS" in p for p in problems)
    for name in BUILDING:
        if name != REFERENCE:
            assert any(p.startswith(name) and "differs from" in p for p in problems), name


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
