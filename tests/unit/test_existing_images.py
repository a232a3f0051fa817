"""Existing images as platforms, against the fake engine: the matrix file's image platform, the
portable probe's build and volume, discovery (real documents of the real probe, fixtures/
discovery-*.json) and the SKIPPED reasons it gives, the probe runs in the image as it is, and
`fips-matrix probe`'s arguments."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fakes import FakeDockerClient, FakeVolume, ProbePlan, discovery_bytes, fixture_bytes
from support.harness import FACTS, SCENARIOS, Harness, make_harness

from matrix import assets, cli, session
from matrix.commands import probe as probe_command
from matrix.errors import DefinitionError, MatrixError
from matrix.execute import engine
from matrix.execute.images import portable
from matrix.execute.images.discovery import Discovered, choose, configured_module_mac, skip_reason
from matrix.execute.probes.batch import (
    OUTPUT_CAP,
    BatchRun,
    ProbeRun,
    container_options,
    parse_batch,
)
from matrix.execute.run.schedule import plan
from matrix.model.cells import expand
from matrix.model.definition import NAME_RE, load_definition
from matrix.model.imageref import reference_problem
from matrix.model.vocabulary import CellKind, Outcome
from matrix.report.images import describe
from matrix.report.layout import layout
from matrix.results.records import ID_PART, CellResult

APP = "registry.example.com/payments-api:2.14"
APP_CELL = "payments-api/image/as-is"


def doc(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(discovery_bytes(name))
    return data


def discovered(name: str) -> Discovered:
    return Discovered(name.split("-")[-1], doc(name))


def image_matrix(tmp: Path, body: str, with_sources: bool = True) -> Path:
    head = f"schema = 1\nscenarios = {json.dumps(list(SCENARIOS))}\n"
    sources = (
        '[sources."3.0.20"]\nsha256 = "' + "0" * 64 + '"\ndebian_orig = true\n'
        "[variants.default]\nconfigure = []\n"
        if with_sources
        else ""
    )
    path = tmp / "images.toml"
    path.write_text(head + body + sources)
    return path


# --- the matrix file -------------------------------------------------------------------


def test_an_image_platform_is_one_cell_built_by_nobody(tmp_path: Path) -> None:
    path = image_matrix(
        tmp_path,
        f"""
[platforms.payments-api]
image = "{APP}"
libcrypto = "/usr/lib64/libcrypto.so.3"
modules = "/usr/lib64/ossl-modules"
fips_config = "/etc/ssl/fipsmodule.cnf"
module_mac = "image"

