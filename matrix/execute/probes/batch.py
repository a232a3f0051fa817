"""A cell's probe runs in one container with no network, each run a fresh process in a
working directory of its own: probes/fips_batch.c runs them one by one and reports each one's
exit status and output in a framed report, read here strictly by its byte counts."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from matrix import assets
from matrix.assets import WORKDIR
from matrix.progress import Reporter

GRACE = 60.0  # seconds the whole batch may take beyond its runs' timeouts
MEMORY = "512m"  # a probe container's memory, and its memory plus swap: no swap at all
# What the driver reports of one run is capped (probes/fips_batch.c: 4 MiB of stdout and of
# stderr); more than that from a container is not kept in memory.
OUTPUT_CAP = 4 * 2**20  # of a run's stdout, and of its stderr (probes/fips_batch.c: CAP)
RUN_REPORT_BYTES = 2 * OUTPUT_CAP + 4096
STDERR_BYTES = 64 * 2**10  # the driver's own stderr: its tail is enough


@dataclass(frozen=True)
class ProbeRun:
    scenario: str
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float
    stdout_cut: bool = False  # the program wrote more than the driver keeps (OUTPUT_CAP)

    def document(self) -> tuple[dict[str, Any] | None, str]:
        """The probe's JSON document, or None with why."""
        if self.stdout_cut:
            return None, f"stdout was over the batch driver's cap of {OUTPUT_CAP} bytes: cut"
        try:
            doc = json.loads(self.stdout)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            return None, f"stdout is not one JSON document ({type(exc).__name__}: {exc})"
        if not isinstance(doc, dict):
            return None, "stdout is JSON but not an object"
        return doc, ""


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch: the scenario it is for and the program's argv."""

    scenario: str
    argv: list[str]


def batch_command(
    runs: Sequence[BatchRun], timeout: float, driver: str = assets.BATCH
) -> list[str]:
    """The driver's command line: each run's argv after its count, so none is parsed."""
    command = [driver, "--timeout", repr(float(timeout)), "--workdir", WORKDIR, "--"]
    for run in runs:
        if not run.argv:
            raise ValueError(f"{run.scenario}: a run needs a program")
        command += [str(len(run.argv)), *run.argv]
    return command


def container_options(label: str) -> dict[str, Any]:
    """How every probe container runs: no network, nothing writable but a small /tmp, no
    privileges, bounded pids and memory."""
    return {
        "network_mode": "none",
        "init": True,  # tini as pid 1 reaps whatever a run leaves behind
        "read_only": True,
        # each run's capture files (up to 4 MiB each) live here until they are reported
        "tmpfs": {WORKDIR: "size=64m,mode=1777"},
        "user": "65534:65534",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": 64,
        "mem_limit": MEMORY,
        "memswap_limit": MEMORY,
        "labels": {assets.PROBE_LABEL: label, assets.OWNER_LABEL: owner()},
    }


def owner() -> str:
    """Which process made a probe container: host, pid and the pid's start time, so that a
    later run can tell a container whose run was killed from one whose run is still going."""
    return f"{socket.gethostname()} {os.getpid()} {_start_ticks(os.getpid())}"


