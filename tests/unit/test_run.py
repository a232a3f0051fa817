"""The runner's orchestration against a fake Docker engine (tests/support/fakes.py): base image
-> source -> build -> one probe container per cell, running every scenario's probe as a fresh
process -> one result file per cell.

No network and no real engine: sources are faked at the imager's `fetch_source` (or found
pre-placed in the cache), and probe containers print the real documents of fixtures/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions
from support.fakes import FIXTURES, FakeDockerClient, ProbePlan, fixture_doc
from support.harness import (
    ALL_IDS,
    DEBIAN_DEFAULT,
    DEBIAN_UNPINNED,
    FACTS,
    MIRROR,
    MUSL_DEFAULT,
    MUSL_UNPINNED,
    REPO,
    SCENARIOS,
    SHA,
    TARBALL,
    Harness,
    make_harness,
)
from test_symbols import hostile_symtab_offset

import matrix.execute.images.imaging
import matrix.results.store
from matrix import assets, cli, session
from matrix.acquire import baseimages, download, sources
from matrix.assets import INPUTS_LABEL as KEY_LABEL
from matrix.errors import BaseImageError, EngineError
from matrix.execute import engine
from matrix.execute.images.builder import image_tag
from matrix.judge.cell import rejudge
from matrix.judge.verdict import judge
from matrix.model.vocabulary import Outcome, Verdict
from matrix.report.write import write_reports
from matrix.results.records import CellResult, Run

OK, BUILD_FAILED, ERROR = Outcome.OK, Outcome.BUILD_FAILED, Outcome.ERROR
PROBE_CRASHED, SKIPPED, TIMEOUT = Outcome.PROBE_CRASHED, Outcome.SKIPPED, Outcome.TIMEOUT
CLEAN_RELOAD, STICKY_ERROR = Verdict.CLEAN_RELOAD, Verdict.STICKY_ERROR
MAPPED_BUT_RECOVERED = Verdict.MAPPED_BUT_RECOVERED


def own_start() -> str:
    """This process's start time in clock ticks (field 22 of /proc/self/stat)."""
    return Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]


def verdicts(result: CellResult | dict[str, Any]) -> dict[str, str]:
    scenarios = result["scenarios"] if isinstance(result, dict) else result.to_json()["scenarios"]
    return {s["scenario"]: s["verdict"] for s in scenarios}


def expected_verdicts(build: str) -> dict[str, str]:
    return {sc: judge(sc, fixture_doc(build, sc)).verdict for sc in SCENARIOS}


def tag_of(h: Harness, cell_id: str) -> str:
    return image_tag(h.cells(cell_id)[0])


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- 1. a full run -----------------------------------------------------------------------