[platforms.other]
image = "sha256:{"a" * 64}"
""",
        with_sources=False,  # nothing is built: a matrix of images needs no sources
    )
    definition = load_definition(path)
    cells = expand(definition)
    assert [c.id for c in cells] == [APP_CELL, "other/image/as-is"]
    assert {c.kind for c in cells} == {CellKind.IMAGE}
    spec = cells[0].platform.image
    assert spec is not None
    assert (spec.ref, spec.libcrypto, spec.modules, spec.fips_config, spec.module_mac) == (
        APP,
        "/usr/lib64/libcrypto.so.3",
        "/usr/lib64/ossl-modules",
        "/etc/ssl/fipsmodule.cnf",
        "image",
    )
    other = cells[1].platform.image
    assert other is not None and other.libcrypto is None and other.module_mac == "computed"
    the_plan = plan(cells)
    assert not the_plan.groups and the_plan.beside == tuple(cells)  # probed beside compiles


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('image = "x:1"\nlibcrypto = "lib/libcrypto.so.3"', "want an absolute path in the image"),
        ('image = "x:1"\nmodules = "ossl-modules"', "modules = 'ossl-modules': want an absolute"),
        ('image = "x:1"\nmodule_mac = "config"', "must be one of computed, image"),
        ('image = "x:1"\ndockerfile = "debian.Dockerfile"', "unknown key 'dockerfile'"),
        ('image = "not an image"', "is not an image reference"),
        ('image = "UPPER/x:1"', "repository name 'UPPER/x' must be lowercase"),
        ('image = "x@sha256:abc"', "digest 'sha256:abc' is not ALGORITHM:HEX"),
        (f'image = "{"a" * 300}"', "repository name is 300 characters long: at most 255"),
    ],
)
def test_an_image_platform_refuses_what_it_cannot_use(
    tmp_path: Path, body: str, message: str
) -> None:
    path = image_matrix(tmp_path, f"\n[platforms.app]\n{body}\n")
    with pytest.raises(DefinitionError, match=message) as info:
        load_definition(path)
    assert f"{path}:" in str(info.value)  # names the file and line, as every matrix error


def test_a_bare_soname_is_a_libcrypto_too(tmp_path: Path) -> None:
    path = image_matrix(
        tmp_path, '\n[platforms.app]\nimage = "x:1"\nlibcrypto = "libcrypto.so.3"\n'
    )
    [cell] = expand(load_definition(path))
    assert cell.platform.image is not None and cell.platform.image.libcrypto == "libcrypto.so.3"


def test_platforms_built_here_still_need_sources(tmp_path: Path) -> None:
    body = '\n[platforms.d]\ndockerfile = "debian.Dockerfile"\nbase_image = "d:1"\nlibc = "glibc"\n'
    with pytest.raises(DefinitionError, match="missing key 'sources'"):
        load_definition(image_matrix(tmp_path, body, with_sources=False))


# --- discovery documents ---------------------------------------------------------------


def test_discovery_of_a_cell_image_names_its_files_and_how_each_was_found() -> None:
    found = discovered("cell-glibc")
    libcrypto, module = found.libcrypto, found.module
    assert libcrypto is not None and module is not None
    assert libcrypto.realpath == "/opt/fips-matrix/lib/libcrypto.so.3"
    assert libcrypto.version is not None and libcrypto.version.startswith("OpenSSL 3.0.20")
    assert libcrypto.soname == "libcrypto.so.3"
    assert "RUNPATH" in libcrypto.why
    assert any(
        f.startswith("RUNPATH of /opt/fips-matrix/bin/fips_probe") for f in libcrypto.found_by
    )
    assert module.path == "/opt/fips-matrix/lib/ossl-modules/fips.so"
    assert module.nodelete is True and "MODULESDIR" in module.why
    assert skip_reason(found) is None
    summary = found.summary({"from": "computed"})
    assert summary["libc"] == {
        "name": "glibc",
        "version": "2.36",
        "loader": "/lib64/ld-linux-x86-64.so.2",
    }
    assert summary["libcrypto"]["version"] == libcrypto.version
    assert summary["executables"] == ["/opt/fips-matrix/bin/fips_probe"]
    json.dumps(summary)  # it goes into a results file as it is


def test_an_image_without_openssl_3_says_what_was_looked_for_and_where() -> None:
    reason = skip_reason(discovered("bookworm-glibc"))
    assert reason is not None
    assert reason.startswith(
        "the image holds no OpenSSL 3 or later libcrypto the probe can use, and no FIPS "
        "provider (fips.so): no libcrypto.so.3 or libcrypto.so.4 found"
    )
    # the places, named: directories for libcrypto, paths for fips.so
    assert "libcrypto.so.4 in /usr/local/lib, " in reason
    assert "/usr/lib/x86_64-linux-gnu, " in reason
    assert "by name through the image's loader" in reason
    assert "Looked for fips.so at /usr/lib/x86_64-linux-gnu/ossl-modules/fips.so, " in reason


def test_an_image_with_openssl_but_no_fips_provider_names_its_libcrypto() -> None:
    reason = skip_reason(discovered("trixie-glibc"))
    assert reason is not None
    assert reason.startswith(
        "the image holds libcrypto /usr/lib/x86_64-linux-gnu/libcrypto.so.3 (OpenSSL 3.5."
    )
    assert "but no FIPS provider (fips.so): no fips.so found (11 paths tried" in reason
    assert "Looked for libcrypto" not in reason  # it was found
    assert "/usr/lib64/ossl-modules/fips.so" in reason


def run_of(family: str, code: int | None, stdout: bytes = b"", stderr: str = "") -> ProbeRun:
    return ProbeRun(f"discover-{family}", code, False, stdout.decode(), stderr, 0.1)


def test_the_family_whose_probe_runs_in_the_image_is_chosen() -> None:
    musl = choose(
        [
            run_of("glibc", 127, stderr="fips_batch: cannot execute: No such file"),
            run_of("musl", 0, discovery_bytes("musl-musl")),
        ],
        portable.FAMILIES,
    )
    assert isinstance(musl, Discovered) and musl.family == "musl"
    assert musl.libc["name"] == "musl"
    # both ran: the one that found a libcrypto it can use wins
    both = choose(
        [run_of("glibc", 0, discovery_bytes("bookworm-glibc")), run_of("musl", 0, b"{}")],
        portable.FAMILIES,
    )
    assert isinstance(both, Discovered) and both.family == "glibc"
    neither = choose(
        [run_of("glibc", 127, stderr="no such file"), run_of("musl", 127)], portable.FAMILIES
    )
    assert isinstance(neither, str)
    assert neither.startswith("neither the glibc nor the musl probe could run in the image")
    assert "glibc: exit 127: no such file" in neither


def test_a_discovery_that_hung_or_said_too_much_says_so() -> None:
    """A discovery that ran into the probe timeout (a FIFO, a blocking constructor) read as
    "no dynamic loader ... a static program's image?"; a document over the batch driver's cap
    as "not one JSON document"."""
    hung = dataclasses.replace(run_of("glibc", None, b'{"discovery": 1, "li'), timed_out=True)
    hung = dataclasses.replace(hung, seconds=120.0)
    why = choose([hung, run_of("musl", 127, stderr="no such file")], portable.FAMILIES)
    assert isinstance(why, str)
    assert why.startswith("discovery ran in the image but gave no document: glibc: timed out ")
    assert "after 120 s" in why and "(and musl: exit 127: no such file)" in why
    assert "static program" not in why
    big = b'{"discovery": 1, "x": "' + b"y" * (OUTPUT_CAP - 30)
    runs = parse_batch(
        [BatchRun("discover-glibc", ["p"]), BatchRun("discover-musl", ["p"])],
        b"fips-batch-run 0 exit=0 timed_out=0 seconds=1.000000 stdout=%d stderr=0\n%s"
        b"fips-batch-run 1 exit=127 timed_out=0 seconds=0.000000 stdout=0 stderr=0\n"
        % (OUTPUT_CAP, big[:OUTPUT_CAP]),
    )
    assert runs[0].stdout_cut and not runs[1].stdout_cut
    why = choose(runs, portable.FAMILIES)
    assert isinstance(why, str)
    assert f"glibc: exit 0: stdout was over the batch driver's cap of {OUTPUT_CAP} bytes" in why


def test_the_module_mac_of_the_images_own_configuration() -> None:
    found = discovered("conf-glibc")
    value, path = configured_module_mac(found, None)  # type: ignore[misc]
    assert path == "/etc/app-ssl/fipsmodule.cnf"  # .include'd by $OPENSSL_CONF's openssl.cnf
    assert value.startswith("23:F5:1F:F4") and len(value.split(":")) == 32
    none = configured_module_mac(discovered("cell-glibc"), None)
    assert isinstance(none, str) and none.startswith("the image holds no OpenSSL configuration")


def with_configs(*configs: tuple[str, str, list[str]]) -> Discovered:
    data = doc("cell-glibc")
    data["configs"]["found"] = [
        {"path": path, "realpath": path, "from": how, "text": text} for path, text, how in configs
    ]
    return Discovered("glibc", data)


def test_the_module_mac_is_read_from_the_section_the_providers_name() -> None:
    found = with_configs(
        ("/etc/ssl/openssl.cnf", "[fips_sect]\nmodule-mac = AA:BB\n", ["a usual place"]),
        (
            "/app/openssl.cnf",
            "openssl_conf = init # comment\n[init]\nproviders = provs\n[ provs ]\n"
            'fips = my_fips\n[my_fips]\nmodule-mac = "01:02:03"  # the app\'s\n',
            ["OPENSSL_CONF"],
        ),
    )
    # $OPENSSL_CONF's file first, as the image's OpenSSL reads it
    assert configured_module_mac(found, None) == ("01:02:03", "/app/openssl.cnf")
    # the platform's fips_config first of all
    assert configured_module_mac(found, "/etc/ssl/openssl.cnf") == ("AA:BB", "/etc/ssl/openssl.cnf")
    bad = with_configs(("/a.cnf", "[fips_sect]\nmodule-mac = $ENV::MAC\n", []))
    assert "is not hex bytes" in str(configured_module_mac(bad, None))
    missing = with_configs(("/a.cnf", "[fips_sect]\nactivate = 1\n", []))
    assert configured_module_mac(missing, None) == (
        "no module-mac in [fips_sect] of the image's configuration (/a.cnf)"
    )


DOCUMENT_KEYS = [
    "suggested",
    "libcrypto",
    "fips_modules",
    "configs",
    "found",
    "tried",
    "path",
    "libc",
    "problems",
    "module",
    "libcrypto_usable",
    "text",
    "from",
    "realpath",
]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(DOCUMENT_KEYS),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_any_document_reads_without_an_error(data: Any) -> None:
    found = Discovered("glibc", data if isinstance(data, dict) else {"suggested": data})
    reason = skip_reason(found)
    assert reason is None or isinstance(reason, str)
    json.dumps(found.summary({"from": "computed"}))
    assert isinstance(configured_module_mac(found, None), str | tuple)


# --- runs against the fake engine ------------------------------------------------------


@pytest.fixture
def hi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """The harness's matrix, plus image platforms; the fake engine holds the images."""
    h = make_harness(tmp_path, monkeypatch)
    path = h.definition.path
    path.write_text(
        path.read_text()
        + f"""
[platforms.payments-api]
image = "{APP}"

[platforms.bare]
image = "example/bare:1"

[platforms.conf]
image = "example/conf:1"
module_mac = "image"

[platforms.arm]
image = "example/arm:1"

[platforms.absent]
image = "example/absent:1"
"""
    )
    h.definition = load_definition(path)
    client = h.client
    client.add_image("debian:bullseye")  # the portable probe's builder's base
    app = client.add_image(APP)
    app.entrypoint, app.cmd = ["/opt/app/bin/server"], ["--port", "8443"]
    client.add_image("example/bare:1").cmd = ["/bin/bash"]
    client.add_image("example/conf:1")
    client.add_image("example/arm:1").architecture = "arm64"
    client.discoveries[("example/bare", "glibc")] = ProbePlan(0, discovery_bytes("bookworm-glibc"))
    client.discoveries[("example/conf", "glibc")] = ProbePlan(0, discovery_bytes("conf-glibc"))
    return h