def _start_ticks(pid: int) -> str:
    """The process's start time (clock ticks after boot), "?" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return "?"
    # the command name (the second field) may hold spaces and parentheses
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else "?"


def owner_gone(value: str) -> bool:
    """Whether the run that made a container is over for certain: made on this host by a
    process that no longer exists (or whose pid is now another process's)."""
    host, _, rest = value.partition(" ")
    pid, _, ticks = rest.partition(" ")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False  # another machine's run on a shared engine is not ours to judge
    return _start_ticks(int(pid)) != ticks


def remove_leftovers(client: docker.DockerClient, reporter: Reporter) -> int:
    """Removes the probe containers that a killed run (kill -9) left behind: only containers
    with the tool's probe label, and only those whose run is over for certain."""
    try:
        found = client.containers.list(all=True, filters={"label": assets.PROBE_LABEL})
    except docker.errors.APIError as exc:
        reporter.note(f"could not look for probe containers left behind: {exc}")
        return 0
    removed = 0
    for container in found:
        labels = container.labels or {}
        if assets.PROBE_LABEL not in labels or not owner_gone(labels.get(assets.OWNER_LABEL, "")):
            continue
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            continue  # gone meanwhile
        removed += 1
        cell, run = labels.get(assets.PROBE_LABEL), labels.get(assets.OWNER_LABEL)
        reporter.note(
            f"removed probe container {str(container.id)[:12]} of {cell}, left behind by a "
            f"run that was killed ({run})"
        )
    return removed


def remove_own(client: docker.DockerClient, seconds: float = 10.0) -> None:
    """Removes this process's probe containers, for a run that abandons its work; gives up
    after `seconds` (an engine that does not answer must not hold the exit)."""

    def remove() -> None:
        try:
            found = client.containers.list(all=True, filters={"label": assets.PROBE_LABEL})
            for container in found:
                if (container.labels or {}).get(assets.OWNER_LABEL) == owner():
                    container.remove(force=True)
        except Exception:  # best effort: the next run removes what is left (remove_leftovers)
            pass

    worker = threading.Thread(target=remove, daemon=True)
    worker.start()
    worker.join(seconds)


def run_batch(
    client: docker.DockerClient,
    image_id: str,
    runs: Sequence[BatchRun],
    timeout: float,
    label: str = "batch",
    *,
    driver: str = assets.BATCH,
    volume: str | None = None,
    created: Callable[[str], None] | None = None,
) -> list[ProbeRun]:
    """Every run in one container, one after another; one ProbeRun per run, in order.
    `timeout` is each run's; the container as a whole gets all of theirs and a grace. The
    image is used as it is: its entrypoint and command are set aside, its environment kept.
    `volume`: the portable probe's, mounted read-only at assets.PORTABLE_MOUNT, where the
    driver and the programs then are. `created` is told the container's id (the bench
    attributes its CPU)."""
    if not runs:
        return []
    options = container_options(label)
    if volume is not None:
        options["volumes"] = {volume: {"bind": assets.PORTABLE_MOUNT, "mode": "ro"}}
    container = client.containers.create(
        image_id,
        entrypoint=[],
        command=batch_command(runs, timeout, driver),
        **options,
    )
    if created is not None:
        created(str(container.id))
    timed_out = False
    exit_code: int | None = None
    chunks: list[bytes] = []
    stderr = ""
    try:
        # The report is read as the driver writes it: the engine's log driver stores text
        # and would rewrite bytes that are not UTF-8, and the framing counts bytes.
        stream = container.attach(stdout=True, stderr=False, stream=True, logs=False)
        cap = len(runs) * RUN_REPORT_BYTES + 1024  # and the driver's last line
        reader = threading.Thread(target=_drain, args=(stream, chunks, cap), daemon=True)
        reader.start()
        try:
            container.start()
            try:
                status = container.wait(timeout=len(runs) * timeout + GRACE)
                exit_code = int(status.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                timed_out = True
                try:
                    container.kill()
                    container.wait(timeout=30)
                except docker.errors.APIError:
                    pass  # it ended by itself between the timeout and the kill
            reader.join(timeout=30)
            tail = _tail(container.logs(stdout=False, stderr=True, stream=True), STDERR_BYTES)
            stderr = tail.decode("utf-8", "replace")
        finally:
            stream.close()
    finally:
        container.remove(force=True)
    return parse_batch(runs, b"".join(chunks), timed_out, exit_code, stderr)


def _drain(stream: Iterator[bytes], into: list[bytes], cap: int) -> None:
    """Reads the stream to its end, keeping its first `cap` bytes: the rest is read (so the
    driver is never blocked) and dropped, and the report then reads as cut."""
    kept = 0
    try:
        for chunk in stream:
            if kept < cap:
                into.append(chunk[: cap - kept])
                kept += len(into[-1])
    except Exception:  # closed under it, or the engine went: what it read is all there is
        pass


def _tail(chunks: Iterable[bytes] | bytes, limit: int) -> bytes:
    """The last `limit` bytes of a stream, never holding much more than that."""
    if isinstance(chunks, bytes):
        return chunks[-limit:]
    kept = b""
    for chunk in chunks:
        kept = (kept + chunk)[-limit:]
    return kept


_HEADER = re.compile(
    rb"fips-batch-run (\d+) exit=(-1|\d+) timed_out=([01]) seconds=(\d+\.\d+) "
    rb"stdout=(\d+) stderr=(\d+)\n"
)


def parse_batch(
    runs: Sequence[BatchRun],
    output: bytes,
    timed_out: bool = False,
    exit_code: int | None = 0,
    stderr: str = "",
) -> list[ProbeRun]:
    """The driver's framed report, read strictly by its byte counts. A run the report does
    not cover (the container was killed, the driver failed, the output was cut) comes back
    with no exit code, and why in its stderr."""
    out: list[ProbeRun] = []
    pos = 0
    problem = ""
    for index, run in enumerate(runs):
        header = _HEADER.match(output, pos)
        if header is None:
            if pos == len(output):
                problem = "the batch report ends before this run's"
            else:
                problem = f"unexpected batch report at byte {pos}: {output[pos : pos + 80]!r}"
            break
        got, code, run_timed_out, seconds, n_out, n_err = header.groups()
        if int(got) != index:
            problem = f"batch report of run {int(got)} where run {index}'s was due"
            break
        start = header.end()
        end = start + int(n_out) + int(n_err)
        if end > len(output):
            problem = "the batch report is cut inside this run's output"
            break
        hung = run_timed_out == b"1"
        out.append(
            ProbeRun(
                scenario=run.scenario,
                exit_code=None if hung else int(code),
                timed_out=hung,
                stdout=output[start : start + int(n_out)].decode("utf-8", "replace"),
                stderr=output[start + int(n_out) : end].decode("utf-8", "replace"),
                seconds=float(seconds),
                stdout_cut=int(n_out) >= OUTPUT_CAP,
            )
        )
        pos = end
    if len(out) < len(runs):
        if timed_out:
            how = "the batch container timed out and was killed"
        elif exit_code is None:
            how = "the batch container did not report an exit status"
        else:
            how = f"the batch driver exited {exit_code}"
        why = f"no report of this run: {how}; {problem}"
        if stderr:
            why += f"\ndriver stderr: {stderr[-2000:]}"
        out += [ProbeRun(run.scenario, None, timed_out, "", why, 0.0) for run in runs[len(out) :]]
    return out
