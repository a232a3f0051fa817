"""An existing image as a cell: the image found as the engine has it (never built, changed or
re-tagged), the portable probe beside it, and what the image holds (discovery): the programs
its probes run with, or why it cannot be probed, naming what was looked for and where."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import docker

from matrix.acquire.baseimages import BaseImage
from matrix.execute.images.builder import CellImage
from matrix.execute.images.discovery import choose, configured_module_mac, skip_reason
from matrix.execute.images.portable import (
    FAMILIES,
    PortableProbe,
    arch_of,
    discovery_runs,
    driver,
    entry_executables,
    programs,
)
from matrix.execute.probes.batch import ProbeRun, run_batch
from matrix.execute.probes.probing import Programs
from matrix.files import write_text
from matrix.model.cells import Cell
from matrix.progress import Reporter
from matrix.results.store import ResultsDir


@dataclass
class NotProbed(Exception):
    """The image cannot be probed: no OpenSSL 3, no FIPS provider, no loader the probe runs
    with, another architecture. The cell is SKIPPED with this reason, and with what its
    fingerprint and logs can tell all the same."""

    reason: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ExistingCell:
    """What probing an existing image needs, and what its fingerprint records."""

    image: CellImage
    family: str  # the image's libc family, as discovery found it
    programs: Programs
    discovery: dict[str, Any]
    portable: dict[str, Any]
    logs: dict[str, str]  # the discovery's


def examine(
    client: docker.DockerClient,
    cell: Cell,
    found: BaseImage,
    probe: PortableProbe,
    *,
    engine_arch: str,
    timeout: float,
    out: ResultsDir,
    reporter: Reporter,
) -> ExistingCell:
    """Runs discovery in the image (both libc families, one container) and decides which
    libcrypto, fips.so and module-mac its probes get; NotProbed when it cannot be probed."""
    spec = cell.platform.image
    if spec is None:
        raise ValueError(f"{cell.id} is not a cell of an existing image")
    attrs = client.images.get(found.image_id).attrs
    arch, declared = arch_of(attrs)
    if arch != engine_arch:
        raise NotProbed(
            f"the image is {declared}; the portable probe is built for this engine's "
            f"{engine_arch} only"
        )
    runs = discovery_runs(arch, spec, entry_executables(attrs))
    reporter.phase(cell.id, "find", "discovery: libc, libcrypto, fips.so, configuration")
    done = run_batch(
        client,
        found.image_id,
        runs,
        timeout,
        f"{cell.id} (discovery)",
        driver=driver(arch),
        volume=probe.volume,
    )
    log = out.log_path(cell.id, "discovery")
    write_text(log, out.redact(_log(done)))
    logs = {"discovery": str(log)}
    chosen = choose(done, FAMILIES)
    if isinstance(chosen, str):
        raise NotProbed(chosen, logs=logs)
    why = skip_reason(chosen)
    module_mac: str | None = None
    mac: dict[str, Any] = {"from": "computed"}
    if why is None and spec.module_mac == "image":
        got = configured_module_mac(chosen, spec.fips_config)
        if isinstance(got, str):
            why = f'module_mac = "image", but {got}'
        else:
            module_mac = got[0]
            mac = {"from": "image", "value": got[0], "config": got[1]}
    summary = chosen.summary(mac)
    libcrypto, module = chosen.libcrypto, chosen.module
    if why is not None or libcrypto is None or module is None:
        raise NotProbed(why or "nothing to probe", {"discovery": summary}, logs)
    reporter.phase(
        cell.id,
        "find",
        f"{chosen.family} {chosen.libc.get('version', '?')}; {libcrypto.realpath} "
        f"({libcrypto.version or '?'}); {module.path}",
    )
    used = programs(
        probe,
        chosen.family,
        arch,
        libcrypto=libcrypto.realpath,
        module=module.path,
        module_mac=module_mac,
    )
    # the probe runs change when the image, the portable probe or what it is given changes
    key = hashlib.sha256(
        "\0".join(
            [probe.key, found.image_id, libcrypto.realpath, module.path, module_mac or ""]
        ).encode()
    ).hexdigest()
    image = CellImage(found.ref, found.image_id, key, cached=True, seconds=0.0, parts=(probe.tag,))
    portable = {"builder": probe.tag, "inputs": probe.key, "volume": probe.volume}
    return ExistingCell(image, chosen.family, used, summary, portable, logs)


def _log(runs: list[ProbeRun]) -> str:
    return "".join(
        f"### {run.scenario}: exit={run.exit_code} timed_out={run.timed_out} "
        f"seconds={run.seconds:g}\n"
        f"{run.stderr}\n{run.stdout}\n"
        for run in runs
    )