def test_an_existing_image_is_probed_as_it_is(hi: Harness) -> None:
    [result] = hi.run(APP_CELL)
    assert result.outcome == Outcome.OK, result.reason
    assert [s.scenario for s in result.scenarios] == list(SCENARIOS)
    assert result.libc == "glibc" and result.libc_label() == "glibc 2.36"
    client = hi.client
    # the portable probe's builder: its own Dockerfile and sources, on Debian 11's base
    [build] = client.builds
    assert build.tag.startswith(f"{assets.PORTABLE_REPOSITORY}:")
    assert build.kwargs["buildargs"] == {"BASE_IMAGE": "debian:bullseye"}
    assert build.context["Dockerfile"] == assets.PORTABLE_DOCKERFILE.read_bytes()
    assert "probes/portable/ossl_dynamic.c" in build.context
    assert "probes/portable/openssl/evp.h" in build.context
    assert "openssl.tar.gz" not in build.context
    key = build.kwargs["labels"][assets.INPUTS_LABEL]
    # its volume, labelled with the key, filled once from the builder image
    volume = portable.volume_name(key)
    assert client.fills == [volume]
    assert client.volumes.named[volume].labels[assets.PORTABLE_LABEL] == key
    assert key in client.volumes.named[volume].filled
    # discovery: both families in one container, given the image's own programs
    [glibc, musl] = client.discovery_runs
    assert glibc.argv == [
        f"{assets.PORTABLE_MOUNT}/glibc-x86_64/fips_probe",
        "--discover",
        "--exe",
        "/opt/app/bin/server",
        "--exe",
        "--port",  # the command's first word, as the image has it (the probe ignores flags)
    ]
    assert musl.argv[0] == f"{assets.PORTABLE_MOUNT}/musl-x86_64/fips_probe"
    # the probe runs: the portable probe, given the image's libcrypto and fips.so
    runs = client.created
    assert [r.scenario for r in runs] == list(SCENARIOS)
    argv = runs[0].argv
    assert argv[0] == f"{assets.PORTABLE_MOUNT}/glibc-x86_64/fips_probe"
    assert argv[argv.index("--libcrypto") + 1] == "/opt/fips-matrix/lib/libcrypto.so.3"
    assert argv[argv.index("--module") + 1] == "/opt/fips-matrix/lib/ossl-modules/fips.so"
    assert argv[argv.index("--canary") + 1].startswith(f"{assets.PORTABLE_MOUNT}/glibc-x86_64/")
    assert "--module-mac" not in argv  # computed, as the built-in probe does
    # every container of the image: the hardening of every probe container, the volume
    # read-only, the image's entrypoint and command set aside, its environment kept
    for container in [c for c in client.batches if c.image == client.images_by_ref[APP].id]:
        options = dict(container.kwargs)
        assert options.pop("volumes") == {volume: {"bind": assets.PORTABLE_MOUNT, "mode": "ro"}}
        assert options.pop("entrypoint") == []
        assert options.pop("command")[0] == f"{assets.PORTABLE_MOUNT}/glibc-x86_64/fips_batch"
        wanted = container_options(str(container.labels[assets.PROBE_LABEL]))
        assert options == wanted and "environment" not in options
    # nothing of the image changed, nothing built from it
    assert client.images_by_ref[APP].tags == [APP]
    assert all(APP not in str(b.kwargs) for b in client.builds)
    # the twin: python3 is not in this image, and the cell says so
    assert result.scenarios[0].witness is not None
    assert "unavailable" in result.scenarios[0].witness
    on_disk = hi.on_disk(APP_CELL)
    fp = on_disk["fingerprint"]
    assert fp["discovery"]["libcrypto"]["realpath"] == "/opt/fips-matrix/lib/libcrypto.so.3"
    assert fp["discovery"]["module"]["why"] == "the suggested libcrypto's compiled-in MODULESDIR"
    assert fp["portable_probe"]["volume"] == volume
    assert fp["image"]["tag"] == APP and fp["image"]["parts"] == [build.tag]
    assert fp["second_witness"] == "unavailable: fips_batch: cannot execute python3: No such file"
    assert Path(on_disk["logs"]["discovery"]).read_text().count("### discover-") == 2


