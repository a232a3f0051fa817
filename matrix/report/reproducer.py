"""A reproducer of one scenario of one cell that anyone can run without this tool: a
Dockerfile from the platform's public base image that downloads the pinned OpenSSL source
(checked against its sha256), builds libcrypto and fips.so with the cell's Configure options,
writes the module's configuration, and compiles ONE small C file doing the scenario's
sequence and nothing else; and a README with the two docker commands and what to expect,
from the cell's recorded result when there is one.

Pure: the cell, the scenario and the recorded result go in, the files' text comes out
(matrix/commands/repro.py writes them). The C file is put together from the sections of
probes/repro/repro.c.in that the scenario needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from matrix import __version__, assets
from matrix.errors import MatrixError
from matrix.judge.fate import fate_of
from matrix.model import kinds
from matrix.model.cells import Cell
from matrix.model.vocabulary import SCENARIOS, Scenario, scenario_status
from matrix.results.records import CellResult, ScenarioResult

TEMPLATE = assets.PROBES_DIR / "repro" / "repro.c.in"
SECTION = re.compile(r"^/\*@@ (.+?) @@\*/\n", re.M)
README_HEADING = "# Reproducer: "  # also how `repro` knows a directory as an earlier reproducer
FAILS_ON_DEMAND = "fail"  # the section forcing the on-demand self-test failure
WORKERS = "worker"
# The sections each scenario's C file is made of, before its own main.
SECTIONS: dict[str, tuple[str, ...]] = {
    Scenario.ONDEMAND_KAT: ("head", FAILS_ON_DEMAND),
    Scenario.LOAD_KAT: ("head",),
    Scenario.INTEGRITY: ("head",),
    Scenario.LEAKED_REF: ("head", FAILS_ON_DEMAND),
    Scenario.NO_FAILURE: ("head",),
    Scenario.TWO_CONTEXTS: ("head", FAILS_ON_DEMAND),
    Scenario.WORKER_THREAD: ("head", FAILS_ON_DEMAND, WORKERS),
    Scenario.WORKER_NO_STOP: ("head", FAILS_ON_DEMAND, WORKERS),
    Scenario.THREAD_POOL: ("head", FAILS_ON_DEMAND, WORKERS),
    Scenario.EXIT_AFTER_RELOAD: ("head", FAILS_ON_DEMAND),
    Scenario.WORKER_THREAD_NO_FAILURE: ("head", WORKERS),
    Scenario.WORKER_NO_STOP_NO_FAILURE: ("head", WORKERS),
    Scenario.THREAD_POOL_NO_FAILURE: ("head", WORKERS),
}


@dataclass(frozen=True)
class Toolchain:
    """How a platform's Dockerfile gets its compiler, per the platform's own Dockerfile."""

    packages: str  # apt packages, beside curl, ca-certificates and openssl (for the HMAC)
    cc: str
    setup: str = ""  # a RUN step before the build, or ""


GLIBC = Toolchain("gcc libc6-dev make perl", "gcc")
# musl-gcc has no kernel headers: just linux/, asm/ and asm-generic/ after musl's own
MUSL = Toolchain(
    "gcc make perl musl-tools linux-libc-dev",
    "musl-gcc -idirafter /opt/musl-kernel-headers",
    "RUN mkdir -p /opt/musl-kernel-headers \\\n"
    " && ln -s /usr/include/linux /usr/include/asm-generic /opt/musl-kernel-headers/ \\\n"
    ' && ln -s "/usr/include/$(gcc -dumpmachine)/asm" /opt/musl-kernel-headers/asm',
)
TOOLCHAINS = {"debian.Dockerfile": GLIBC, "ubuntu.Dockerfile": GLIBC, "musl.Dockerfile": MUSL}


def c_source(scenario: str) -> str:
    """The scenario's C file: the sections it needs and its own main, in that order."""
    text = TEMPLATE.read_text(encoding="utf-8")
    parts = SECTION.split(text)[1:]
    sections = dict(zip(parts[::2], parts[1::2], strict=True))
    if scenario not in SECTIONS or f"main {scenario}" not in sections:
        raise MatrixError(f"repro: no reproducer for scenario {scenario!r}")
    chosen = [sections[name].strip() for name in SECTIONS[scenario]]
    return "\n\n".join([*chosen, sections[f"main {scenario}"].strip()]) + "\n"


