"""End to end: existing images probed as they are (`fips-matrix probe`), by the portable probe
the tool builds in its own builder image and delivers in a read-only volume.

This project's own cell images, pointed at as if they were a user's, must give the same verdict,
scenario by scenario, as the built-in cells (a third witness of the matrix, beside the C probe
and the cffi twin); the portable probe's documents must hold the same observations as the
built-in probe's. An image with nothing but a loader, libc, libcrypto and fips.so gets a full
verdict; images without OpenSSL 3 or without fips.so are SKIPPED with where discovery looked.
The verdicts themselves are not written here: they come from the built-in cells' real run.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from matrix import assets
from matrix.execute.images import portable
from matrix.execute.probes.batch import BatchRun, run_batch
from matrix.judge import fate as fates
from matrix.model.vocabulary import scenario_status

pytestmark = pytest.mark.e2e

# The built-in cells (test_matrix_e2e.py builds the first three too: the layer cache shares them)
CELLS = (
    "debian-12/3.0.20/default",
    "debian-12/3.0.20/no-pinshared",
    "musl-debian-12/3.0.20/default",
    "debian-13-distro/distro/packaged",  # Debian's own libcrypto 3.5 and packaged fips.so
)
PREFIX = "fips-matrix-e2e-portable"  # the images this test makes
SCRATCH = f"{PREFIX}/scratch:1"  # loader, libc, libcrypto, fips.so: nothing else
NO_FIPS = f"{PREFIX}/trixie-libssl:1"  # Debian 13's base with libssl3t64: no fips.so


def fips_matrix(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "matrix", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)


def cells_of(results: Path) -> dict[str, dict[str, Any]]:
    summary = json.loads((results / "summary.json").read_text())
    out = {}
    for cell in summary["run"]["cells"]:
        path = results / "cells" / f"{assets.slug(cell)}.json"
        out[cell] = json.loads(path.read_text())
    return out


def by_scenario(cell: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["scenario"]: s for s in cell["scenarios"]}


def verdicts(cell: dict[str, Any]) -> dict[str, str]:
    return {s["scenario"]: s["verdict"] for s in cell["scenarios"]}


def same_facts(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """The same reload verdicts, scenario by scenario; a death (a thread's stuck exit is a
    matter of timing) compared as the gate compares it: as a rate, both probes' runs counted."""
    assert verdicts(mine) == verdicts(theirs), mine["cell"]
    for scenario, result in by_scenario(mine).items():
        other = by_scenario(theirs)[scenario]["facts"]
        changed = fates.moved(fates.witnessed(other), fates.witnessed(result["facts"]))
        assert not changed, (mine["cell"], scenario, statuses(mine), statuses(theirs))