def test_the_portable_probe_is_built_once_and_found_again(hi: Harness) -> None:
    hi.run(APP_CELL, "bare/image/as-is")
    assert len(hi.client.builds) == 1 and len(hi.client.fills) == 1
    [again] = hi.run(APP_CELL)
    assert len(hi.client.builds) == 1  # found by its tag and inputs label
    assert again.outcome == Outcome.OK
    # the same image, probe and files: the earlier probe runs stand
    assert "its probe runs are reused" in hi.console.getvalue()


def test_a_twin_runs_where_the_image_has_python(hi: Harness) -> None:
    hi.client.twin_answers = True
    [result] = hi.run(APP_CELL)
    twins = hi.client.twins
    assert len(twins) == len(SCENARIOS)
    assert twins[0].argv[twins[0].argv.index("--libcrypto") + 1] == (
        "/opt/fips-matrix/lib/libcrypto.so.3"
    )
    assert result.scenarios[0].facts["witness_verdict"] == result.scenarios[0].verdict


def test_an_image_with_no_openssl_is_skipped_with_where_it_looked(hi: Harness) -> None:
    [result] = hi.run("bare/image/as-is")
    assert result.outcome == Outcome.SKIPPED
    assert result.reason.startswith("the image holds no OpenSSL 3 or later libcrypto")
    assert not hi.client.created  # no probe run
    fp = hi.on_disk("bare/image/as-is")["fingerprint"]
    assert fp["image"]["tag"] == "example/bare:1"
    assert fp["discovery"]["libcrypto"] is None and fp["discovery"]["problems"]
    assert "--exe" in hi.client.discovery_runs[0].argv  # its command's /bin/bash


