"""End to end: the real engine, real base images, a real OpenSSL build, the real probe.

The expected verdicts are not written here: each is derived from observations, some of
them made by this test itself (the ELF flags of the fips.so inside the image, read with
pyelftools), and checked against what the tool concluded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from typing import Any

import docker
import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from shared_run import CELLS, MatrixRun

from matrix.execute.probes import batch
from matrix.model.vocabulary import KNOWN_SCENARIOS, SCENARIOS, partner_of

pytestmark = pytest.mark.e2e

MODULE = "/opt/fips-matrix/lib/ossl-modules/fips.so"
DF_1_NODELETE = 0x8
# every scenario but the controls that force none (no-failure, the workers' controls)
FAILURE_SCENARIOS = tuple(s for s in KNOWN_SCENARIOS if SCENARIOS[s].forced_test is not None)
NO_FAILURE = tuple(s for s in KNOWN_SCENARIOS if s not in FAILURE_SCENARIOS)


def cell(run: MatrixRun, cell_id: str) -> dict[str, Any]:
    return run.cell(cell_id)


def scenarios(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["scenario"]: s for s in data["scenarios"]}


def file_from_image(image_id: str, path: str = MODULE) -> bytes:
    """A file as it lies in the image, copied out through the engine."""
    client = docker.from_env()
    container = client.containers.create(image_id, entrypoint=[], command=["none"])
    try:
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile(os.path.basename(path))
            assert member is not None
            return member.read()
    finally:
        container.remove(force=True)


def elf_nodelete(data: bytes) -> bool:
    elf = ELFFile(io.BytesIO(data))
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_FLAGS_1":
                    return bool(tag.entry.d_val & DF_1_NODELETE)
    return False


def observed(probe: dict[str, Any]) -> tuple[bool, bool]:
    """(still mapped after unload, reload fully working), read straight off the steps."""
    steps = {s["name"]: s for s in probe["steps"]}
    unload = steps["unload_a"]
    mapped = unload["mappings"] > 0 or unload["noload_loaded"]
    st = steps.get("selftest_b")
    works = bool(steps["reload_b"]["ok"]) and st is not None and bool(st["ok"])
    works = works and st is not None and st["digest_ok"] is True and st["status"] == 1
    return mapped, works


def test_every_cell_has_a_verdict_for_every_scenario(matrix_run: MatrixRun) -> None:
    results = matrix_run.results
    summary = json.loads((results / "summary.json").read_text())
    assert [c["cell"] for c in summary["cells"]] == CELLS
    for cell_id in CELLS:
        data = cell(matrix_run, cell_id)
        assert data["outcome"] == "OK", data["reason"]
        assert set(scenarios(data)) == {*FAILURE_SCENARIOS, *NO_FAILURE}
        for s in data["scenarios"]:
            # a process that died after its complete document keeps its verdict, with its
            # crash recorded (test_crash_e2e.py attributes them)
            assert s["exit_code"] == 0 or (s["probe"]["completed"] and s["crash"]), s["cause"]
            assert s["evidence"], f"{cell_id} {s['scenario']} has no evidence"
        assert (results / "cells" / f"{cell_id.replace('/', '__')}.build.log").exists() or data[
            "fingerprint"
        ]["image"]["cached"]
        assert (results / "cells" / f"{cell_id.replace('/', '__')}.probe.log").exists()


def test_verdicts_follow_from_the_observations(matrix_run: MatrixRun) -> None:
    table = {
        (False, True): "CLEAN_RELOAD",
        (True, False): "STICKY_ERROR",
        (True, True): "MAPPED_BUT_RECOVERED",
        (False, False): "UNLOADED_BUT_FAILED",
    }
    for cell_id in CELLS:
        for name, s in scenarios(cell(matrix_run, cell_id)).items():
            assert s["verdict"] == table[observed(s["probe"])], f"{cell_id} {name}: {s['cause']}"


def test_forced_failures_took_effect(matrix_run: MatrixRun) -> None:
    for cell_id in CELLS:
        for name in FAILURE_SCENARIOS:
            probe = scenarios(cell(matrix_run, cell_id))[name]["probe"]
            steps = {s["name"]: s for s in probe["steps"]}
            failing = steps.get("fail_a", steps["load_a"])
            if name == "load-kat" and failing["ok"] is not False:
                failing = steps["digest_a"]  # deferred self-tests: the KATs ran at first use
            assert failing["ok"] is False, f"{cell_id} {name}"
            assert failing["self_tests"]["failed"] >= 1
            assert steps["refuses_a"]["digest_ok"] is False  # the module refused work


def test_elf_flags_and_module_hash_seen_by_the_probe_are_the_files(
    matrix_run: MatrixRun,
) -> None:
    for cell_id in CELLS:
        data = cell(matrix_run, cell_id)
        module = file_from_image(data["fingerprint"]["image"]["id"])
        assert hashlib.sha256(module).hexdigest() == data["fingerprint"]["fips_so_sha256"]
        for s in data["scenarios"]:
            assert s["probe"]["baseline"]["module_nodelete"] is elf_nodelete(module), cell_id


def test_causes_match_what_holds_the_module(matrix_run: MatrixRun) -> None:
    for cell_id in CELLS:
        data = cell(matrix_run, cell_id)
        module = file_from_image(data["fingerprint"]["image"]["id"])
        nodelete = elf_nodelete(module)
        by_name = scenarios(data)
        ondemand = by_name["ondemand-kat"]
        libc = ondemand["probe"]["libc"]["name"]
        if nodelete:
            # a NODELETE object is never unmapped by dlclose, on any libc
            assert ondemand["verdict"] == "STICKY_ERROR", cell_id
            assert "NODELETE" in ondemand["cause"]
        elif libc == "glibc":
            assert ondemand["verdict"] == "CLEAN_RELOAD", cell_id
            assert ondemand["facts"]["reload_fresh_instance"] is True
        # a reference never freed keeps the module in the process everywhere
        leaked = by_name["leaked-ref"]
        assert leaked["facts"]["mapped_after_unload"] is True, cell_id
        assert "reference is still held" in leaked["cause"]
        # with no failure, a reload works whether or not the module left
        assert by_name["no-failure"]["verdict"] in ("CLEAN_RELOAD", "MAPPED_BUT_RECOVERED")


FAILING = ("fail_a", "refuses_a")  # the steps of the forced failure


def until_unload(doc: dict[str, Any]) -> list[str]:
    names = [s["name"] for s in doc["steps"]]
    return names[: names.index("unload_a") + 1]


def test_the_controls_are_their_partners_minus_the_failure(matrix_run: MatrixRun) -> None:
    """The workers' controls: the partner's steps and workers, no failure forced, a reload
    that passes; and whether the process died after the document is the control's own fact
    (the findings compare it with the partner's)."""
    for cell_id in CELLS:
        by_name = scenarios(cell(matrix_run, cell_id))
        for name in NO_FAILURE:
            control, partner = by_name[name], by_name.get(partner_of(name) or "")
            if partner is None or name == "no-failure":
                continue
            where = f"{cell_id} {name}"
            # up to the unload (the reload's steps depend on how the reload went)
            steps = until_unload(control["probe"])
            assert steps == [n for n in until_unload(partner["probe"]) if n not in FAILING], where
            assert all(s["self_tests"]["corrupted"] == 0 for s in control["probe"]["steps"])
            assert control["verdict"] in ("CLEAN_RELOAD", "MAPPED_BUT_RECOVERED"), where
            for key in ("worker", "workers"):
                assert (key in control["probe"]) == (key in partner["probe"]), where
            # no failure: no worker round failed
            for w in control["probe"].get("workers", [control["probe"].get("worker")]):
                assert w["failed_after_failure"] == w["failed_during_failure"] == 0, where


def test_probe_saw_the_libc_of_its_platform(matrix_run: MatrixRun) -> None:
    for cell_id in CELLS:
        data = cell(matrix_run, cell_id)
        libc = data["fingerprint"]["libc"]
        assert libc["name"] == data["libc"]
        assert libc["version"][0].isdigit(), libc


def test_second_run_builds_nothing_downloads_nothing_probes_nothing(
    matrix_run: MatrixRun,
) -> None:
    cache, second = matrix_run.cache, matrix_run.second
    assert "fetching " not in second
    assert "docker build" not in second
    assert second.count("cached image") == len(CELLS)
    for cell_id in CELLS:
        fp = cell(matrix_run, cell_id)["fingerprint"]
        assert fp["image"]["cached"] is True, cell_id
        assert "probe_runs_reused_from" in fp, cell_id
    tarballs = list((cache / "sources").glob("*.tar.gz"))
    assert len(tarballs) == len({c.split("/")[1] for c in CELLS})  # one per version
    assert fp["sources"][0]["signature"].startswith(("verified", "unavailable"))


def test_table_names_every_cell(matrix_run: MatrixRun) -> None:
    table = (matrix_run.results / "table.md").read_text()
    for cell_id in CELLS:
        verdict = scenarios(cell(matrix_run, cell_id))["ondemand-kat"]["verdict"]
        assert verdict in table
    assert "debian-12 (glibc " in table and "musl-debian-12 (musl " in table
    assert os.path.getsize(matrix_run.results / "summary.json") > 0


def test_variants_link_like_their_configure_options(matrix_run: MatrixRun) -> None:
    """no-pinshared is made by relinking: both libcrypto and fips.so must then lack
    NODELETE, exactly as with a real `./Configure no-pinshared`; the default has both."""
    for cell_id in CELLS:
        data = cell(matrix_run, cell_id)
        image = data["fingerprint"]["image"]["id"]
        soname = "libcrypto.so.4" if data["version"].startswith("4.") else "libcrypto.so.3"
        libcrypto = file_from_image(image, f"/opt/fips-matrix/lib/{soname}")
        module = file_from_image(image)
        pinned = "no-pinshared" not in data["variant"]
        assert elf_nodelete(libcrypto) is pinned, cell_id
        assert elf_nodelete(module) is pinned, cell_id


def test_the_cffi_twin_witnessed_every_glibc_scenario(matrix_run: MatrixRun) -> None:
    for cell_id in CELLS:
        data = cell(matrix_run, cell_id)
        for s in data["scenarios"]:
            if data["libc"] == "glibc":
                witness = s["witness"]
                assert witness is not None and "unavailable" not in witness, (cell_id, witness)
                assert witness["probe"]["witness"] == "cffi"
                assert s["facts"]["witness_verdict"] == s["verdict"] != "DISAGREEMENT"
            else:
                assert s["witness"] is None  # no Python in the musl runtime image


def test_probe_containers_are_locked_down_and_never_left_behind(
    matrix_run: MatrixRun,
) -> None:
    image = cell(matrix_run, CELLS[0])["fingerprint"]["image"]["id"]
    client = docker.from_env()
    container = client.containers.create(
        image,
        entrypoint=[],
        command=["/opt/fips-matrix/bin/fips_probe"],
        **batch.container_options("inspected"),
    )
    try:
        host, config = container.attrs["HostConfig"], container.attrs["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["PidsLimit"] == 64
        assert host["Memory"] == 512 * 1024 * 1024
        assert host["Init"] is True
        assert "/tmp" in host["Tmpfs"]
        assert config["User"] == "65534:65534"
    finally:
        container.remove(force=True)
    # none of the run's probe containers (of this test's images) is left behind
    images = {cell(matrix_run, c)["fingerprint"]["image"]["id"] for c in CELLS}
    left = client.containers.list(all=True, filters={"label": "org.fips-reload-matrix.probe"})
    assert [c for c in left if c.attrs["Image"] in images] == []
