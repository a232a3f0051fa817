"""The runner's newer axes against the fake engine: version skew (an image made from two
other cells' images), the distribution's own OpenSSL (no source, no compile of ours),
variants that only change the module's config, and --offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.fakes import FakeDockerClient, ProbePlan, fixture_bytes, fixture_doc
from support.harness import SCENARIOS, SHA, Harness, make_harness

from matrix.acquire import baseimages
from matrix.errors import LockMismatch
from matrix.execute.images.builder import image_tag
from matrix.execute.lockfile import Lock
from matrix.judge.cell import rejudge
from matrix.model.definition import load_definition
from matrix.model.vocabulary import Outcome, Verdict
from matrix.report.layout import cell_code
from matrix.results.records import CellResult

TRIXIE = """
[platforms.debian-13]
dockerfile = "debian.Dockerfile"
base_image = "debian:trixie"
libc = "glibc"
fallback = { debootstrap = "trixie" }
"""

EXTRA = """
[platforms.debian-13-distro]
dockerfile = "debian-distro.Dockerfile"
base_image = "debian:bookworm"
libc = "glibc"
openssl = "distro"

[platforms."alpine-3.22"]
dockerfile = "alpine.Dockerfile"
base_image = "alpine:3.22"
libc = "musl"

[sources."3.6.3"]
sha256 = "{sha}"
urls = ["https://downloads.test/openssl-3.6.3.tar.gz"]

[variants.deferred]
configure = []
module_config = {{ defer-tests = "1" }}

[variants."fips-3.0.20"]
provider = "3.0.20"
base = "no-pinshared"