def toolchain(cell: Cell) -> Toolchain:
    if not kinds.of(cell.kind).compiles:
        raise MatrixError(
            f"repro: {cell.id} is a {cell.kind} cell; a reproducer builds OpenSSL from source, "
            "so it is made for compiled cells only"
        )
    found = TOOLCHAINS.get(cell.platform.dockerfile)
    if found is None:
        known = ", ".join(TOOLCHAINS)
        raise MatrixError(
            f"repro: platform {cell.platform.name} is built by {cell.platform.dockerfile}; "
            f"reproducers are written for the apt-based platforms ({known})"
        )
    return found


def dockerfile(cell: Cell, scenario: str) -> str:
    tools = toolchain(cell)
    source = cell.source
    if not source.urls:
        raise MatrixError(f"repro: source {source.version} has no URL to download it from")
    # Each line one shell word; the matrix file's keys and values are plain words already.
    extra = [f"'{key} = {value}'" for key, value in cell.variant.module_config]
    printf = " ".join(
        [
            "'openssl_conf = openssl_init'",
            "'[openssl_init]'",
            "'providers = provider_sect'",
            "'[provider_sect]'",
            "'fips = fips_sect'",
            "'[fips_sect]'",
            "'module = /repro/lib/ossl-modules/fips.so'",
            '"module-mac = $2"',
            "'conditional-errors = 1'",
            "'security-checks = 1'",
            *extra,
        ]
    )
    setup = f"{tools.setup}\n" if tools.setup else ""
    return f"""\
# Reproduces fips-reload-matrix's cell {cell.id}, scenario {scenario}
# (written by fips-reload-matrix {__version__}): see README.md.
#   docker build -t NAME .    then    docker run --rm NAME
ARG BASE={cell.platform.base_image}
FROM ${{BASE}}

# The OpenSSL release, pinned: any URL that serves the same tarball will do (the sha256 is
# checked), e.g. Debian's byte-identical pool/main/o/openssl/openssl_VERSION.orig.tar.gz.
ARG OPENSSL_VERSION={source.version}
ARG OPENSSL_URL={source.urls[0]}
ARG OPENSSL_SHA256={source.sha256}
# The cell's ./Configure options (variant {cell.variant.name})
ARG CONFIGURE_OPTIONS="{" ".join(cell.variant.configure)}"
ARG MAKE_JOBS=2

RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      ca-certificates curl openssl {tools.packages} \\
 && rm -rf /var/lib/apt/lists/*
{setup}ENV CC="{tools.cc}"

WORKDIR /src
RUN curl -fsSL -o openssl.tar.gz "$OPENSSL_URL" \\
 && echo "$OPENSSL_SHA256  openssl.tar.gz" | sha256sum -c - \\
 && tar xzf openssl.tar.gz \\
 && mv "openssl-$OPENSSL_VERSION" openssl

# Only what the scenario needs: libcrypto and the FIPS module (no apps, tests or docs).
WORKDIR /src/openssl
RUN ./Configure enable-fips shared no-afalgeng --prefix=/repro --libdir=lib $CONFIGURE_OPTIONS \\
 && make -j"$MAKE_JOBS" build_generated \\
 && make -j"$MAKE_JOBS" libcrypto.so providers/fips.so

# Install them, and write the module's configuration as `openssl fipsinstall` would: its
# module-mac is HMAC-SHA256 of fips.so under the build's FIPS key (computed with the base's
# own openssl command). fips-bad.cnf has a wrong module-mac (the integrity scenario).
RUN mkdir -p /repro/lib/ossl-modules \\
 && cp -P libcrypto.so* /repro/lib/ \\
 && cp providers/fips.so /repro/lib/ossl-modules/ \\
 && key=$(sed -n 's/^# *define FIPS_KEY_STRING "\\([0-9a-f]*\\)"/\\1/p' \\
          include/openssl/fipskey.h) \\
 && mac=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -r /repro/lib/ossl-modules/fips.so \\
          | cut -d' ' -f1 | tr a-f A-F | sed 's/../&:/g; s/:$//') \\
 && bad=$(echo "$mac" | sed 's/^0/1/; t; s/^./0/') \\
 && for cnf in "fips.cnf $mac" "fips-bad.cnf $bad"; do \\
      set -- $cnf; \\
      printf '%s\\n' {printf} > "/repro/$1"; \\
    done

COPY repro.c /repro/
RUN $CC -O1 -Wall -Wextra -o /repro/repro /repro/repro.c -I/src/openssl/include \\
      -L/repro/lib -lcrypto -pthread -Wl,-rpath,/repro/lib
CMD ["/repro/repro"]
"""


