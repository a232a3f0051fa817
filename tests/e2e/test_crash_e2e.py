"""Crashes of real probe runs, attributed: the tool's own run (shared_run.py) of a 4.0.2
no-pinshared cell, whose worker threads' exits die after a clean reload, and of 3.0.20 on
glibc and musl, whose workers that never called OPENSSL_thread_stop_ex die in libcrypto's
thread-stop handler. Each cell file must carry the crash record and the symbolized frames,
and each name the tool gave is checked here against binutils' nm on the object copied out of
the cell image (independently of the tool's pyelftools reading)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest
from shared_run import CRASH_CELL, MatrixRun

from matrix import assets

pytestmark = pytest.mark.e2e

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"


def copy_out(image: str, path: str, into: Path) -> Path:
    client = docker.from_env()
    container = client.containers.create(image, entrypoint=[], command=["none"])
    try:
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile(Path(path).name)
            assert member is not None
            target = into / Path(path).name
            target.write_bytes(member.read())
            return target
    finally:
        container.remove(force=True)


def nm_function(path: Path, offset: int) -> tuple[str, int] | None:
    """binutils' name for an offset of a shared object (linked at 0): (function, offset in it)."""
    out = subprocess.run(
        ["nm", "-S", "--defined-only", str(path)], capture_output=True, text=True, check=True
    )
    for line in out.stdout.splitlines():
        words = line.split()
        if len(words) == 4 and words[2] in ("t", "T"):
            start, size = int(words[0], 16), int(words[1], 16)
            if start <= offset < start + size:
                return words[3], offset - start
    return None


def check_names(image: str, places: list[dict[str, Any]], tmp_path: Path) -> None:
    """Every place the tool named in an object of the build tree is named alike by nm."""
    copies: dict[str, Path] = {}
    for place in places:
        path = place["object"]
        if place["function"] is None or not str(path).startswith(assets.PREFIX):
            continue
        if path not in copies:
            copies[path] = copy_out(image, path, tmp_path)
        offset, inside = int(place["offset"], 16), int(place["function_offset"], 16)
        assert nm_function(copies[path], offset) == (place["function"], inside), place


def test_the_worker_exit_runs_code_of_the_unloaded_fips_so(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    data = matrix_run.cell(CRASH_CELL)
    image = data["fingerprint"]["image"]["id"]
    for name in ("worker-thread", "worker-no-stop", "thread-pool"):
        s = matrix_run.scenarios(CRASH_CELL)[name]
        assert s["verdict"] == "CLEAN_RELOAD" and s["exit_code"] == 139, s["cause"]
        assert s["crash"]["lines"] and s["crash"]["symbols"]
        crash = s["facts"]["crash"]
        assert crash["attributed"] is True
        assert crash["finding"] == "code of the unloaded fips.so ran after dlclose"
        pc = crash["pc"]
        assert pc["object"] == assets.MODULE and pc["generation"] == 1
        assert pc["unmapped_at"] == "unload_a" and pc["mapped_at_crash"] is False
        assert (pc["function"], pc["function_offset"]) == ("clean_master_key", "0x0")
        assert crash["addr"]["address"] == pc["address"]  # the instruction fetch faulted
        assert crash["stack"][0]["object"] == LIBC  # its caller: the C library's thread exit
        assert crash["moment"] == f"the {crash['thread']} thread's exit"
        assert (
            f"afterwards the process died (signal 11 (SIGSEGV)): {crash['sentence']}"
            in (s["cause"])
        )
        assert "called clean_master_key of fips.so generation 1" in s["cause"]
        assert any(e.startswith("pc ") and "= clean_master_key" in e for e in s["evidence"])
        check_names(image, [pc, *crash["stack"]], tmp_path)
    # pool-3 calls OPENSSL_thread_stop_ex and exits first: still its exit that dies
    assert matrix_run.scenarios(CRASH_CELL)["thread-pool"]["facts"]["crash"]["thread"] == "pool-3"


def test_a_worker_that_never_stopped_faults_in_libcrypto_with_a_backtrace(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    cell = "debian-12/3.0.20/no-pinshared"
    s = matrix_run.scenarios(cell)["worker-no-stop"]
    assert s["exit_code"] == 139 and s["verdict"] == "STICKY_ERROR", s["cause"]
    assert s["cause"].startswith("a live thread's state (worker: used the module, never called")
    crash = s["facts"]["crash"]
    frames = [(Path(str(f["object"])).name, f["function"]) for f in crash["frames"]]
    assert ("libcrypto.so.3", "rand_delete_thread_state") in frames
    assert ("libcrypto.so.3", "init_thread_destructor") in frames
    assert not any(name == "fips.so" for name, _ in frames)
    assert crash["frames"][0]["address"] == crash["pc"]["address"]
    image = matrix_run.cell(cell)["fingerprint"]["image"]["id"]
    check_names(image, crash["frames"], tmp_path)


def test_musl_has_the_same_fault_named_from_its_stack_words(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    cell = "musl-debian-12/3.0.20/default"
    s = matrix_run.scenarios(cell)["worker-no-stop"]
    assert s["exit_code"] == 139, s["cause"]
    crash = s["facts"]["crash"]
    assert crash["frames"] == []
    assert any("musl has no execinfo.h" in e for e in s["evidence"])
    named = [w["function"] for w in crash["stack"]]
    assert "rand_delete_thread_state" in named and "init_thread_destructor" in named
    image = matrix_run.cell(cell)["fingerprint"]["image"]["id"]
    check_names(image, crash["stack"], tmp_path)


def test_report_attributes_the_stored_crashes_again_without_the_images(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    copy = tmp_path / "results"
    shutil.copytree(matrix_run.results, copy, ignore=shutil.ignore_patterns(".lock"))
    done = subprocess.run(
        [sys.executable, "-m", "matrix", "report", str(copy)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"},  # no engine to reach
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in (matrix_run.results / "cells").glob("*.json"):
        before = json.loads(path.read_text())
        after = json.loads((copy / "cells" / path.name).read_text())
        assert [s["cause"] for s in after["scenarios"]] == [s["cause"] for s in before["scenarios"]]
        assert [s["facts"].get("crash") for s in after["scenarios"]] == [
            s["facts"].get("crash") for s in before["scenarios"]
        ]