def test_the_module_mac_is_taken_from_the_image_when_asked(hi: Harness) -> None:
    hi.client.twin_answers = True
    [result] = hi.run("conf/image/as-is")
    assert result.outcome == Outcome.OK
    argv = hi.client.created[0].argv
    mac = argv[argv.index("--module-mac") + 1]
    assert mac.startswith("23:F5:1F:F4")
    twin = hi.client.twins[0].argv
    assert twin[twin.index("--module-mac") + 1] == mac  # the second witness is given it too
    fp = hi.on_disk("conf/image/as-is")["fingerprint"]["discovery"]
    assert fp["module_mac"] == {
        "from": "image",
        "value": mac,
        "config": "/etc/app-ssl/fipsmodule.cnf",
    }
    assert fp["environment"]["OPENSSL_CONF"] == "/etc/app-ssl/openssl.cnf"


def test_no_module_mac_in_the_image_is_a_skip_when_it_was_asked_for(hi: Harness) -> None:
    hi.client.discoveries[("example/conf", "glibc")] = ProbePlan(0, discovery_bytes("cell-glibc"))
    [result] = hi.run("conf/image/as-is")
    assert result.outcome == Outcome.SKIPPED
    assert result.reason.startswith(
        'module_mac = "image", but the image holds no OpenSSL configuration: looked at '
    )