def readme(
    cell: Cell, scenario: str, recorded: tuple[CellResult, ScenarioResult] | None, name: str
) -> str:
    info = SCENARIOS.get(scenario)
    what = info.note if info is not None else scenario
    text = f"""\
{README_HEADING}{cell.id}, scenario `{scenario}`

{what[0].upper()}{what[1:]}.

OpenSSL {cell.source.version} built with `./Configure enable-fips shared no-afalgeng \
{" ".join(cell.variant.configure)}`{_config_note(cell)} on `{cell.platform.base_image}`
({cell.platform.description or cell.platform.name}). `repro.c` does the scenario's sequence
and nothing else; the `Dockerfile` downloads the pinned source (sha256 checked), builds
libcrypto and fips.so, writes the module's configuration and compiles `repro.c`. Written by
fips-reload-matrix {__version__}; it needs nothing but docker.

```
docker build -t {name} .
docker run --rm {name}; echo "exit status $?"
```

Build arguments: `BASE` (another image of the same distribution), `OPENSSL_URL` (any URL
serving the same tarball: its sha256 is checked), `MAKE_JOBS`.

## What to expect

"""
    if recorded is None:
        return text + (
            "No recorded result of this cell was found: run `fips-matrix run --only "
            f"'{cell.id}'` to measure it. Each line the program prints is one step; the exit "
            "status says how the process ended (128+N: killed by signal N).\n"
        )
    return text + _expected(recorded)


def _config_note(cell: Cell) -> str:
    lines = ", ".join(f"`{k} = {v}`" for k, v in cell.variant.module_config)
    return f", the module configured with {lines}" if lines else ""


def _expected(recorded: tuple[CellResult, ScenarioResult]) -> str:
    result, s = recorded
    when = result.fingerprint.get("times", {}).get("started", "?")
    status = scenario_status(s.verdict, s.facts)
    code = s.exit_code
    signal = code - 128 if code is not None and code > 128 else None
    ends = f"exit status {code}" + (f" (killed by signal {signal})" if signal else "")
    facts = s.facts
    fate = fate_of(s.facts)
    # a death that is a rate: the reproducer shows it in about that share of its runs
    often = (
        f" in {fate.died} of {fate.runs} runs of the probe (run it a few times)"
        if fate is not None and 0 < fate.died < fate.runs
        else ""
    )
    lines = [
        f"Recorded by fips-reload-matrix on {result.libc_label()} ({when}): **{status}**.",
        "",
        f"- `docker run` ends with **{ends}**{often}.",
    ]
    if isinstance(facts.get("mapped_after_unload"), bool):
        lines.append(
            "- after the unload, the line `fips.so lines in /proc/self/maps:` shows "
            + ("a number above 0 (fips.so stayed)" if facts["mapped_after_unload"] else "0")
            + "."
        )
    if isinstance(facts.get("reload_ok"), bool):
        lines.append(
            "- the reload into context B "
            + (
                "loads, passes its self-test and digests"
                if facts["reload_ok"]
                else "fails ("
                + (", ".join(facts.get("reload_errors") or []) or "see its line")
                + ")"
            )
            + "."
        )
    crash = facts.get("crash")
    if isinstance(crash, dict) and isinstance(crash.get("sentence"), str):
        lines += [
            f"- then the process dies: {crash['sentence']}.",
            "",
            "The crash as the matrix's probe attributed it (its own crash handler; repro.c has "
            "none, so `docker run` shows only the exit status):",
            "",
            *(f"    {e}" for e in s.evidence if _about_crash(e)),
        ]
    lines += ["", "The recorded evidence:", "", *(f"- {e}" for e in s.evidence)]
    return "\n".join(lines) + "\n"


def _about_crash(line: str) -> bool:
    return line.startswith(("crash", "pc ", "fault address", "backtrace", "stack words", "no back"))


def image_name(cell: Cell, scenario: str) -> str:
    """A docker image name for the reproducer: lower case, no slashes."""
    name = re.sub(r"[^a-z0-9._-]+", "-", f"fips-repro-{cell.slug}-{scenario}".lower())
    return name.strip("-.")[:120]


def files(
    cell: Cell, scenario: str, recorded: tuple[CellResult, ScenarioResult] | None
) -> dict[str, str]:
    """The reproducer's directory: file name -> text."""
    name = image_name(cell, scenario)
    return {
        "Dockerfile": dockerfile(cell, scenario),
        "repro.c": c_source(scenario),
        "README.md": readme(cell, scenario, recorded, name),
    }
