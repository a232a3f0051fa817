"""The Dockerfile contract: the rules a platform's Dockerfile keeps, so that the tool can
build it (README, "Adding a platform"; written out at the top of dockerfiles/debian.Dockerfile).
`plan` and `run` check every Dockerfile a matrix names before anything is built, and the
test suite checks the shipped ones with the same code.

Every Dockerfile keeps the generic rules: bases only from build args, earlier stages or
scratch; nothing downloaded but a distribution's packages, and those only in the stages
allowed; nothing the legacy builder of Docker 20.10 cannot run; the runtime stage last. One
that builds OpenSSL from the verified tarball keeps the whole contract as well: its stages,
build args and steps, and compile and link stages written as the reference's
(dockerfiles/debian.Dockerfile, built and probed on this project's machine)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from matrix.model.dockerfile import (
    Dockerfile,
    Stage,
    Unreadable,
    env_keys,
    leading_flags,
    normalised,
    parse,
)


class Rules(StrEnum):
    GENERIC = "generic"  # nothing downloaded, no BuildKit, the runtime stage last
    FULL = "full"  # and the compile contract


GENERIC = Rules.GENERIC
FULL = Rules.FULL

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
# The stages in which a distribution's package manager may run (the toolchain, and the
# runtime's Python and cffi for the second witness): the only network access a build is
# allowed (sources come verified through the build context, never downloaded).
PACKAGE_STAGES = frozenset({"toolchain", "runtime-base", "runtime"})

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


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class _Found:
    path: Path
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))


def problems(
    path: Path,
    rules: Rules,
    reference: Path | None = None,
    package_stages: Collection[str] = PACKAGE_STAGES,
    older: bool = True,
) -> list[Problem]:
    """The rules `path` breaks, each at its line. `reference`: the Dockerfile whose compile
    and link stages a FULL one must repeat (none: not compared); `package_stages`: where a
    package manager may run; `older`: the contract of before the probe step (probes/ copied
    into the link stage, the probe built by the install step) is kept too, as a user's
    Dockerfile of then still builds (the shipped ones keep the current one)."""
    found = _Found(path)
    try:
        dockerfile = parse(path)
    except Unreadable as exc:
        found.add(exc.line, str(exc))
        return found.problems
    _generic(dockerfile, found, package_stages)
    if rules == Rules.FULL:
        _contract(dockerfile, found, reference, older)
    return found.problems


def _generic(dockerfile: Dockerfile, found: _Found, package_stages: Collection[str]) -> None:
    args = {
        ins.args.split("=", 1)[0].strip() for ins in dockerfile.preamble if ins.keyword == "ARG"
    }
    seen: list[str] = []
    for stage in dockerfile.stages:
        base = stage.base
        arg = re.fullmatch(r"\$\{?(\w+)\}?", base)
        if arg and arg.group(1) not in args:
            found.add(stage.line, f"stage {stage.name!r} starts FROM {base}, an undeclared ARG")
        elif not arg and base.lower() not in seen and base != "scratch":
            found.add(
                stage.line,
                f"stage {stage.name!r} starts FROM {base!r}: an image named in the file is "
                "pulled behind the matrix's back; use a build arg or an earlier stage",
            )
        for ins in stage.instructions:
            at = ins.line
            flags = leading_flags(ins.args)
            if not KEYWORDS.fullmatch(ins.keyword):
                found.add(at, f"unknown instruction {ins.keyword}")
            if ins.keyword == "ADD" and URL.search(ins.args):
                found.add(at, "ADD from a URL (sources come through the context)")
            if ins.keyword in ("ADD", "COPY"):
                for flag in flags:
                    if flag not in ("--from", "--chown"):
                        found.add(at, f"{ins.keyword} {flag} needs BuildKit")
                source = re.search(r"--from=(\S+)", ins.args)
                if source and source.group(1).lower() not in seen:
                    found.add(
                        at,
                        f"COPY --from={source.group(1)} is not an earlier stage "
                        "(an image would be pulled)",
                    )
            if ins.keyword in ("RUN", "COPY", "ADD") and HEREDOC.search(ins.args):
                found.add(at, f"heredoc in {ins.keyword} needs BuildKit")
            if ins.keyword == "RUN":
                _run(ins.args, flags, stage.name, at, found, package_stages)
            if ins.keyword == "ENTRYPOINT" and not ins.args.startswith("["):
                found.add(at, "ENTRYPOINT in shell form")
        seen.append(stage.name)
    if not dockerfile.stages or dockerfile.stages[-1].name != "runtime":
        last = dockerfile.stages[-1].line if dockerfile.stages else 1
        found.add(last, "the last stage is not named 'runtime'")


def _run(
    args: str,
    flags: list[str],
    stage: str,
    at: int,
    found: _Found,
    package_stages: Collection[str],
) -> None:
    if flags:
        found.add(at, "RUN with flags (--mount, ...) needs BuildKit")
    if URL.search(args):
        found.add(at, "a URL in RUN (nothing is downloaded)")
    tool = NETWORK_TOOLS.search(args)
    if tool:
        found.add(at, f"{tool.group(1)} in RUN (nothing is downloaded)")
    manager = PACKAGE_MANAGERS.search(args)
    if manager and stage not in package_stages:
        found.add(
            at,
            f"{manager.group(1)} in stage {stage!r}: packages are installed only in "
            f"{sorted(package_stages)}",
        )


def _contract(dockerfile: Dockerfile, found: _Found, reference: Path | None, older: bool) -> None:
    """The contract of a Dockerfile that builds OpenSSL from the verified tarball."""
    first = dockerfile.stages[0].line if dockerfile.stages else 1
    defaults = [
        (ins, ins.args.split("=", 1))
        for ins in dockerfile.preamble
        if ins.keyword == "ARG" and ins.args.split("=", 1)[0].strip() == "BASE_IMAGE"
    ]
    if not defaults:
        found.add(first, "no ARG BASE_IMAGE before the first FROM")
    elif len(defaults[0][1]) != 2 or not defaults[0][1][1].strip().strip("\"'"):
        found.add(defaults[0][0].line, "ARG BASE_IMAGE has no default")

    names = [s.name for s in dockerfile.stages]
    optional, at = OPTIONAL_STAGE
    if names not in (STAGES, [*STAGES[:at], optional, *STAGES[at:]]):
        found.add(
            first,
            f"stages are {names}, not {STAGES} (with {optional!r} after {STAGES[at - 1]!r} "
            "or not at all) in that order",
        )
        return
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
                found.add(
                    ins.line,
                    f"stage {stage.name!r} comes before compile, so it is built ahead of the "
                    "cells with BASE_IMAGE alone: it may declare no ARG",
                )
    for stage in dockerfile.stages:
        if stage.base not in expected_bases[stage.name]:
            found.add(
                stage.line,
                f"stage {stage.name!r} starts FROM {stage.base!r}, "
                f"not one of {sorted(expected_bases[stage.name])}",
            )

    if not any(ins.text() == SCRIPT_COPY for ins in toolchain.instructions):
        found.add(toolchain.line, f"the toolchain stage does not `{SCRIPT_COPY}`")
    for ins in toolchain.instructions:
        if ins.keyword == "ENV" and set(env_keys(ins.args)) - TOOLCHAIN_ENV:
            found.add(ins.line, f"the toolchain stage may set only {sorted(TOOLCHAIN_ENV)}")

    for stage, context_copy in ((compile_, r"^openssl\.tar\.gz /src/$"), (link, None)):
        _step(stage, context_copy, found)

    # The probe is built once per compile, after it, in the compile stage: a cell that only
    # relinks finds it in the cache with the compile.
    compiles = compile_.find("RUN", r"^fips-matrix-build\.sh compile$")
    probe_copies = compile_.find("COPY", r"^probes/ /src/probes/$")
    probe_runs = compile_.find("RUN", r"^fips-matrix-build\.sh probe$")
    in_link = link.find("COPY", r"^probes/")
    # the older contract: probes/ copied into the link stage, the install step builds them
    older_probe = older and bool(in_link) and not (probe_runs or probe_copies)
    if older_probe:
        pass  # nothing of the probe's in the compile stage to check
    elif not probe_runs or not probe_copies or not compiles:
        found.add(compile_.line, "the compile stage never builds the probe")
    elif not compiles[0] < probe_copies[0] < probe_runs[0]:
        found.add(
            compile_.line,
            "the compile stage must compile, then COPY probes/ /src/probes/, then build the "
            "probe (a probe change then keeps the compile)",
        )
    installs = [
        i for i, line in enumerate(normalised(link)) if line == "RUN fips-matrix-build.sh install"
    ]
    link_runs = link.find("RUN", r"^fips-matrix-build\.sh link$")
    if not installs:
        found.add(link.line, "the link stage never runs fips-matrix-build.sh install")
    elif link_runs and link_runs[0] > installs[0]:
        found.add(link.instructions[installs[0]].line, "the link stage must relink, then install")
    for i in [] if older else in_link:
        found.add(
            link.instructions[i].line,
            "the link stage copies probes/: each relink would rebuild them",
        )

    if reference is not None and reference.resolve() != dockerfile.path.resolve():
        _same_as(reference, dockerfile, found, older)

    if not runtime.find("COPY", r"--from=link\b"):
        found.add(runtime.line, "the runtime stage copies nothing from the link stage")
    entrypoints = runtime.find("ENTRYPOINT")
    if not entrypoints:
        found.add(runtime.line, "the runtime stage has no ENTRYPOINT")
    else:
        ins = runtime.instructions[entrypoints[-1]]
        try:
            value = json.loads(ins.args)
        except json.JSONDecodeError:
            value = ins.args
        if value != ENTRYPOINT:
            found.add(ins.line, f"runtime ENTRYPOINT is {ins.args}, not {json.dumps(ENTRYPOINT)}")


def _step(stage: Stage, context_copy: str | None, found: _Found) -> None:
    """A compile or link stage runs its step of the build script (the step is named as
    the stage), its build args declared before it uses them."""
    runs = stage.find("RUN", rf"^fips-matrix-build\.sh {stage.name}$")
    if not runs:
        found.add(stage.line, f"stage {stage.name!r} never runs fips-matrix-build.sh {stage.name}")
        return
    for arg in BUILD_ARGS_OF[stage.name]:
        declared = stage.find("ARG", rf"^{arg}(=|$)")
        if not declared:
            found.add(stage.line, f"stage {stage.name!r} does not declare ARG {arg}")
        elif declared[0] > runs[0]:
            found.add(
                stage.instructions[declared[0]].line,
                f"stage {stage.name!r} declares ARG {arg} after the build step uses it",
            )
    if context_copy:
        copies = stage.find("COPY", context_copy)
        if not copies or copies[0] > runs[0]:
            found.add(
                stage.instructions[runs[0]].line,
                f"stage {stage.name!r} does not COPY openssl.tar.gz before compiling",
            )


def _same_as(reference: Path, dockerfile: Dockerfile, found: _Found, older: bool) -> None:
    """The compile and link stages are the reference's, instruction for instruction (but for
    where the probe is built, with `older`)."""
    try:
        theirs_file = parse(reference)
    except Unreadable:
        return  # the reference's own check says why
    for stage_name in ("compile", "link"):
        stage = dockerfile.stage(stage_name)
        if stage is None:
            continue
        same = theirs_file.stage(stage_name)
        ours, theirs = normalised(stage), normalised(same) if same else []
        if older:
            ours, theirs = _no_probe(ours), _no_probe(theirs)
        if ours != theirs:
            found.add(
                stage.line,
                f"stage {stage_name!r} differs from {reference.name}'s: {ours} != {theirs}",
            )


PROBE_STEPS = ("COPY probes/ /src/probes/", "RUN fips-matrix-build.sh probe")


def _no_probe(stage: list[str]) -> list[str]:
    """A stage's instructions but for the probe's: where the probe is built, the current and
    the older contract differ."""
    return [text for text in stage if text not in PROBE_STEPS]