def test_images_of_another_architecture_or_not_here_are_skipped(hi: Harness) -> None:
    arm, absent = hi.run("arm/image/as-is", "absent/image/as-is")
    assert arm.outcome == absent.outcome == Outcome.SKIPPED
    assert arm.reason == (
        "the image is linux/arm64; the portable probe is built for this engine's x86_64 only"
    )
    assert absent.reason.startswith("image example/absent:1 is not in the engine and cannot be ")
    assert "example/absent:1" in hi.client.pulls  # it tried
    hi.client.pullable.add("example/absent:1")
    [pulled] = hi.run("absent/image/as-is")
    assert pulled.outcome == Outcome.OK
    assert hi.on_disk("absent/image/as-is")["fingerprint"]["base_image"]["origin"] == "pulled"


def test_an_image_where_no_probe_runs_is_skipped(hi: Harness) -> None:
    hi.client.discoveries[(APP, "glibc")] = ProbePlan(127, b"", b"exec: no such file\n")
    [result] = hi.run(APP_CELL)
    assert result.outcome == Outcome.SKIPPED
    assert result.reason.startswith("neither the glibc nor the musl probe could run in the image")


def test_volumes_of_other_inputs_are_pruned_by_the_label_only(hi: Harness) -> None:
    volumes = hi.client.volumes.named
    label = assets.PORTABLE_LABEL
    volumes["old"] = FakeVolume("old", {label: "0" * 64})
    volumes["busy"] = FakeVolume("busy", {label: "1" * 64}, in_use=True)
    volumes["someone"] = FakeVolume("someone", {"com.example": "data"})
    hi.run(APP_CELL)
    assert volumes["old"].removed
    assert not volumes["busy"].removed  # a run of other inputs still uses it
    assert not volumes["someone"].removed
    assert not any(v.removed for v in volumes.values() if v.name.startswith("fips-matrix-port"))


def test_a_volume_that_cannot_be_filled_is_the_tools_error(hi: Harness) -> None:
    hi.client.fill_exit = 1
    [result] = hi.run(APP_CELL)
    assert result.outcome == Outcome.ERROR
    assert "filling volume fips-matrix-portable-" in result.reason
    assert "No space left on device" in result.reason


def test_images_sit_beside_built_cells_in_one_table(hi: Harness) -> None:
    results = hi.run("debian-12/3.0.20/default", APP_CELL)
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    shown = layout(results)
    assert [c.platform for c in shown.columns] == ["debian-12", "payments-api"]
    assert shown.rows == [("3.0.20", "default"), ("image", "as-is")]


# --- fips-matrix probe -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "names"),
    [
        ([APP], ["payments-api-2.14"]),
        (["fips-matrix/cell:debian-12-3.0.20-default"], ["cell-debian-12-3.0.20-default"]),
        (["a/app:1", "b/app:1", "c/App:1"], ["app-1", "app-1-2", "app-1-3"]),
        (["sha256:" + "ab" * 32, "24d8d2b6679e"], ["image-abababababab", "image-24d8d2b6679e"]),
        (["ubuntu"], ["ubuntu"]),
        (["localhost:5000/team/app@sha256:" + "c" * 64], ["app-cccccccccccc"]),
        (["x/_weird__:v1.2_rc"], ["weird__-v1.2_rc"]),
    ],
)
def test_platform_names_made_of_image_references_are_valid_and_unique(
    images: list[str], names: list[str]
) -> None:
    made = probe_command.platform_names(images)
    assert made == names
    assert all(NAME_RE.match(n) and ID_PART.match(n) for n in made)


