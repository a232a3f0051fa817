"""The cffi twin (probes/fips_twin.py) against the C probe on real builds: the tool's own run
(shared_run.py) probes every glibc cell with both, in the same image, and keeps both
documents; here they must show the same verdict and the same key observations, step by step.
Where the C probe's process died after its document, its crash record must say it was a
thread's exit; the twin's process may then end otherwise (what a use of freed or unmapped
memory does is not fixed: docs/probe-document.md). Also: the twin refuses to run beside
another libcrypto, in a real cell image."""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest
from shared_run import CELLS, MatrixRun

from matrix import assets
from matrix.execute.probes.batch import container_options
from matrix.judge import verdict as v
from matrix.model.vocabulary import KNOWN_SCENARIOS

pytestmark = pytest.mark.e2e

WORKERS = ("worker-thread", "worker-no-stop", "thread-pool")
SHAPE = {f"{w}-no-failure": w for w in WORKERS}  # a control runs as its partner
GLIBC_CELLS = [c for c in CELLS if not c.startswith("musl-")]


def assert_same_observations(scenario: str, c_doc: dict[str, Any], t_doc: dict[str, Any]) -> None:
    assert t_doc["witness"] == "cffi"
    assert t_doc["completed"] is True and c_doc["completed"] is True
    for key in ("schema", "scenario", "module", "module_config_extra", "libc", "provider"):
        assert t_doc[key] == c_doc[key], key
    assert t_doc["versions"]["openssl"] == c_doc["versions"]["openssl"]
    assert t_doc["baseline"] == c_doc["baseline"]  # NODELETE, canary, sha256, nothing preloaded
    assert t_doc["leaked_reference"] == c_doc["leaked_reference"]
    c_steps, t_steps = c_doc["steps"], t_doc["steps"]
    assert [s["name"] for s in t_steps] == [s["name"] for s in c_steps]
    shape = SHAPE.get(scenario, scenario)
    timing = shape in WORKERS  # workers run beside the steps: counts may differ
    for c_step, t_step in zip(c_steps, t_steps, strict=True):
        where = f"step {c_step['name']}"
        for key in ("ok", "status", "digest_ok", "noload_loaded"):
            assert t_step[key] == c_step[key], f"{where}: {key}"
        assert (t_step["mappings"] > 0) == (c_step["mappings"] > 0), f"{where}: mapped"
        c_st, t_st = c_step["self_tests"], t_step["self_tests"]
        assert (t_st["started"] > 0) == (c_st["started"] > 0), f"{where}: self-tests ran"
        assert t_st["failed_tests"] == c_st["failed_tests"], f"{where}: failed tests"
        assert t_st["corrupted"] == c_st["corrupted"], f"{where}: corrupted"
        if not timing:
            assert t_st == c_st, where
            assert t_step["errors"] == c_step["errors"], f"{where}: errors"
    if shape == "worker-thread":
        assert_same_worker(c_doc["worker"], t_doc["worker"])
        assert "workers" not in c_doc and "workers" not in t_doc
    if shape in ("worker-no-stop", "thread-pool"):
        assert "worker" not in c_doc and "worker" not in t_doc
        c_ws, t_ws = c_doc["workers"], t_doc["workers"]
        assert len(c_ws) == len(t_ws) == (4 if shape == "thread-pool" else 1)
        for c_w, t_w in zip(c_ws, t_ws, strict=True):
            assert_same_worker(c_w, t_w)
            for key in ("name", "calls_thread_stop", "called_thread_stop"):
                assert t_w[key] == c_w[key], key
            for key in ("exited_before_failure", "exits_after_document"):
                assert t_w[key] == c_w[key], key
            assert t_w["exits_after_document"] is not t_w["exited_before_failure"]
            assert isinstance(c_w["tid"], int) and isinstance(t_w["tid"], int)
    if scenario == "exit-after-reload":
        for key in ("exit_without_context", "exit_after_cleanup", "context_alive_at_exit"):
            assert t_doc[key] == c_doc[key], key
    else:
        assert "exit_without_context" not in c_doc and "exit_without_context" not in t_doc


def assert_same_worker(c_w: dict[str, Any], t_w: dict[str, Any]) -> None:
    assert list(t_w) == list(c_w)
    assert t_w["stopped_before_free"] is c_w["stopped_before_free"] is True
    assert t_w["ok_before_failure"] > 0 and c_w["ok_before_failure"] > 0
    # which call meets the error state first (RAND or HMAC) is a matter of timing
    assert (t_w["first_error"] is None) == (c_w["first_error"] is None)
    assert (t_w["failed_after_failure"] > 0) == (c_w["failed_after_failure"] > 0)