def statuses(cell: dict[str, Any]) -> dict[str, str]:
    """What the reports show of each scenario: its verdict, or that the process died."""
    return {s["scenario"]: scenario_status(s["verdict"], s["facts"]) for s in cell["scenarios"]}


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env(timeout=600)
    yield c
    c.close()


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The built-in cells, from a real run of the tool."""
    root = tmp_path_factory.mktemp("portable-builtin")
    args = ["run", "--results", str(root / "results"), "--cache-dir", str(root / "cache")]
    done = fips_matrix(*args, *(a for cell in CELLS for a in ("--only", cell)))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    cells = cells_of(root / "results")
    assert list(cells) == list(CELLS)
    return cells


@pytest.fixture(scope="module")
def probed(
    builtin: dict[str, dict[str, Any]],
    client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, dict[str, Any]], str, dict[str, Any]]:
    """`fips-matrix probe` of the built-in cells' images, by id (exactly the images the cells
    measured): cell id -> the image's cell, the command's output, and the images' state
    before."""
    ids = [builtin[cell]["fingerprint"]["image"]["id"] for cell in CELLS]
    before = {i: (client.images.get(i).id, sorted(client.images.get(i).tags)) for i in ids}
    results = tmp_path_factory.mktemp("portable-probe") / "results"
    done = fips_matrix("probe", *ids, "--results", str(results))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    cells = cells_of(results)
    assert len(cells) == len(CELLS)
    return dict(zip(CELLS, cells.values(), strict=True)), done.stdout, before


def observations(doc: dict[str, Any]) -> dict[str, Any]:
    """What both probes observe, step by step (not times, paths of their own or versions)."""
    base = doc["baseline"]
    out: dict[str, Any] = {
        "baseline": [base[k] for k in ("module_nodelete", "libc_dlclose_unmaps", "mappings")]
        + [base["noload_loaded"], base["module_sha256"]]
    }
    for step in doc["steps"]:
        out[step["name"]] = {
            **{k: step[k] for k in ("ok", "status", "digest_ok", "mappings", "noload_loaded")},
            "self_tests": step["self_tests"],
            "errors": [e["reason"] for e in step["errors"]],
        }
    return out


def without_timing(doc: dict[str, Any]) -> dict[str, Any]:
    """The worker thread's rounds depend on timing (how many fit in a step, which call met
    the error state first), as between two runs of one probe: left out."""
    return {k: v for k, v in observations(doc).items() if not k.startswith("worker")}


def test_own_cell_images_get_the_built_in_cells_verdicts_scenario_by_scenario(
    builtin: dict[str, dict[str, Any]],
    probed: tuple[dict[str, dict[str, Any]], str, dict[str, Any]],
) -> None:
    images, _, _ = probed
    for cell in CELLS:
        mine, theirs = images[cell], builtin[cell]
        assert mine["outcome"] == theirs["outcome"] == "OK", (cell, mine["reason"])
        assert mine["cell"].endswith("/image/as-is")
        same_facts(mine, theirs)
        # the same files: the fips.so the built-in probe loaded, on the same libc
        assert mine["fingerprint"]["fips_so_sha256"] == theirs["fingerprint"]["fips_so_sha256"]
        assert mine["fingerprint"]["libc"] == theirs["fingerprint"]["libc"]
        assert mine["libc"] == theirs["libc"]
        for scenario, result in by_scenario(mine).items():
            doc = result["probe"]
            assert doc["portable"]["probe"] == "portable", (cell, scenario)
            assert doc["portable"]["built_for"].startswith(mine["libc"])
            reference = by_scenario(theirs)[scenario]["probe"]
            assert doc["versions"]["openssl"] == reference["versions"]["openssl"]
            assert without_timing(doc) == without_timing(reference), (cell, scenario)


def test_discovery_finds_the_cells_own_openssl(
    probed: tuple[dict[str, dict[str, Any]], str, dict[str, Any]],
) -> None:
    images, _, _ = probed
    for cell, result in images.items():
        found = result["fingerprint"]["discovery"]
        if cell.startswith("debian-13-distro"):
            # Debian's libcrypto by name, and its packaged fips.so in libcrypto's MODULESDIR
            assert found["libcrypto"]["realpath"] == "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
            assert found["libcrypto"]["version"].startswith("OpenSSL 3.")
            assert found["module"]["path"] == "/usr/lib/x86_64-linux-gnu/ossl-modules/fips.so"
        else:
            # beside Debian's own libcrypto (the glibc cells' Python has one): the cell's, found
            # through the RUNPATH of the image's entrypoint
            assert found["libcrypto"]["realpath"] == "/opt/fips-matrix/lib/libcrypto.so.3"
            assert found["libcrypto"]["why"].startswith("needed by the executable")
            assert found["libcrypto"]["version"].startswith("OpenSSL 3.0.20")
            assert found["module"]["path"] == "/opt/fips-matrix/lib/ossl-modules/fips.so"
        assert found["family"] == result["libc"]
        assert found["libc"]["version"][0].isdigit()
        assert found["executables"] == ["/opt/fips-matrix/bin/fips_probe"]


def test_the_twin_runs_where_the_image_has_python_and_says_so_where_not(
    probed: tuple[dict[str, dict[str, Any]], str, dict[str, Any]],
) -> None:
    images, _, _ = probed
    for cell, result in images.items():
        witness = result["fingerprint"]["second_witness"]
        if cell.startswith("musl"):  # no Python in the musl runtime image
            assert witness.startswith("unavailable: "), witness
            assert "python3" in witness
            assert "unavailable" in result["scenarios"][0]["witness"]
            assert all(s["verdict"] != "DISAGREEMENT" for s in result["scenarios"])
            continue
        assert witness == "cffi"
        for s in result["scenarios"]:
            assert s["facts"]["witness_verdict"] == s["verdict"], (cell, s["scenario"])


def test_the_images_are_never_changed(
    client: docker.DockerClient,
    probed: tuple[dict[str, dict[str, Any]], str, dict[str, Any]],
) -> None:
    _, _, before = probed
    for ref, (image_id, tags) in before.items():
        image = client.images.get(ref)
        assert (image.id, sorted(image.tags)) == (image_id, tags)


def test_the_probe_prints_the_tables_and_what_each_image_holds(
    probed: tuple[dict[str, dict[str, Any]], str, dict[str, Any]],
) -> None:
    images, out, _ = probed
    # the answer first (its table has the row "image as-is"), then the findings
    assert "Can a process recover" in out and "image as-is" in out and "findings" in out
    for result in images.values():
        assert f"{result['platform']} (" in out
    assert "libcrypto: /opt/fips-matrix/lib/libcrypto.so.3 (OpenSSL 3.0.20" in out


def test_the_volume_is_read_only_executable_and_readable_by_nobody(
    client: docker.DockerClient,
    probed: tuple[dict[str, dict[str, Any]], str, dict[str, Any]],
) -> None:
    images, _, _ = probed
    distro = images["debian-13-distro/distro/packaged"]  # it has a shell
    volume = distro["fingerprint"]["portable_probe"]["volume"]
    mount = assets.PORTABLE_MOUNT
    script = f"id -u; grep ' {mount} ' /proc/self/mountinfo; touch {mount}/x"
    (run,) = run_batch(
        client,
        distro["fingerprint"]["image"]["id"],
        [BatchRun("mount", ["/bin/sh", "-c", script])],
        30.0,
        driver=portable.driver("x86_64"),
        volume=volume,
    )
    uid, line = run.stdout.splitlines()[:2]
    options = line.split()[5].split(",")
    assert uid == "65534" and "ro" in options and "noexec" not in options
    assert run.exit_code != 0 and "Read-only file system" in run.stderr


def build(client: docker.DockerClient, tag: str, dockerfile: str) -> str:
    """An image of this test's, built through the SDK (host network: apt)."""
    data = dockerfile.encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(
        fileobj=context, custom_context=True, tag=tag, network_mode="host", rm=True, forcerm=True
    )
    return str(image.id)