@given(st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,80}", fullmatch=True), max_size=6))
def test_any_image_references_make_valid_unique_names(images: list[str]) -> None:
    names = probe_command.platform_names(images)
    assert len(set(names)) == len(names)
    assert all(NAME_RE.match(n) and len(n) <= 100 for n in names)


def probe_args(*argv: str) -> argparse.Namespace:
    return cli.parser().parse_args(["probe", *argv])


def test_the_probe_commands_matrix_holds_the_images_and_the_overrides(tmp_path: Path) -> None:
    args = probe_args(
        APP,
        "fips-matrix/cell:x",
        "--libcrypto",
        "/usr/lib64/libcrypto.so.3",
        "--modules",
        "/usr/lib64/ossl-modules",
        "--fips-config",
        "/etc/pki/tls/fipsmodule.cnf",
        "--module-mac-from-image",
        "--scenario",
        "no-failure",
    )
    path = tmp_path / "probe.toml"
    path.write_text(probe_command.matrix_text(args.images, args))
    definition = load_definition(path)
    cells = expand(definition)
    assert [c.id for c in cells] == [APP_CELL.replace("api", "api-2.14"), "cell-x/image/as-is"]
    assert definition.scenarios == ("no-failure",)
    for cell in cells:
        spec = cell.platform.image
        assert spec is not None
        assert spec.libcrypto == "/usr/lib64/libcrypto.so.3"
        assert spec.modules == "/usr/lib64/ossl-modules"
        assert spec.fips_config == "/etc/pki/tls/fipsmodule.cnf"
        assert spec.module_mac == "image"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bad image"], "'bad image' is not an image reference"),
        # the engine refused these with raw API text in a cell ERROR
        (
            ["UPPER/x:1"],
            "'UPPER/x:1' is not an image reference (name:tag, name@digest, id): "
            "repository name 'UPPER/x' must be lowercase",
        ),
        (["x@sha256:abc"], "digest 'sha256:abc' is not ALGORITHM:HEX (sha256: and 64 hex"),
        (["x@sha256:" + "A" * 64], "a sha256 digest is 64 lowercase hex digits"),
        (["a" * 300], "repository name is 300 characters long: at most 255"),
        (["x:" + "t" * 129], "tag is 129 characters long: at most 128"),
        (["x:1", "--libcrypto", "lib/x.so"], "--libcrypto 'lib/x.so': want an absolute path"),
        (["x:1", "--fips-config", "fips.cnf"], "--fips-config 'fips.cnf': want an absolute"),
        (["x:1", "--scenario", "reboot"], "--scenario 'reboot': not a scenario"),
        (["x:1", "--repeat", "0"], "--repeat must be a whole number from 1 to 100"),
        (["x:1", "--probe-timeout", "nan"], "--probe-timeout must be a finite number"),
    ],
)
def test_the_probe_command_refuses_bad_arguments_before_anything_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    def no_engine() -> None:
        raise AssertionError("the engine must not be asked")

    monkeypatch.setattr(engine, "connect", no_engine)
    assert cli.main(["probe", *argv, "--results", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().out
    with pytest.raises(MatrixError, match="not an image reference"):
        probe_command.matrix_text(["a b"], probe_args("x:1"))


@pytest.mark.parametrize(
    "ref",
    [
        "x:1",
        "debian:bookworm",
        "fips-matrix/base-debian:bookworm",
        "Reg.Example:5000/team/app:v1.2-rc_3",
        "localhost/a__b/c--d/e.f",
        "[::1]:5000/x",
        "x@sha256:" + "a" * 64,
        "x:1@sha256:" + "0" * 64,
        "sha256:" + "b" * 64,
        "abcdef012345",
    ],
)
def test_references_the_engine_takes_are_taken(ref: str) -> None:
    assert reference_problem(ref) is None


def test_the_probe_command_needs_an_image(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["probe"])
    assert "IMAGE" in capsys.readouterr().err


def test_fips_matrix_probe_runs_the_images_through_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeDockerClient(("debian:bullseye", APP, "example/bare:1"))
    client.discoveries[("example/bare", "glibc")] = ProbePlan(0, discovery_bytes("trixie-glibc"))
    monkeypatch.setattr(engine, "connect", lambda: client)
    monkeypatch.setattr(engine, "facts", lambda c: FACTS)
    results = tmp_path / "probe"
    code = cli.main(["probe", APP, "example/bare:1", APP, "--results", str(results)])
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads((results / "summary.json").read_text())
    assert summary["run"]["cells"] == ["payments-api-2.14/image/as-is", "bare-1/image/as-is"]
    assert summary["run"]["matrix"] == str(results / "probe.toml")
    for report in ("table.md", "report.html", "junit.xml"):
        assert "payments-api-2.14" in (results / report).read_text(), report
    # the page's fingerprint of the cell: what its probe was given, and why
    html = (results / "report.html").read_text()
    assert "/opt/fips-matrix/lib/libcrypto.so.3 (OpenSSL 3.0.20 7 Apr 2026): needed by" in html
    assert "STICKY" in out and "skipped" in out
    assert "but no FIPS provider (fips.so)" in out
    # what each image holds, after the tables
    assert "payments-api-2.14 (registry.example.com/payments-api:2.14): glibc 2.36" in out
    assert "  libcrypto: /opt/fips-matrix/lib/libcrypto.so.3 (OpenSSL 3.0.20" in out
    # only images skipped: nothing measured, a CI job must not pass on it
    assert cli.main(["probe", "example/bare:1", "--results", str(results)]) == 1
    assert "nothing was measured" in capsys.readouterr().out
    assert cli.main(["probe", "example/bare:1", "--results", str(results), "--allow-empty"]) == 0


def test_image_cells_merge_and_diff_like_any_other(
    hi: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two jobs of one matrix, a built cell and an image's, merge into one table; a later run
    where the image's verdicts changed shows in the diff, by cell."""
    monkeypatch.setattr(engine, "connect", lambda: hi.client)
    monkeypatch.setattr(engine, "facts", lambda c: FACTS)
    monkeypatch.setattr(session, "debian_mirror", lambda: None)
    root = hi.tmp
    run = ["run", "--matrix", str(hi.definition.path), "--cache-dir", str(root / "cache")]
    assert cli.main([*run, "--results", str(root / "a"), "--only", "debian-12/3.0.20/*"]) == 0
    assert cli.main([*run, "--results", str(root / "b"), "--only", APP_CELL]) == 0
    merged = root / "merged"
    assert cli.main(["merge", str(root / "a"), str(root / "b"), "--results", str(merged)]) == 0
    table = (merged / "table.md").read_text()
    assert "payments-api" in table and "debian-12" in table and "image as-is" in table
    # the image changed: its fips.so is now linked without NODELETE
    for scenario in SCENARIOS:
        hi.client.plans[(APP, scenario)] = ProbePlan(0, fixture_bytes("unpinned", scenario))
    app = hi.client.images_by_ref[APP]
    hi.client.add_image(APP, image_id="sha256:" + "e" * 64).entrypoint = app.entrypoint
    later = root / "later"
    assert cli.main([*run, "--results", str(later), "--only", APP_CELL]) == 0
    capsys.readouterr()
    assert cli.main(["diff", str(root / "b"), str(later)]) == 0  # better: not a CI failure
    out = capsys.readouterr().out
    assert APP_CELL in out and "STICKY_ERROR" in out and "CLEAN_RELOAD" in out


def test_what_discovery_could_not_do_is_said_of_a_probed_image() -> None:
    """A 3000-entry LD_LIBRARY_PATH: the directories past discovery's cap are named with the
    image, not only kept in its fingerprint."""
    data = doc("cell-glibc")
    dropped = "2760 directories were not searched (...): 2760 of LD_LIBRARY_PATH"
    data["problems"] = [dropped]
    found = Discovered("glibc", data)
    result = CellResult("app/image/as-is", "app", "glibc", "image", "as-is", Outcome.OK)
    result.fingerprint["discovery"] = found.summary({"from": "computed"})
    assert f"  discovery: {dropped}" in describe([result])