def assert_same_judgement(scenario: str, s: dict[str, Any]) -> None:
    """The stored scenario: the C probe's run, its crash record, and the twin's run."""
    c_code, t_code = s["exit_code"], s["witness"]["exit_code"]
    c_j = v.judge_run(scenario, c_code, False, s["probe"], crash=s["crash"])
    t_j = v.judge_run(scenario, t_code, False, s["witness"]["probe"])
    assert t_j.verdict == c_j.verdict == s["verdict"]
    if c_code == 0:
        # a thread that never called OPENSSL_thread_stop_ex outlived its context: its exit
        # uses freed memory, which need not kill both processes (measured: 3.0.20
        # no-pinshared's controls, the C probe's ended normally, the twin's aborted)
        use_after_free = bool(c_j.facts.get("threads_alive_without_thread_stop"))
        assert t_code == 0 or (use_after_free and 128 < t_code < 160), (
            f"the twin died ({t_code}) where the C probe ended normally"
        )
        return
    # The C probe died after its document: its crash record says it was a worker's exit.
    crash = c_j.facts["crash"]
    assert c_code == 128 + crash["signal"] and crash["phase"] == "after-document"
    assert crash["thread"] in {w["name"] for w in s["probe"].get("workers", [])} | {"worker"}
    assert crash["moment"] == f"the {crash['thread']} thread's exit"
    assert t_code == 0 or 128 < t_code < 160, t_code
    for fact in ("mapped_after_unload", "noload_after_unload", "reload_ok"):
        assert t_j.facts[fact] == c_j.facts[fact], fact
    assert t_j.facts["reload_fresh_instance"] == c_j.facts["reload_fresh_instance"]
    assert v.judge(scenario, s["witness"]["probe"]).cause == v.judge(scenario, s["probe"]).cause


@pytest.mark.parametrize("scenario", KNOWN_SCENARIOS)
@pytest.mark.parametrize("cell_id", GLIBC_CELLS)
def test_twin_and_c_probe_agree(matrix_run: MatrixRun, cell_id: str, scenario: str) -> None:
    s = matrix_run.scenarios(cell_id)[scenario]
    assert s["witness"] is not None and "unavailable" not in s["witness"], s["witness"]
    assert_same_judgement(scenario, s)
    assert_same_observations(scenario, s["probe"], s["witness"]["probe"])


def test_deferred_self_tests_fail_at_first_use_for_both(matrix_run: MatrixRun) -> None:
    """4.0's defer-tests: load-kat's corrupted KAT fires at first use (digest_a)."""
    s = matrix_run.scenarios("debian-12/4.0.2/no-pinshared-deferred")["load-kat"]
    for doc in (s["probe"], s["witness"]["probe"]):
        assert doc["module_config_extra"] == ["defer-tests=1"]
        steps = {x["name"]: x for x in doc["steps"]}
        assert steps["load_a"]["ok"] is True and steps["digest_a"]["ok"] is False
    assert (s["exit_code"], s["witness"]["exit_code"]) == (0, 0)


def test_twin_refuses_when_another_libcrypto_is_mapped(matrix_run: MatrixRun) -> None:
    """In a real cell image, Python's hashlib maps the distribution's libcrypto first: the
    twin must refuse (exit 3, an "error" document), never mix two libcryptos."""
    image = matrix_run.cell("debian-12/3.0.20/no-pinshared")["fingerprint"]["image"]["id"]
    twin = assets.TWIN_SOURCE.read_text(encoding="utf-8")
    code = (
        "import hashlib, sys\n"
        "if 'libcrypto.so' not in open('/proc/self/maps').read(): sys.exit(99)\n"
        f"exec(compile({twin!r}, 'fips_twin.py', 'exec'), {{'__name__': '__main__'}})\n"
    )
    command = ["python3", "-c", code, "--scenario", "no-failure", "--module", assets.MODULE]
    command += ["--libcrypto", assets.LIBCRYPTO_DIR, "--workdir", "/tmp"]
    client = docker.from_env()
    container = client.containers.create(
        image, entrypoint=[], command=command, **container_options("twin-refuses")
    )
    try:
        container.start()
        status = container.wait(timeout=120)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert status != 99, "python3's hashlib mapped no libcrypto in the cell image"
    assert status == 3, err
    doc = json.loads(out)
    assert "another libcrypto is already mapped" in doc["error"] and "completed" not in doc