@pytest.fixture(scope="module")
def others(
    builtin: dict[str, dict[str, Any]],
    client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """`fips-matrix probe` of images that are not cells: image reference -> its cell. The
    Debian bases are the built-in cells' (debootstrapped where no registry gives them)."""
    source = builtin["debian-12/3.0.20/no-pinshared"]["fingerprint"]["image"]["id"]
    lib = "/usr/lib/x86_64-linux-gnu"
    build(
        client,
        SCRATCH,
        f"FROM {source} AS cell\n"
        "FROM scratch\n"
        f"COPY --from=cell {lib}/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2\n"
        f"COPY --from=cell {lib}/libc.so.6 {lib}/libdl.so.2 {lib}/libpthread.so.0 {lib}/\n"
        "COPY --from=cell /opt/fips-matrix/lib/libcrypto.so.3 /usr/lib64/\n"
        "COPY --from=cell /opt/fips-matrix/lib/ossl-modules/fips.so /usr/lib64/ossl-modules/\n",
    )
    trixie = builtin["debian-13-distro/distro/packaged"]["fingerprint"]["base_image"]["ref"]
    bookworm = builtin["debian-12/3.0.20/default"]["fingerprint"]["base_image"]["ref"]
    build(
        client,
        NO_FIPS,
        f"FROM {trixie}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        "--no-install-recommends libssl3t64 && rm -rf /var/lib/apt/lists/*\n",
    )
    results = tmp_path_factory.mktemp("portable-others") / "results"
    done = fips_matrix("probe", SCRATCH, bookworm, NO_FIPS, "--results", str(results))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    cells = {c["fingerprint"]["image"]["tag"]: c for c in cells_of(results).values()}
    return {"bookworm": cells.pop(bookworm), **cells}


def test_an_image_with_no_shell_python_or_compiler_gets_a_full_verdict(
    builtin: dict[str, dict[str, Any]], client: docker.DockerClient, others: dict[str, Any]
) -> None:
    for path in ("/bin/sh", "/usr/bin/python3", "/usr/bin/gcc", "/usr/bin/cc"):
        container = client.containers.create(SCRATCH, entrypoint=[path], command=[])
        try:
            with pytest.raises(docker.errors.NotFound):
                container.get_archive(path)
        finally:
            container.remove(force=True)
    result = others[SCRATCH]
    assert result["outcome"] == "OK", result["reason"]
    found = result["fingerprint"]["discovery"]
    assert found["libcrypto"]["realpath"] == "/usr/lib64/libcrypto.so.3"
    assert found["module"]["path"] == "/usr/lib64/ossl-modules/fips.so"
    assert found["module_of_libcrypto"] is True  # ossl-modules beside it
    # the cell it was made of: the same verdicts, scenario by scenario
    cell = builtin["debian-12/3.0.20/no-pinshared"]
    same_facts(result, cell)
    assert result["fingerprint"]["second_witness"].startswith("unavailable: ")


def test_an_image_without_openssl_3_is_skipped_saying_where_it_looked(
    others: dict[str, Any],
) -> None:
    result = others["bookworm"]
    assert result["outcome"] == "SKIPPED"
    reason = result["reason"]
    assert reason.startswith("the image holds no OpenSSL 3 or later libcrypto the probe can use")
    assert "no libcrypto.so.3 or libcrypto.so.4 found" in reason
    assert "/usr/lib/x86_64-linux-gnu" in reason and "by name through the image's loader" in reason
    assert "Looked for fips.so at /usr/lib/x86_64-linux-gnu/ossl-modules/fips.so" in reason
    assert result["fingerprint"]["discovery"]["libcrypto"] is None


def test_an_image_with_openssl_but_no_fips_provider_is_skipped_naming_both(
    others: dict[str, Any],
) -> None:
    result = others[NO_FIPS]
    assert result["outcome"] == "SKIPPED"
    reason = result["reason"]
    assert reason.startswith("the image holds libcrypto /usr/lib/x86_64-linux-gnu/libcrypto.so.3")
    assert "but no FIPS provider (fips.so): no fips.so found" in reason
    assert "Looked for fips.so at /usr/lib/x86_64-linux-gnu/ossl-modules/fips.so" in reason
    found = result["fingerprint"]["discovery"]
    assert found["libcrypto"]["version"].startswith("OpenSSL 3.")
    assert found["module"] is None


def test_a_matrix_file_of_images_is_a_matrix_like_any_other(
    builtin: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """A matrix file's image platform, run by `fips-matrix run`: the same verdicts."""
    image = builtin["debian-12/3.0.20/default"]["fingerprint"]["image"]["id"]
    matrix = tmp_path / "images.toml"
    matrix.write_text(
        'schema = 1\nscenarios = ["ondemand-kat", "no-failure"]\n\n'
        f'[platforms.my-app]\nimage = "{image}"\n'
    )
    done = fips_matrix("run", "--matrix", str(matrix), "--results", str(tmp_path / "r"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    cell = cells_of(tmp_path / "r")["my-app/image/as-is"]
    want = statuses(builtin["debian-12/3.0.20/default"])
    assert statuses(cell) == {s: want[s] for s in ("ondemand-kat", "no-failure")}


def test_the_module_mac_of_the_images_own_configuration_is_used(
    builtin: dict[str, dict[str, Any]],
    client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """An image whose OpenSSL configuration ($OPENSSL_CONF, .include'ing fipsinstall's output)
    holds the module-mac: with --module-mac-from-image both probes are given that value; a
    wrong one (a configuration left stale) makes every load fail its integrity check."""
    distro = builtin["debian-13-distro/distro/packaged"]["fingerprint"]["image"]["id"]
    module = "/usr/lib/x86_64-linux-gnu/ossl-modules/fips.so"
    configured = f"{PREFIX}/configured:1"
    build(
        client,
        configured,
        f"FROM {distro}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        "--no-install-recommends openssl && rm -rf /var/lib/apt/lists/* "
        "&& mkdir -p /etc/app-ssl "
        f"&& openssl fipsinstall -module {module} -out /etc/app-ssl/fipsmodule.cnf "
        "&& printf 'openssl_conf = openssl_init\\n.include /etc/app-ssl/fipsmodule.cnf\\n"
        "[openssl_init]\\nproviders = provider_sect\\n[provider_sect]\\nfips = fips_sect\\n' "
        "> /etc/app-ssl/openssl.cnf\n"
        "ENV OPENSSL_CONF=/etc/app-ssl/openssl.cnf\n",
    )
    stale = f"{PREFIX}/stale:1"
    build(
        client,
        stale,
        f"FROM {configured}\n"
        "RUN sed -i 's/^\\(module-mac *= *\\)../\\100/' /etc/app-ssl/fipsmodule.cnf\n",
    )
    results = tmp_path / "results"
    done = fips_matrix(
        "probe", configured, stale, "--module-mac-from-image", "--results", str(results)
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    cells = {c["platform"]: c for c in cells_of(results).values()}
    good, bad = cells["configured-1"], cells["stale-1"]
    mac = good["fingerprint"]["discovery"]["module_mac"]
    assert mac["from"] == "image" and mac["config"] == "/etc/app-ssl/fipsmodule.cnf"
    assert "/etc/app-ssl/openssl.cnf" in done.stdout  # the configuration, as found
    assert good["outcome"] == "OK", good["reason"]
    assert statuses(good) == statuses(builtin["debian-13-distro/distro/packaged"])
    for s in good["scenarios"]:
        assert s["probe"]["portable"]["module_mac"] == "given"
        assert s["probe"]["portable"]["module_mac_value"] == mac["value"]
        assert s["facts"]["witness_verdict"] == s["verdict"]  # the twin, given it too
    wrong = bad["fingerprint"]["discovery"]["module_mac"]["value"]
    assert wrong != mac["value"] and wrong[2:] == mac["value"][2:]
    for s in bad["scenarios"]:
        for doc in (s["probe"], s["witness"]["probe"]):
            first = doc["steps"][0]
            assert first["ok"] is False, (s["scenario"], first)
            assert any("integrity" in e["reason"] for e in first["errors"]), first["errors"]
