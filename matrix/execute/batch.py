"""A cell's probe runs in one container with no network, each run a fresh process in a
working directory of its own: probes/fips_batch.c runs them one by one and reports each one's
exit status and output in a framed report, read here strictly by its byte counts."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from matrix import assets
from matrix.assets import WORKDIR

GRACE = 60.0  # seconds the whole batch may take beyond its runs' timeouts


@dataclass(frozen=True)
class ProbeRun:
    scenario: str
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float

    def document(self) -> tuple[dict[str, Any] | None, str]:
        """The probe's JSON document, or None with why."""
        try:
            doc = json.loads(self.stdout)
        except ValueError as exc:
            return None, f"stdout is not one JSON document ({exc})"
        if not isinstance(doc, dict):
            return None, "stdout is JSON but not an object"
        return doc, ""


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch: the scenario it is for and the program's argv."""

    scenario: str
    argv: list[str]


def batch_command(runs: Sequence[BatchRun], timeout: float) -> list[str]:
    """The driver's command line: each run's argv after its count, so none is parsed."""
    command = [assets.BATCH, "--timeout", repr(float(timeout)), "--workdir", WORKDIR, "--"]
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
        "mem_limit": "512m",
        "labels": {assets.PROBE_LABEL: label},
    }


def run_batch(
    client: docker.DockerClient,
    image_id: str,
    runs: Sequence[BatchRun],
    timeout: float,
    label: str = "batch",
) -> list[ProbeRun]:
    """Every run in one container, one after another; one ProbeRun per run, in order.
    `timeout` is each run's; the container as a whole gets all of theirs and a grace."""
    if not runs:
        return []
    container = client.containers.create(
        image_id,
        entrypoint=[],
        command=batch_command(runs, timeout),
        **container_options(label),
    )
    timed_out = False
    exit_code: int | None = None
    chunks: list[bytes] = []
    stderr = ""
    try:
        # The report is read as the driver writes it: the engine's log driver stores text
        # and would rewrite bytes that are not UTF-8, and the framing counts bytes.
        stream = container.attach(stdout=True, stderr=False, stream=True, logs=False)
        reader = threading.Thread(target=_drain, args=(stream, chunks), daemon=True)
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
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        finally:
            stream.close()
    finally:
        container.remove(force=True)
    return parse_batch(runs, b"".join(chunks), timed_out, exit_code, stderr)


def _drain(stream: Iterator[bytes], into: list[bytes]) -> None:
    try:
        for chunk in stream:
            into.append(chunk)
    except Exception:  # closed under it, or the engine went: what it read is all there is
        pass


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