[[exclude]]
version = "3.0.20"
variant = "fips-*"
"""


@pytest.fixture
def hx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    h = make_harness(tmp_path, monkeypatch)
    path = tmp_path / "matrix.toml"
    path.write_text(path.read_text() + EXTRA.format(sha=SHA))
    h.definition = load_definition(path)
    return h


def test_skew_cell_is_made_from_the_images_of_two_cells(hx: Harness) -> None:
    [result] = hx.run("debian-12/3.6.3/fips-3.0.20")
    assert result.outcome == Outcome.OK
    tags = [b.tag for b in hx.client.builds]
    lib = image_tag(hx.cells("debian-12/3.6.3/no-pinshared")[0])
    prov = image_tag(hx.cells("debian-12/3.0.20/no-pinshared")[0])
    skew = image_tag(hx.cells("debian-12/3.6.3/fips-3.0.20")[0])
    assert tags == [lib, prov, skew]  # both parts first, then the skew image
    skew_call = hx.client.builds[-1]
    assert skew_call.kwargs["buildargs"] == {"LIBCRYPTO_IMAGE": lib, "PROVIDER_IMAGE": prov}
    assert "openssl.tar.gz" not in skew_call.context  # nothing compiled for the skew image
    versions = [s["version"] for s in hx.on_disk(result.cell)["fingerprint"]["sources"]]
    assert versions == ["3.6.3", "3.0.20"]


def test_skew_reuses_part_images_built_by_their_own_cells(hx: Harness) -> None:
    hx.run("debian-12/3.0.20/no-pinshared", "debian-12/3.6.3/no-pinshared")
    built = len(hx.client.builds)
    hx.run("debian-12/3.6.3/fips-3.0.20")
    assert len(hx.client.builds) == built + 1  # only the skew image itself


def test_skew_cell_skips_when_a_part_cannot_be_had(hx: Harness) -> None:
    hx.source_errors["3.0.20"] = "no URL gave the tarball"
    [result] = hx.run("debian-12/3.6.3/fips-3.0.20")
    assert result.outcome == Outcome.SKIPPED
    assert result.reason.startswith("debian-12/3.0.20/no-pinshared: source:")


def test_distro_cell_fetches_no_source_and_sends_no_tarball(hx: Harness) -> None:
    [result] = hx.run("debian-13-distro/*")
    assert result.cell == "debian-13-distro/distro/packaged"
    assert result.outcome == Outcome.OK
    assert hx.fetches == []
    [call] = hx.client.builds
    assert "openssl.tar.gz" not in call.context
    assert call.context["Dockerfile"].startswith(b"# The distribution's own OpenSSL")
    assert call.kwargs["buildargs"]["OPENSSL_VERSION"] == "distro"


def test_module_config_variant_reaches_the_probe_and_the_reuse_key(hx: Harness) -> None:
    [deferred] = hx.run("debian-12/3.0.20/deferred")
    [default] = hx.run("debian-12/3.0.20/default")
    commands = [c.argv for c in hx.client.created + hx.client.twins]
    assert all(("--config" in c) == ("defer-tests=1" in c) for c in commands)
    # the C probe's and the twin's runs of the deferred cell, none of the default's
    assert sum("defer-tests=1" in c for c in commands) == 2 * len(SCENARIOS)
    assert deferred.inputs_key != default.inputs_key


def test_offline_skips_platforms_it_would_have_to_pull(hx: Harness) -> None:
    results = hx.run("alpine-3.22/3.0.20/*", offline=True)
    assert {r.outcome for r in results} == {Outcome.SKIPPED}
    assert all("--offline" in r.reason for r in results)
    assert hx.client.pulls == []
    online = hx.run("alpine-3.22/3.0.20/default")
    assert online[0].outcome == Outcome.SKIPPED and "cannot be pulled" in online[0].reason
    assert "cannot reach the image's registry" in online[0].reason
    assert "registry.invalid" not in online[0].reason  # no registry's address in results
    assert hx.client.pulls == ["alpine:3.22"]
    assert json.loads(hx.out.cell_path(online[0].cell).read_text())["outcome"] == Outcome.SKIPPED


def test_parallel_run_keeps_order_and_builds_each_compile_group_in_sequence(
    hx: Harness,
) -> None:
    patterns = ("debian-12/3.0.20/default", "debian-12/3.0.20/no-pinshared")
    patterns += ("musl-debian-12/3.0.20/*", "debian-12/3.6.3/fips-3.0.20")
    cells = hx.cells(*patterns)
    results = hx.runner(len(cells), parallel=2).run(cells)
    assert [r.cell for r in results] == [c.id for c in cells]
    assert {r.outcome for r in results} == {Outcome.OK}
    tags = [b.tag for b in hx.client.builds]
    group = [
        image_tag(c)
        for c in cells
        if c.platform.name == "debian-12" and c.source.version == "3.0.20"
    ]
    assert [t for t in tags if t in group] == group  # one worker, in matrix order
    [skew] = [c for c in cells if c.variant.provider is not None]
    # the skew image comes after its parts: the 3.0.20 cell of the run, and the 3.6.3 cell
    # that is no cell of the run, built for it then
    parts = ("debian-12-3.0.20-no-pinshared", "debian-12-3.6.3-no-pinshared")
    after = max(tags.index(f"fips-matrix/cell:{p}") for p in parts)
    assert tags.index(image_tag(skew)) > after
    assert len(tags) == len(set(tags))  # no image built twice, whichever worker asked
    # each platform's stages before compile: built once, before its first cell's build
    order = hx.client.build_order
    for platform in ("debian-12", "musl-debian-12"):
        stage_tag = f"fips-matrix/stages:{platform}"
        assert order.count(stage_tag) == 1
        first = next(t for t in order if t.startswith(f"fips-matrix/cell:{platform}-"))
        assert order.index(stage_tag) < order.index(first)
    targets = {b.tag: (b.kwargs["target"], b.kwargs["buildargs"]) for b in hx.client.stage_builds}
    assert targets["fips-matrix/stages:debian-12"] == (
        "runtime-base",
        {"BASE_IMAGE": "debian:bookworm"},
    )
    assert targets["fips-matrix/stages:musl-debian-12"][0] == "toolchain"


def test_twin_that_agrees_is_recorded_as_a_second_witness(hx: Harness) -> None:
    hx.client.twin_answers = True
    [result] = hx.run("debian-12/3.0.20/default")
    assert len(hx.client.twins) == len(SCENARIOS) == len(hx.client.created)
    [batch] = hx.client.batches  # the twin runs in the same container as the C probe
    assert all(t.container is batch for t in hx.client.twins)
    for t in hx.client.twins:
        assert t.argv[:2] == ["python3", "-c"]
        assert t.argv[t.argv.index("--libcrypto") + 1] == "/opt/fips-matrix/lib"
    for s in result.scenarios:
        assert s.witness is not None and s.witness["probe"] is not None
        assert s.facts["witness_verdict"] == s.verdict
        assert s.evidence[-1] == f"cffi twin agrees: {s.verdict}"
    assert batch.kwargs["network_mode"] == "none"


def test_twin_that_disagrees_makes_a_disagreement(hx: Harness) -> None:
    hx.client.twin_answers = True
    unpinned = fixture_doc("unpinned", "ondemand-kat")
    hx.client.twin_plans["ondemand-kat"] = ProbePlan(stdout=json.dumps(unpinned).encode())
    [result] = hx.run("debian-12/3.0.20/default")  # the C probe sees the NODELETE build
    s = {x.scenario: x for x in result.scenarios}["ondemand-kat"]
    assert s.verdict == Verdict.DISAGREEMENT
    assert "C probe says STICKY_ERROR" in s.cause and "cffi twin says CLEAN_RELOAD" in s.cause
    assert any(e.startswith("C probe: ") for e in s.evidence)
    assert any(e.startswith("cffi twin: ") for e in s.evidence)
    assert result.outcome == Verdict.DISAGREEMENT


def test_no_twin_where_there_is_no_python(hx: Harness) -> None:
    [glibc] = hx.run("debian-12/3.0.20/default")
    # every run is in the batch before any answer, but only the first missing python3
    # counts: the later scenarios record no witness, as when the twin was tried only once
    assert len(hx.client.twins) == len(SCENARIOS)
    first = glibc.scenarios[0].witness
    assert first is not None and first["exit_code"] == 127
    assert "cannot execute python3" in first["unavailable"]
    assert all(s.witness is None for s in glibc.scenarios[1:])
    assert Path(glibc.logs["probe"]).read_text().count("(cffi twin)") == 1
    hx.run("musl-debian-12/3.0.20/default")
    assert len(hx.client.twins) == len(SCENARIOS)  # musl images are not even tried
    assert len(hx.client.batches) == 2


def test_twin_that_refuses_stops_the_witness_for_later_scenarios(hx: Harness) -> None:
    hx.client.twin_answers = True
    refusal = json.dumps({"schema": 2, "error": "another libcrypto is already mapped"})
    hx.client.twin_plans["load-kat"] = ProbePlan(exit_code=3, stdout=refusal.encode())
    [result] = hx.run("debian-12/3.0.20/default")
    first, refused, *later = result.scenarios
    assert first.witness is not None and "unavailable" not in first.witness
    assert refused.witness is not None and refused.witness["exit_code"] == 3
    assert "unavailable" in refused.witness
    assert later and all(s.witness is None for s in later)
    assert result.outcome == Outcome.OK


def test_distro_cell_twin_uses_the_distributions_libcrypto(hx: Harness) -> None:
    hx.client.twin_answers = True
    hx.run("debian-13-distro/*")
    assert hx.client.twins
    for t in hx.client.twins:
        assert t.argv[t.argv.index("--libcrypto") + 1] == "libcrypto.so.3"


def test_repeat_marks_runs_that_disagree_as_flaky(hx: Harness) -> None:
    """--repeat alone (--fate-runs 1: no follow-ups)."""
    sticky = json.dumps(fixture_doc("nodelete", "ondemand-kat")).encode()
    clean = json.dumps(fixture_doc("unpinned", "ondemand-kat")).encode()
    hx.client.plan_queue["ondemand-kat"] = [
        ProbePlan(stdout=sticky),
        ProbePlan(stdout=clean),
        ProbePlan(stdout=sticky),
    ]
    [result] = hx.run("debian-12/3.0.20/default", repeat=3, fate_runs=1)
    assert len(hx.client.created) == 3 * len(SCENARIOS)
    # one container: per scenario its three runs, then the twin's one
    [batch] = hx.client.batches
    assert [(r.scenario, r.twin) for r in batch.runs] == [
        (sc, twin) for sc in SCENARIOS for twin in (False, False, False, True)
    ]
    s = {x.scenario: x for x in result.scenarios}
    flaky = s["ondemand-kat"]
    assert flaky.verdict == "STICKY_ERROR"  # the majority
    assert flaky.facts["runs"] == {
        "verdicts": ["STICKY_ERROR", "CLEAN_RELOAD", "STICKY_ERROR"],
        "agree": 2,
        "total": 3,
    }
    assert result.outcome == "FLAKY"
    assert s["no-failure"].facts["runs"]["agree"] == 3

    assert cell_code(result, "ondemand-kat") == "STICKY 2/3"
    # a rerun with the same --repeat reuses all of it; another N probes again
    hx.run("debian-12/3.0.20/default", repeat=3, fate_runs=1)
    assert len(hx.client.created) == 3 * len(SCENARIOS)
    hx.run("debian-12/3.0.20/default", repeat=2, fate_runs=1)
    assert len(hx.client.created) == 5 * len(SCENARIOS)
    assert len(hx.client.batches) == 2


def test_a_process_that_died_or_a_twin_that_died_is_run_again_in_one_more_container(
    hx: Harness,
) -> None:
    """--fate-runs: a scenario whose C probe died after its document, or whose twin did, is
    run again up to N runs of the C probe, all in one more container; its fate is k/N."""
    hx.client.twin_answers = True
    doc = json.dumps(fixture_doc("nodelete", "ondemand-kat")).encode()
    hx.client.plan_queue["ondemand-kat"] = [
        ProbePlan(139, doc),  # SIGSEGV after the document
        ProbePlan(0, doc),
        ProbePlan(134, doc),  # SIGABRT
        ProbePlan(0, doc),
        ProbePlan(139, doc),
    ]
    twin_doc = fixture_bytes("nodelete", "no-failure")
    hx.client.twin_plans["no-failure"] = ProbePlan(134, twin_doc)
    [result] = hx.run("debian-12/3.0.20/default", fate_runs=5)
    first, follow_ups = hx.client.batches
    assert [(r.scenario, r.twin) for r in first.runs] == [
        (sc, twin) for sc in SCENARIOS for twin in (False, True)
    ]
    # four more runs of each, no twin, in the order of the scenarios
    assert [(r.scenario, r.twin) for r in follow_ups.runs] == [
        (sc, False) for sc in ("ondemand-kat", "no-failure") for _ in range(4)
    ]
    s = {x.scenario: x for x in result.scenarios}
    died = s["ondemand-kat"]
    assert died.facts["fate"] == {"died": 3, "runs": 5, "ends": {"SIGSEGV": 2, "SIGABRT": 1}}
    assert died.status == "DIED_AFTER_RELOAD" and died.exit_code == 139
    assert "fate of the C probe's runs: died 3/5 (SIGSEGV 2, SIGABRT 1)" in died.evidence
    assert [r.get("follow_up", False) for r in died.repeats or []] == [False] + [True] * 4
    assert died.facts["runs"]["agree"] == 5 and result.outcome == Outcome.OK  # not flaky
    assert cell_code(result, "ondemand-kat") == "DIED 3/5"
    # the C probe survived all five: its fate is shown, its status is its verdict
    assert s["no-failure"].facts["fate"] == {"died": 0, "runs": 5, "ends": {}}
    assert s["no-failure"].status == s["no-failure"].verdict
    assert s["integrity"].facts["fate"] == {"died": 0, "runs": 1, "ends": {}}
    assert s["integrity"].repeats is None  # one run, no follow-up
    assert result.fingerprint["times"]["fate_runs"] == 8
    assert result.fingerprint["times"]["fate_container"] == follow_ups.id[:12]  # for the bench
    # the stored observations give the same rates
    stored = CellResult.from_json(hx.on_disk(result.cell))
    assert [rejudge(x).facts for x in stored.scenarios] == [x.facts for x in result.scenarios]
    assert "ondemand-kat (probe, follow-up): exit=134" in Path(result.logs["probe"]).read_text()


def test_a_death_gives_its_partner_a_rate_too(hx: Harness) -> None:
    """The control no-failure died; its partner ondemand-kat survived its one run. Both get
    their rate: a single survival of a scenario whose kin dies is no fact (and two runs
    would disagree on it by chance)."""
    doc = json.dumps(fixture_doc("nodelete", "no-failure")).encode()
    hx.client.plan_queue["no-failure"] = [ProbePlan(139, doc)] * 5
    [result] = hx.run("debian-12/3.0.20/default", fate_runs=5)
    _, follow_ups = hx.client.batches
    assert [r.scenario for r in follow_ups.runs] == [
        sc for sc in ("ondemand-kat", "no-failure") for _ in range(4)
    ]
    s = {x.scenario: x for x in result.scenarios}
    assert s["no-failure"].facts["fate"]["died"] == 5
    assert s["ondemand-kat"].facts["fate"] == {"died": 0, "runs": 5, "ends": {}}
    assert s["load-kat"].facts["fate"]["runs"] == 1  # no kin of the one that died


def test_fate_runs_1_makes_no_follow_ups_and_the_setting_is_part_of_the_inputs(
    hx: Harness,
) -> None:
    doc = json.dumps(fixture_doc("nodelete", "ondemand-kat")).encode()
    # exit 1 after the document: a death with no crash record to want, so a rerun reuses it
    hx.client.plans[("debian-12-3.0.20-default", "ondemand-kat")] = ProbePlan(1, doc)
    [result] = hx.run("debian-12/3.0.20/default", fate_runs=1)
    assert len(hx.client.batches) == 1
    died = next(x for x in result.scenarios if x.scenario == "ondemand-kat")
    assert died.facts["fate"] == {"died": 1, "runs": 1, "ends": {"exit 1": 1}}
    assert cell_code(result, "ondemand-kat") == "DIED"  # one run: no rate to show
    hx.run("debian-12/3.0.20/default", fate_runs=1)
    assert len(hx.client.batches) == 1  # same inputs: reused
    [again] = hx.run("debian-12/3.0.20/default", fate_runs=3)
    assert len(hx.client.batches) == 3  # probed again, with two follow-ups
    died = next(x for x in again.scenarios if x.scenario == "ondemand-kat")
    assert died.facts["fate"] == {"died": 3, "runs": 3, "ends": {"exit 1": 3}}


def test_lock_records_what_the_run_used_and_locked_refuses_a_change(hx: Harness) -> None:
    runner = hx.runner(1)
    runner.run(hx.cells("debian-12/3.0.20/default"))
    used = runner.lockfile.used
    assert used.matrix_digest == hx.definition.digest
    assert used.sources == {"3.0.20": SHA}
    assert set(used.base_images) == {"debian:bookworm"}
    # the same inputs pass the lock
    hx.run("debian-12/3.0.20/default", locked=used)
    # a base image that changed under its tag stops the whole run
    changed = Lock(used.matrix_digest, {"debian:bookworm": "sha256:other"}, used.sources)
    with pytest.raises(LockMismatch, match="base image debian:bookworm"):
        hx.run("debian-12/3.0.20/no-pinshared", locked=changed)
    assert not hx.out.cell_path("debian-12/3.0.20/no-pinshared").exists()
    other = Lock(used.matrix_digest, used.base_images, {"3.0.20": "0" * 64})
    with pytest.raises(LockMismatch, match=r"OpenSSL 3\.0\.20"):
        hx.run("debian-12/3.0.20/no-pinshared", locked=other)


def test_ctrl_c_keeps_finished_cells_and_a_rerun_does_not_redo_them(hx: Harness) -> None:
    doc = fixture_bytes("unpinned", "integrity")  # what the probe prints when left alone
    hx.client.plans[(":debian-12-3.0.20-no-pinshared", "integrity")] = ProbePlan(
        stdout=doc, interrupt=True
    )
    with pytest.raises(KeyboardInterrupt):
        hx.run("debian-12/3.0.20/default", "debian-12/3.0.20/no-pinshared")
    assert hx.out.read_cell("debian-12/3.0.20/default") is not None
    assert not hx.out.cell_path("debian-12/3.0.20/no-pinshared").exists()
    assert hx.client.batches and all(c.removed for c in hx.client.batches)  # interrupted too
    assert all(s.closed for c in hx.client.batches for s in c.streams)
    before = len(hx.client.created)
    results = hx.run("debian-12/3.0.20/default", "debian-12/3.0.20/no-pinshared")
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    created = hx.client.created[before:]
    assert {c.tags[0] for c in created} == {image_tag(hx.cells("debian-12/3.0.20/no-pinshared")[0])}


def test_skew_fingerprint_names_its_part_images(hx: Harness) -> None:
    [result] = hx.run("debian-12/3.6.3/fips-3.0.20")
    parts = hx.on_disk(result.cell)["fingerprint"]["image"]["parts"]
    assert parts == [
        image_tag(hx.cells("debian-12/3.6.3/no-pinshared")[0]),
        image_tag(hx.cells("debian-12/3.0.20/no-pinshared")[0]),
    ]


def test_a_platforms_builds_wait_until_its_first_has_passed_the_steps_before_compile(
    hx: Harness,
) -> None:
    # Two builders, two compile groups of one platform: were both to run the compile
    # stage's ARG steps at once, each would make its own layers, and a later cell could
    # find its compile under the other chain and compile again.
    hx.client.steps_before_compile_seconds = 0.2
    cells = hx.cells("debian-12/3.0.20/default", "debian-12/3.6.3/default")
    results = hx.runner(len(cells), parallel=2).run(cells)
    assert {r.outcome for r in results} == {Outcome.OK}
    order = [t for t in hx.client.build_order if "stages" not in t]
    first, second = (t for t in order if not t.startswith("compile step"))
    assert order.index(f"compile step of {first}") < order.index(second)


def test_stages_of_platforms_on_one_base_image_are_built_one_at_a_time(hx: Harness) -> None:
    # debian-12 and musl-debian-12 start from one base image and share their first package
    # step: built at once, that layer would be made twice, and the engine's cache would
    # then lead a later cell away from its compile. A builder that needs musl's stages
    # while the stages worker builds debian's waits for them.
    hx.client.stage_build_seconds = 0.3
    cells = hx.cells("debian-12/3.0.20/default", "musl-debian-12/3.0.20/default")
    results = hx.runner(len(cells), parallel=2).run(cells)
    assert {r.outcome for r in results} == {Outcome.OK}
    first, second = sorted(hx.client.stage_times.values())
    assert first[1] <= second[0]


def test_the_next_platforms_base_is_made_while_this_ones_stages_are_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bases come from workers of their own: with no base image here, the first two
    platforms' debootstraps run at once (each would leave a core idle before the first
    compile), not one after the other's stages."""
    h = make_harness(tmp_path, monkeypatch)
    path = tmp_path / "matrix.toml"
    path.write_text(path.read_text() + TRIXIE)
    h.definition = load_definition(path)
    h.client = FakeDockerClient(local_images=())
    h.client.stage_build_seconds = 0.3
    made: dict[str, tuple[float, float]] = {}

    def debootstrap(client: FakeDockerClient, suite: str, ref: str, *args: object) -> str:
        started = time.monotonic()
        time.sleep(0.3)
        made[suite] = (started, time.monotonic())
        return client.add_image(ref).id

    monkeypatch.setattr(baseimages, "_debootstrap_import", debootstrap)
    results = h.run("debian-12/3.0.20/default", "debian-13/3.0.20/default")
    assert {r.outcome for r in results} == {Outcome.OK}
    stages_12 = h.client.stage_times["fips-matrix/stages:debian-12"]
    stages_13 = h.client.stage_times["fips-matrix/stages:debian-13"]
    assert made["bookworm"][1] <= stages_12[0]  # each platform's own base first
    assert made["trixie"][1] <= stages_13[0]
    assert made["trixie"][0] < made["bookworm"][1]  # the next one's at the same time