def test_run_writes_one_judged_result_per_cell_atomically(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(matrix.results.store.os, "replace", spy)
    results = h.run()

    assert [r.cell for r in results] == ALL_IDS
    cells_dir = h.results / "cells"
    json_files = sorted(p.name for p in cells_dir.glob("*.json"))
    assert json_files == sorted(c.replace("/", "__") + ".json" for c in ALL_IDS)
    leftovers = [p for p in all_files(h.results) if p.name.endswith(".tmp") or p.name[0] == "."]
    assert leftovers == []
    for name in json_files:  # each went through a temp file in the same directory + rename
        assert any(
            dst == cells_dir / name and src.parent == cells_dir and src.name.startswith(f".{name}.")
            for src, dst in replaced
        ), name

    for r in results:
        assert h.on_disk(r.cell) == json.loads(json.dumps(r.to_json()))
        assert r.outcome == OK and r.reason == ""
        assert [s.scenario for s in r.scenarios] == list(SCENARIOS)

    nodelete, unpinned = h.on_disk(DEBIAN_DEFAULT), h.on_disk(DEBIAN_UNPINNED)
    assert verdicts(nodelete) == expected_verdicts("nodelete")
    assert verdicts(unpinned) == expected_verdicts("unpinned")
    assert verdicts(nodelete)["ondemand-kat"] == STICKY_ERROR
    assert verdicts(nodelete)["no-failure"] == MAPPED_BUT_RECOVERED
    assert verdicts(unpinned)["ondemand-kat"] == CLEAN_RELOAD
    assert verdicts(unpinned)["leaked-ref"] == STICKY_ERROR
    first = nodelete["scenarios"][0]
    assert first["probe"] == fixture_doc("nodelete", "ondemand-kat")  # kept whole
    assert first["exit_code"] == 0 and first["timed_out"] is False
    assert "NODELETE" in first["cause"] and first["short"] == "NODELETE"

    for cell_id, build in ((DEBIAN_DEFAULT, "nodelete"), (MUSL_UNPINNED, "unpinned")):
        fp = h.on_disk(cell_id)["fingerprint"]
        image = h.client.images_by_ref[tag_of(h, cell_id)]
        assert fp["image"] == {
            "tag": tag_of(h, cell_id),
            "id": image.id,
            "parts": [],
            "inputs": image.labels[KEY_LABEL],
            "cached": False,
        }
        assert fp["sources"][0]["sha256"] == SHA
        assert fp["sources"][0]["origin"] == h.origin
        assert fp["sources"][0]["version"] == "3.0.20"
        module_sha = fixture_doc(build, "ondemand-kat")["baseline"]["module_sha256"]
        assert fp["fips_so_sha256"] == module_sha
        assert fp["libc"] == {"name": "glibc", "version": "2.36"}
        assert fp["base_image"] == {
            "ref": "debian:bookworm",
            "id": h.client.images_by_ref["debian:bookworm"].id,
            "origin": "local",
        }
        assert fp["engine"]["version"] == FACTS.version
        assert fp["engine"]["storage_driver"] == "overlay2"
        assert fp["matrix"]["digest"] == h.definition.digest
        assert set(fp["times"]) == {
            "started",
            "finished",
            "image_seconds",
            "probe_seconds",
            "fate_runs",
            "fate_seconds",
        }
        assert fp["times"]["probe_seconds"] >= 0
    # the two builds' modules differ, and so do their fingerprints
    assert (
        h.on_disk(DEBIAN_DEFAULT)["fingerprint"]["fips_so_sha256"]
        != h.on_disk(DEBIAN_UNPINNED)["fingerprint"]["fips_so_sha256"]
    )

    # one build per cell, with the right Dockerfile and link options; one fetch per version
    assert [b.tag for b in h.client.builds] == [tag_of(h, c) for c in ALL_IDS]
    debian_build, unpinned_build, musl_build = (
        h.client.builds[0],
        h.client.builds[1],
        h.client.builds[2],
    )
    assert (
        debian_build.context["Dockerfile"] == (REPO / "dockerfiles/debian.Dockerfile").read_bytes()
    )
    assert musl_build.context["Dockerfile"] == (REPO / "dockerfiles/musl.Dockerfile").read_bytes()
    assert debian_build.context["openssl.tar.gz"] == TARBALL
    assert "probes/fips_probe.c" in debian_build.context
    assert debian_build.kwargs["buildargs"]["LINK_OPTIONS"] == ""
    assert unpinned_build.kwargs["buildargs"]["LINK_OPTIONS"] == "no-pinshared"
    assert debian_build.kwargs["buildargs"]["BASE_IMAGE"] == "debian:bookworm"
    assert h.fetches == ["3.0.20"]

    # one container per cell, on its cell's image, running one probe per scenario
    assert len(h.client.batches) == len(ALL_IDS)
    assert len(h.client.created) == len(ALL_IDS) * len(SCENARIOS)
    for cell_id in ALL_IDS:
        assert len(h.client.batches_for(tag_of(h, cell_id))) == 1
        created = h.client.created_for(tag_of(h, cell_id))
        assert [c.scenario for c in created] == list(SCENARIOS)

    r = results[0]
    build_log, probe_log = Path(r.logs["build"]), Path(r.logs["probe"])
    assert build_log.parent == probe_log.parent == cells_dir
    assert "Successfully tagged " + tag_of(h, DEBIAN_DEFAULT) in build_log.read_text()
    assert "### ondemand-kat (probe): exit=0 timed_out=False" in probe_log.read_text()
    shown = h.console.getvalue()
    assert "[4/4] musl-debian-12/3.0.20/no-pinshared" in shown
    assert "Step 2/20 : FROM debian:bookworm" in shown  # build progress, per Dockerfile step


# --- 2. build failures -------------------------------------------------------------------


def test_failed_build_is_recorded_and_the_other_cells_finish(h: Harness) -> None:
    error = "The command '/bin/sh -c make -j2 build_generated' returned a non-zero code: 2"
    h.client.build_errors[":debian-12-3.0.20-default"] = error
    results = {r.cell: r for r in h.run()}

    failed = results[DEBIAN_DEFAULT]
    log = h.out.log_path(DEBIAN_DEFAULT, "build")
    assert failed.outcome == BUILD_FAILED
    assert error in failed.reason and str(log) in failed.reason
    assert failed.logs == {"build": str(log)}
    assert failed.scenarios == []
    text = log.read_text()
    assert "Step 9/20 : RUN make -j2 build_generated" in text
    assert f"ERROR: {error}" in text
    assert h.on_disk(DEBIAN_DEFAULT)["outcome"] == BUILD_FAILED
    assert tag_of(h, DEBIAN_DEFAULT) not in h.client.images_by_ref
    assert h.client.created_for(tag_of(h, DEBIAN_DEFAULT)) == []

    for cell_id in (DEBIAN_UNPINNED, MUSL_DEFAULT, MUSL_UNPINNED):
        assert results[cell_id].outcome == OK
        assert len(results[cell_id].scenarios) == len(SCENARIOS)
        assert h.on_disk(cell_id)["outcome"] == OK


def test_build_without_an_image_id_is_a_failed_build(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that ends with neither error nor aux ID produced no image."""
    monkeypatch.setattr(
        h.client.api, "build", lambda **kw: iter([{"stream": "Step 1/20 : ARG X\n"}])
    )
    [result] = h.run(DEBIAN_DEFAULT)
    assert result.outcome == BUILD_FAILED
    assert "no image produced" in result.reason
    assert h.client.created == []


def test_build_refused_by_the_engine_is_a_failed_build(h: Harness) -> None:
    h.client.build_raises = (
        ":musl-debian-12-3.0.20-default",
        docker.errors.APIError("400 Client Error: Bad Request (dockerfile parse error line 12)"),
    )
    results = {r.cell: r for r in h.run()}
    bad = results[MUSL_DEFAULT]
    assert bad.outcome == BUILD_FAILED
    assert "dockerfile parse error" in Path(bad.logs["build"]).read_text()
    assert results[MUSL_UNPINNED].outcome == OK


def test_unexpected_exception_is_an_error_cell_and_the_run_goes_on(h: Harness) -> None:
    h.client.build_raises = (
        ":musl-debian-12-3.0.20-default",
        RuntimeError("dockerfile parse error line 12"),
    )
    results = {r.cell: r for r in h.run()}
    bad = results[MUSL_DEFAULT]
    assert bad.outcome == ERROR
    assert bad.reason.startswith("RuntimeError: ") and "dockerfile parse error" in bad.reason
    error_log = Path(bad.logs["error"])
    assert error_log == h.out.log_path(MUSL_DEFAULT, "error")
    assert "Traceback" in error_log.read_text()
    assert h.on_disk(MUSL_DEFAULT)["outcome"] == ERROR
    assert [results[c].outcome for c in (DEBIAN_DEFAULT, DEBIAN_UNPINNED, MUSL_UNPINNED)] == [
        OK
    ] * 3


# --- 3. crashes and timeouts -------------------------------------------------------------


def test_crashed_probe_and_non_json_output_give_probe_crashed(h: Harness) -> None:
    h.client.plans[(":debian-12-3.0.20-default", "load-kat")] = ProbePlan(139, b"", b"")
    h.client.plans[(":debian-12-3.0.20-default", "integrity")] = ProbePlan(
        1, b"fips_probe: cannot open module\n", b"dlopen failed\n"
    )
    results = {r.cell: r for r in h.run()}
    r = results[DEBIAN_DEFAULT]
    by = {s.scenario: s for s in r.scenarios}

    crashed = by["load-kat"]
    assert crashed.verdict == PROBE_CRASHED
    assert "SIGSEGV" in crashed.cause and crashed.short == "SIGSEGV"
    assert crashed.facts == {"signal": 11, "signal_name": "SIGSEGV"}
    assert crashed.exit_code == 139 and crashed.probe is None
    garbled = by["integrity"]
    assert garbled.verdict == PROBE_CRASHED
    assert "not one JSON document" in garbled.cause and garbled.exit_code == 1
    assert by["ondemand-kat"].verdict == STICKY_ERROR  # the other scenarios are still judged
    assert r.outcome == PROBE_CRASHED
    assert h.on_disk(DEBIAN_DEFAULT)["outcome"] == PROBE_CRASHED

    probe_log = Path(r.logs["probe"]).read_text()
    assert "### load-kat (probe): exit=139 timed_out=False" in probe_log
    assert "fips_probe: cannot open module" in probe_log and "dlopen failed" in probe_log
    assert all(c.removed for c in h.client.batches)
    assert [results[c].outcome for c in (DEBIAN_UNPINNED, MUSL_DEFAULT, MUSL_UNPINNED)] == [OK] * 3


def test_a_process_that_dies_after_its_document_keeps_its_verdict_and_shows_it_died(
    h: Harness,
) -> None:
    doc = json.dumps(fixture_doc("unpinned", "ondemand-kat")).encode()
    h.client.plans[(":debian-12-3.0.20-no-pinshared", "ondemand-kat")] = ProbePlan(139, doc)
    results = {r.cell: r for r in h.run()}
    died = next(s for s in results[DEBIAN_UNPINNED].scenarios if s.scenario == "ondemand-kat")
    assert died.verdict == Verdict.CLEAN_RELOAD  # the reload was clean, and stays so
    assert died.facts["exit_after_document"] == 139
    assert died.status == "DIED_AFTER_RELOAD"
    assert "ondemand-kat=DIED_AFTER_RELOAD" in h.console.getvalue()  # the progress line


def test_hung_probe_times_out_and_the_batch_goes_on(h: Harness) -> None:
    h.client.plans[(":debian-12-3.0.20-no-pinshared", "integrity")] = ProbePlan(
        hang=True, stdout=b'{"schema":1,', stderr=b"spinning\n"
    )
    results = {r.cell: r for r in h.run(probe_timeout=7.5)}
    r = results[DEBIAN_UNPINNED]
    hung = next(s for s in r.scenarios if s.scenario == "integrity")
    assert hung.verdict == TIMEOUT and hung.timed_out is True and hung.exit_code is None
    assert r.outcome == TIMEOUT
    assert h.on_disk(DEBIAN_UNPINNED)["outcome"] == TIMEOUT
    expected = expected_verdicts("unpinned")  # the runs after the hung one ran as ever
    assert {s.scenario: s.verdict for s in r.scenarios if s is not hung} == {
        sc: v for sc, v in expected.items() if sc != "integrity"
    }
    assert "spinning" in Path(r.logs["probe"]).read_text()

    # the driver killed the run after its 7.5 s; the container ended by itself, with a
    # wait long enough for every run to take its whole timeout
    [container] = h.client.batches_for(tag_of(h, DEBIAN_UNPINNED))
    assert container.run_timeout == 7.5
    assert container.wait_timeouts == [7.5 * len(container.runs) + 60]
    assert "kill" not in container.events
    assert container.events[-1] == "remove(force=True)" and container.removed
    assert all(c.run_timeout == 7.5 and not c.killed for c in h.client.batches)
    assert results[DEBIAN_DEFAULT].outcome == OK


def test_batch_that_outlives_its_wait_is_killed_and_its_unreported_runs_time_out(
    h: Harness,
) -> None:
    h.client.plans[(":debian-12-3.0.20-no-pinshared", "leaked-ref")] = ProbePlan(wedge=True)
    h.client.batch_stderr = b"fips_batch: stuck\n"
    results = {r.cell: r for r in h.run(probe_timeout=7.5)}
    r = results[DEBIAN_UNPINNED]
    by = {s.scenario: s for s in r.scenarios}
    # the runs reported before the driver got stuck keep their verdicts
    expected = expected_verdicts("unpinned")
    for name in ("ondemand-kat", "load-kat", "integrity"):
        assert by[name].verdict == expected[name] and by[name].exit_code == 0
    for name in ("leaked-ref", "no-failure"):
        assert by[name].verdict == TIMEOUT and by[name].timed_out and by[name].exit_code is None
    assert r.outcome == TIMEOUT
    log = Path(r.logs["probe"]).read_text()
    assert "the batch container timed out and was killed" in log
    assert "fips_batch: stuck" in log

    [container] = h.client.batches_for(tag_of(h, DEBIAN_UNPINNED))
    assert container.wait_timeouts[0] == 7.5 * len(container.runs) + 60
    assert "kill" in container.events
    assert container.events[-1] == "remove(force=True)" and container.removed
    assert all(s.closed for s in container.streams)
    assert results[DEBIAN_DEFAULT].outcome == OK


def test_timeout_outranks_crash_in_the_cell_outcome(h: Harness) -> None:
    h.client.plans[(":debian-12-3.0.20-default", "load-kat")] = ProbePlan(139)
    h.client.plans[(":debian-12-3.0.20-default", "no-failure")] = ProbePlan(hang=True)
    [r] = h.run(DEBIAN_DEFAULT)
    assert {s.verdict for s in r.scenarios} >= {PROBE_CRASHED, TIMEOUT}
    assert r.outcome == TIMEOUT


# --- 4./5. reuse of previous results -----------------------------------------------------


def test_second_run_reuses_image_and_probe_runs_and_force_redoes_them(h: Harness) -> None:
    first = {r.cell: r for r in h.run()}
    builds, created = len(h.client.builds), len(h.client.created)
    assert (builds, created, len(h.client.batches)) == (4, 20, 4)
    assert len(h.client.stage_builds) == 2  # each platform's stages before compile

    gets, listings = len(h.client.gets), h.client.listings
    second = {r.cell: r for r in h.run()}
    assert len(h.client.builds) == builds  # cached images: no build call
    assert len(h.client.stage_builds) == 2  # and no stage is built: no build needs one
    # the cell images found in one listing of the engine's, not asked for one by one
    assert h.client.listings == listings + 1
    assert [g for g in h.client.gets[gets:] if g.startswith("fips-matrix/cell:")] == []
    assert (len(h.client.created), len(h.client.batches)) == (created, 4)  # no probe run
    for cell_id in ALL_IDS:
        a, b = first[cell_id], second[cell_id]
        assert verdicts(b) == verdicts(a) and b.outcome == a.outcome == OK
        assert [s.probe for s in b.scenarios] == [s.probe for s in a.scenarios]
        assert b.inputs_key == a.inputs_key
        assert b.fingerprint["image"]["cached"] is True
        assert b.fingerprint["image"]["id"] == a.fingerprint["image"]["id"]
        assert b.fingerprint["probe_runs_reused_from"] == a.fingerprint["times"]
        assert h.on_disk(cell_id)["fingerprint"]["probe_runs_reused_from"] == a.fingerprint["times"]
        assert Path(b.logs["probe"]).is_file()

    third = {r.cell: r for r in h.run(force=True)}
    assert len(h.client.builds) == builds + 4
    assert (len(h.client.created), len(h.client.batches)) == (created + 20, 8)
    for cell_id in ALL_IDS:
        assert verdicts(third[cell_id]) == verdicts(first[cell_id])
        assert "probe_runs_reused_from" not in third[cell_id].fingerprint
        assert third[cell_id].fingerprint["image"]["cached"] is False


def test_changed_dockerfile_rebuilds_and_reprobes_only_its_cells(h: Harness) -> None:
    local = h.tmp / "dockerfiles"  # beside the matrix file: wins over the repo's copy
    local.mkdir()
    shutil.copy(REPO / "dockerfiles" / "debian.Dockerfile", local / "debian.Dockerfile")
    h.run()
    builds, created = len(h.client.builds), len(h.client.created)

    with (local / "debian.Dockerfile").open("a") as f:
        f.write("# changed\n")
    results = {r.cell: r for r in h.run()}
    assert [b.tag for b in h.client.builds[builds:]] == [
        tag_of(h, DEBIAN_DEFAULT),
        tag_of(h, DEBIAN_UNPINNED),
    ]
    assert len(h.client.created) == created + 2 * len(SCENARIOS)
    assert "probe_runs_reused_from" not in results[DEBIAN_DEFAULT].fingerprint
    assert "probe_runs_reused_from" in results[MUSL_DEFAULT].fingerprint


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda t: t[: len(t) // 2], id="truncated"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "\x00\x00garbage", id="garbage"),
        pytest.param(lambda t: t.replace('"schema": 2', '"schema": 99'), id="other-schema"),
        pytest.param(
            lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != "cell"}),
            id="missing-field",
        ),
        pytest.param(
            lambda t: "[]",
            id="json-array",
        ),
    ],
)
def test_damaged_previous_result_is_not_trusted(h: Harness, damage: Any) -> None:
    first = {r.cell: r for r in h.run()}
    path = h.out.cell_path(MUSL_DEFAULT)
    path.write_text(damage(path.read_text()))
    created = len(h.client.created)

    second = {r.cell: r for r in h.run()}
    new = h.client.created[created:]
    assert {c.tags[0] for c in new} == {tag_of(h, MUSL_DEFAULT)}
    assert [c.scenario for c in new] == list(SCENARIOS)
    assert len(h.client.builds) == 4  # the image itself is still the cached one
    assert second[MUSL_DEFAULT].outcome == OK
    assert "probe_runs_reused_from" not in second[MUSL_DEFAULT].fingerprint
    assert verdicts(second[MUSL_DEFAULT]) == verdicts(first[MUSL_DEFAULT])
    assert h.out.read_cell(MUSL_DEFAULT) is not None  # whole again
    assert "probe_runs_reused_from" in second[DEBIAN_DEFAULT].fingerprint


# --- 6. the engine going away ------------------------------------------------------------


def test_engine_gone_on_create_raises_engine_error_and_keeps_finished_cells(h: Harness) -> None:
    # the first cell's one probe container, then nothing
    h.client.gone_after_creates = 1
    cells = h.cells()
    with pytest.raises(EngineError) as caught:
        h.runner(len(cells)).run(cells)
    message = str(caught.value)
    # whichever unfinished cell met it first: its probe, or the next build beside it
    assert any(f"during {c} " in message for c in (DEBIAN_UNPINNED, MUSL_DEFAULT)), message
    assert str(h.results) in message
    assert isinstance(caught.value.__cause__, requests.exceptions.ConnectionError)

    kept = h.out.read_cell(DEBIAN_DEFAULT)
    assert kept is not None and kept.outcome == OK and len(kept.scenarios) == len(SCENARIOS)
    assert not h.out.cell_path(DEBIAN_UNPINNED).exists()
    assert not h.out.cell_path(MUSL_DEFAULT).exists()
    assert [p for p in all_files(h.results) if p.name.endswith(".tmp")] == []


def test_engine_gone_while_waiting_is_not_recorded_as_a_timeout(h: Harness) -> None:
    h.client.plans[(":debian-12-3.0.20-default", "integrity")] = ProbePlan(engine_dies=True)
    with pytest.raises(EngineError):
        h.run(DEBIAN_DEFAULT, DEBIAN_UNPINNED)
    assert not h.out.cell_path(DEBIAN_DEFAULT).exists()
    assert not h.out.cell_path(DEBIAN_UNPINNED).exists()


def test_missing_local_file_is_a_cell_error_not_a_lost_engine(h: Harness) -> None:
    h.tarball.unlink()  # e.g. the cache was cleaned between fetch and build
    results = h.run(DEBIAN_DEFAULT, DEBIAN_UNPINNED)
    assert [r.outcome for r in results] == [ERROR, ERROR]


# --- 7. how probe containers are made ----------------------------------------------------


def test_probe_containers_are_locked_down_and_removed(h: Harness) -> None:
    [result] = h.run(DEBIAN_DEFAULT)
    image_id = h.client.images_by_ref[tag_of(h, DEBIAN_DEFAULT)].id
    [c] = h.client.batches
    kw = c.kwargs
    assert c.image == image_id
    assert kw["network_mode"] == "none"
    assert kw["read_only"] is True
    assert kw["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in kw["security_opt"]
    assert kw["init"] is True
    assert kw["user"] not in ("", "0", "root") and not str(kw["user"]).startswith("0:")
    assert kw["pids_limit"] == 64 and kw["mem_limit"] == "512m"
    assert kw["memswap_limit"] == kw["mem_limit"]  # no swap beyond the memory limit
    assert kw["tmpfs"] == {"/tmp": "size=64m,mode=1777"}
    assert kw["labels"] == {
        "org.fips-reload-matrix.probe": DEBIAN_DEFAULT,
        "org.fips-reload-matrix.owner": f"{socket.gethostname()} {os.getpid()} {own_start()}",
    }
    assert kw["entrypoint"] == []
    # the driver's output is read raw from the start (attached before it starts), the wait
    # covers every run's timeout, and the container is removed whatever happened
    assert c.events[0] == "attach(stdout=True,stderr=False,stream=True)"
    assert c.events[1] == "start" and c.events[-1] == "remove(force=True)"
    assert c.wait_timeouts == [30.0 * len(c.runs) + 60]
    assert c.removed and all(s.closed for s in c.streams)
    # each scenario: the C probe, then the twin (tried here: a glibc image), each in a
    # working directory of its own
    assert [(r.scenario, r.twin) for r in c.runs] == [
        (sc, twin) for sc in SCENARIOS for twin in (False, True)
    ]
    assert [r.workdir for r in c.runs] == [f"/tmp/run-{i}" for i in range(len(c.runs))]
    assert all(r.argv[0] == "/opt/fips-matrix/bin/fips_probe" for r in c.runs if not r.twin)
    assert result.outcome == OK


# --- 8. the mirror's address stays out of the results ------------------------------------


def test_mirror_host_never_appears_in_written_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(tmp_path, monkeypatch, {"3.0.20": SHA, "3.5.7": "ab" * 32})
    h.origin = f"{MIRROR}/pool/main/o/openssl/openssl_3.0.20.orig.tar.gz"
    h.source_errors["3.5.7"] = (
        f"no source for OpenSSL 3.5.7: {MIRROR}/pool/main/o/openssl/openssl_3.5.7.orig.tar.gz: "
        "HTTP 404 Not Found"
    )
    h.client.build_lines.append(f"Get:1 {MIRROR} bookworm InRelease [151 kB]\n")
    h.client.build_errors[":debian-12-3.0.20-no-pinshared"] = (
        "E: Failed to fetch http://mirror.test/debian/pool/main/g/gcc-12/cpp-12.deb  404"
    )
    h.client.build_raises = (
        ":musl-debian-12-3.0.20-default",
        RuntimeError(f"cannot reach {MIRROR}"),
    )
    cells = h.cells()
    runner = h.runner(len(cells), mirror=MIRROR)
    results = {r.cell: r for r in runner.run(cells)}
    write_reports(runner.out, list(results.values()), Run.unknown(list(results)), list(SCENARIOS))

    assert results[DEBIAN_DEFAULT].outcome == OK
    assert results[DEBIAN_UNPINNED].outcome == BUILD_FAILED
    assert results[MUSL_DEFAULT].outcome == ERROR
    assert results["debian-12/3.5.7/default"].outcome == SKIPPED
    written = all_files(h.results)
    assert {p.suffix for p in written} >= {".json", ".log", ".md"}
    for path in written:
        assert "mirror.test" not in path.read_text(errors="replace"), path
    origin = h.on_disk(DEBIAN_DEFAULT)["fingerprint"]["sources"][0]["origin"]
    assert origin == "<debian-mirror>/pool/main/o/openssl/openssl_3.0.20.orig.tar.gz"


def test_cli_run_keeps_the_mirror_out_of_summary_and_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(tmp_path, monkeypatch)
    h.source_errors["3.0.20"] = f"{MIRROR}/pool/main/o/openssl/openssl_3.0.20.orig.tar.gz: 404"
    monkeypatch.setattr(engine, "connect", lambda: h.client)
    monkeypatch.setattr(engine, "facts", lambda client: FACTS)
    monkeypatch.setattr(session, "debian_mirror", lambda: MIRROR)
    argv = ["run", "--matrix", str(h.definition.path), "--results", str(h.results)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--jobs", "1"]
    # nothing measured: not a result a CI job may pass on, unless asked to
    assert cli.main(argv) == 1
    assert cli.main([*argv, "--allow-empty"]) == 0
    assert all(r.outcome == SKIPPED for r in h.out.all_cells())
    for path in all_files(h.results):
        assert "mirror.test" not in path.read_text(), path


def test_cached_tarball_with_its_sidecar_is_used_without_network(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real fetch_source, fed by a tarball pre-placed in the runner's cache dir."""
    monkeypatch.setattr(matrix.execute.images.imaging, "fetch_source", sources.fetch_source)

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network used")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    source = h.definition.sources["3.0.20"]
    cached = sources.cache_path(source, h.tmp / "cache")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(TARBALL)
    origin = f"{MIRROR}/pool/main/o/openssl/openssl_3.0.20.orig.tar.gz"
    meta = {"version": "3.0.20", "sha256": SHA, "origin": origin, "signature": "verified: x"}
    cached.with_name(cached.name + ".json").write_text(json.dumps(meta))

    results = h.run(DEBIAN_DEFAULT, DEBIAN_UNPINNED, mirror=MIRROR)
    assert [r.outcome for r in results] == [OK, OK]
    assert h.client.builds[0].context["openssl.tar.gz"] == TARBALL
    assert h.on_disk(DEBIAN_DEFAULT)["fingerprint"]["sources"][0] == {
        "version": "3.0.20",
        "sha256": SHA,
        "origin": "<debian-mirror>/pool/main/o/openssl/openssl_3.0.20.orig.tar.gz",
        "signature": "verified: x",
    }


# --- base images -------------------------------------------------------------------------


def test_missing_base_image_uses_the_local_debootstrap_fallback(h: Harness) -> None:
    h.client = FakeDockerClient(local_images=("fips-matrix/base-debian:bookworm",))
    results = h.run()
    assert [r.outcome for r in results] == [OK] * 4
    # looked up once per base image (or per platform), never once per cell
    assert set(h.client.pulls) == {"debian:bookworm"} and 1 <= len(h.client.pulls) <= 2
    fp = results[0].fingerprint["base_image"]
    assert fp["ref"] == "fips-matrix/base-debian:bookworm"
    assert fp["origin"] == "debootstrap (reused)"
    assert all(
        b.kwargs["buildargs"]["BASE_IMAGE"] == "fips-matrix/base-debian:bookworm"
        for b in h.client.builds
    )


def test_base_image_that_cannot_be_made_skips_the_platform(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.client = FakeDockerClient(local_images=())
    attempts: list[str] = []

    def cannot(client: Any, suite: str, ref: str, mirror: Any, log: Any) -> str:
        attempts.append(ref)
        raise BaseImageError(f"making {ref} with debootstrap needs root")

    monkeypatch.setattr(baseimages, "_debootstrap_import", cannot)
    results = h.run()
    assert [r.outcome for r in results] == [SKIPPED] * 4
    assert all(r.reason.startswith("base image: making fips-matrix/base-debian") for r in results)
    assert set(attempts) == {"fips-matrix/base-debian:bookworm"} and 1 <= len(attempts) <= 2
    assert h.client.builds == [] and h.client.created == []
    assert all(h.out.read_cell(c) is not None for c in ALL_IDS)


def stored_index(cell: dict[str, Any]) -> int:
    return [x["scenario"] for x in cell["scenarios"]].index("ondemand-kat")


def test_a_crash_is_kept_with_its_lines_and_attributed_from_the_images_objects(
    h: Harness,
) -> None:
    """A run whose stderr holds crash lines: the lines are kept with the result, the objects
    they name are copied out of the cell's image (a container created, never started, then
    removed), and the cause states the finding; `report` does it again from the file."""
    record = json.loads((FIXTURES / "crash-glibc402-unpinned-worker-thread.json").read_text())
    stderr = "fips_probe: step load_a\n" + "\n".join(record["crash"]["lines"]) + "\n"
    doc = json.dumps(fixture_doc("unpinned", "ondemand-kat")).encode()
    h.client.plans[(":debian-12-3.0.20-no-pinshared", "ondemand-kat")] = ProbePlan(
        139, doc, stderr.encode()
    )
    module = "/opt/fips-matrix/lib/ossl-modules/fips.so"
    h.client.image_files[module] = b"not an ELF object"
    results = {r.cell: r for r in h.run()}
    s = next(s for s in results[DEBIAN_UNPINNED].scenarios if s.scenario == "ondemand-kat")
    assert s.crash is not None and s.crash["lines"] == record["crash"]["lines"]
    assert s.crash["symbols"] == []
    assert s.crash["objects"][module] == f"could not read symbols of {module}: not an ELF object"
    assert s.crash["objects"]["/usr/lib/x86_64-linux-gnu/libc.so.6"] == "not in the image"
    [files] = h.client.file_containers
    assert files.removed and files.kwargs["network_mode"] == "none"
    assert files.labels[assets.PROBE_LABEL] == "symbols"
    assert sorted(files.copied) == sorted(s.crash["objects"])
    assert s.cause.endswith(
        "afterwards the process died (signal 11 (SIGSEGV)): code of the unloaded fips.so ran "
        "after dlclose: the worker thread's exit ran offset 0x10d310 of fips.so generation 1 "
        "or 2 (unmapped at unload_a and at free_b; both loaded at this address)"
    )  # without a name, nothing says the fault was the function's entry, and so no caller
    assert s.facts["crash"]["pc"]["offset"] == "0x10d310"
    on_disk = h.on_disk(DEBIAN_UNPINNED)
    stored = next(x for x in on_disk["scenarios"] if x["scenario"] == "ondemand-kat")
    assert stored["crash"] == s.crash
    again = rejudge(CellResult.from_json(on_disk).scenarios[stored_index(on_disk)])
    assert (again.cause, again.facts) == (s.cause, s.facts)  # from the file alone
    # a clean run keeps no record, and nothing was copied for it
    assert all(x.crash is None for x in results[DEBIAN_DEFAULT].scenarios)


def test_a_crash_whose_object_the_parser_cannot_read_stays_a_crash(
    h: Harness, tmp_path: Path
) -> None:
    """A fips.so in the image whose .symtab lies at offset 2**63 (pyelftools raised
    OverflowError, and the cell ended ERROR "OverflowError"): the crash keeps PROBE_CRASHED
    and its cause; the object says why its symbols could not be read."""
    record = json.loads((FIXTURES / "crash-glibc402-unpinned-worker-thread.json").read_text())
    stderr = "fips_probe: step load_a\n" + "\n".join(record["crash"]["lines"]) + "\n"
    # it died before its document: PROBE_CRASHED
    h.client.plans[(":debian-12-3.0.20-no-pinshared", "ondemand-kat")] = ProbePlan(
        139, b"", stderr.encode()
    )
    (tmp_path / "m.c").write_text("int f(int x) { return x + 1; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "m.so"), str(tmp_path / "m.c")],
        check=True,
    )
    module = "/opt/fips-matrix/lib/ossl-modules/fips.so"
    h.client.image_files[module] = hostile_symtab_offset((tmp_path / "m.so").read_bytes(), 2**63)
    results = {r.cell: r for r in h.run()}
    assert results[DEBIAN_UNPINNED].outcome == Outcome.PROBE_CRASHED
    s = next(s for s in results[DEBIAN_UNPINNED].scenarios if s.scenario == "ondemand-kat")
    assert s.verdict == Verdict.PROBE_CRASHED
    assert "code of the unloaded fips.so ran after dlclose" in s.cause, s.cause
    assert s.crash is not None
    assert s.crash["objects"][module].startswith(f"could not read symbols of {module}: ")


def test_a_death_stored_without_its_crash_record_is_probed_again(h: Harness) -> None:
    """Results of a version that kept no crash record: the cell is probed again, once, so
    that its death gets attributed; with the record, it is reused like any other."""
    record = json.loads((FIXTURES / "crash-glibc402-unpinned-worker-thread.json").read_text())
    doc = json.dumps(fixture_doc("unpinned", "ondemand-kat")).encode()
    h.client.plans[(":debian-12-3.0.20-no-pinshared", "ondemand-kat")] = ProbePlan(
        139, doc, "\n".join(record["crash"]["lines"]).encode()
    )
    h.run()
    stored = h.on_disk(DEBIAN_UNPINNED)
    stored["scenarios"][stored_index(stored)]["crash"] = None  # as an older version wrote it
    (h.results / "cells" / "debian-12__3.0.20__no-pinshared.json").write_text(json.dumps(stored))
    batches = len(h.client.batches_for(tag_of(h, DEBIAN_UNPINNED)))
    again = {r.cell: r for r in h.run()}
    # probed again: its batch, and the follow-up runs of the scenario that died
    assert len(h.client.batches_for(tag_of(h, DEBIAN_UNPINNED))) == batches + 2
    assert "probe_runs_reused_from" not in again[DEBIAN_UNPINNED].fingerprint
    assert "probe_runs_reused_from" in again[DEBIAN_DEFAULT].fingerprint
    h.run()  # now with its record: reused
    assert len(h.client.batches_for(tag_of(h, DEBIAN_UNPINNED))) == batches + 2
