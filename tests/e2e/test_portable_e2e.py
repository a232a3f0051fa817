"""End to end: the portable probe, built in its own builder image, delivered through a volume,
run in images it was never built for, and compared with the built-in probe of the same images.

The built-in probe's documents come from a real `fips-matrix run` of the same cells; the
portable probe must make the same observations there, and matrix.verdicts must judge both
documents alike. The verdicts themselves are not written here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import docker
import portable_delivery as pd
import pytest

from matrix import baseimages, definition, mirror, probing, verdicts

pytestmark = pytest.mark.e2e

CELLS = {
    "debian-12/3.0.20/default": "fips-matrix/cell:debian-12-3.0.20-default",
    "debian-12/3.0.20/no-pinshared": "fips-matrix/cell:debian-12-3.0.20-no-pinshared",
    "musl-debian-12/3.0.20/default": "fips-matrix/cell:musl-debian-12-3.0.20-default",
    "debian-13-distro/distro/packaged": "fips-matrix/cell:debian-13-distro-distro-packaged",
    "debian-12/4.0.2/default": "fips-matrix/cell:debian-12-4.0.2-default",  # libcrypto.so.4
}
SCENARIOS = (
    "ondemand-kat",
    "load-kat",
    "integrity",
    "leaked-ref",
    "no-failure",
    "two-contexts",
    "worker-thread",
)
PROBE_EXE = "/opt/fips-matrix/bin/fips_probe"  # the cells' own program: its RUNPATH finds libcrypto


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env(timeout=600)
    yield c
    c.close()


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The built-in probe's documents, per cell and scenario, from a real run of the tool."""
    root = tmp_path_factory.mktemp("portable-e2e")
    args = [sys.executable, "-m", "matrix", "run", "--results", str(root / "results")]
    args += ["--cache-dir", str(root / "cache")]
    for cell in CELLS:
        args += ["--only", cell]
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out: dict[str, dict[str, Any]] = {}
    for cell in CELLS:
        data = json.loads(
            (root / "results" / "cells" / f"{cell.replace('/', '__')}.json").read_text()
        )
        out[cell] = {s["scenario"]: s["probe"] for s in data["scenarios"]}
    return out


@pytest.fixture(scope="module")
def volume(client: docker.DockerClient) -> str:
    defn = definition.load_definition(definition.default_definition_path())
    platform = defn.platforms["debian-11"]
    base = baseimages.ensure_base_image(client, platform, mirror.debian_mirror(), print)
    builder = pd.build_builder(client, base.ref, print)
    name, _ = pd.ensure_volume(client, builder)
    # the cache: the same inputs find the same image and the filled volume
    again = pd.build_builder(client, base.ref)
    assert again.cached and again.image_id == builder.image_id
    assert pd.ensure_volume(client, again) == (name, True)
    return name


def observations(doc: dict[str, Any]) -> dict[str, Any]:
    """What both probes observe, step by step (not times, paths of our own or versions)."""
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


def stable(facts: dict[str, Any]) -> dict[str, Any]:
    """A judgement's facts without the worker thread's counts, which depend on timing (how many
    rounds fit in a step, which call met the error state first)."""
    out = {k: v for k, v in facts.items() if k != "worker"}
    if "worker" in facts:
        w = facts["worker"]
        out["worker"] = (w["stopped_before_free"], w["ok_after_failure"] > 0)
    return out


def probe_image(
    client: docker.DockerClient, image: str, volume: str, exe: tuple[str, ...]
) -> tuple[pd.Discovery, list[probing.ProbeRun]]:
    before = client.images.get(image)
    arch = pd.arch_of(client, image)
    found = pd.discover(client, image, volume, arch, [a for e in exe for a in ("--exe", e)])
    assert found is not None
    suggested = found.document["suggested"]
    assert suggested["libcrypto_usable"], found.document["problems"]
    runs = [
        probing.BatchRun(
            s,
            pd.probe_argv(
                found.family,
                arch,
                s,
                suggested["module"],
                suggested["libcrypto"],
                probing.run_workdir(i),
            ),
        )
        for i, s in enumerate(SCENARIOS)
    ]
    done = pd.run_batch(client, image, volume, found.family, arch, runs, 120.0)
    after = client.images.get(image)
    assert (after.id, after.tags) == (before.id, before.tags)  # the image is never changed
    return found, done


@pytest.mark.parametrize("cell", list(CELLS))
def test_the_portable_probe_sees_what_the_built_in_one_sees(
    client: docker.DockerClient, volume: str, builtin: dict[str, dict[str, Any]], cell: str
) -> None:
    image = CELLS[cell]
    distro = cell.startswith("debian-13-distro")
    found, runs = probe_image(client, image, volume, () if distro else (PROBE_EXE,))
    assert found.family == ("musl" if cell.startswith("musl") else "glibc")
    assert found.document["libc"]["name"] == found.family
    for run in runs:
        doc, why = run.document()
        assert doc is not None and run.exit_code == 0, (why, run.stderr[-2000:])
        reference = builtin[cell][run.scenario]
        # the same files: the built-in probe's module, and the libcrypto it was linked with
        assert doc["module"] == reference["module"]
        assert doc["versions"]["openssl"] == reference["versions"]["openssl"]
        soname = "libcrypto.so.4" if "/4." in cell else "libcrypto.so.3"
        assert doc["portable"]["libcrypto_soname"] == soname
        assert observations(doc) == observations(reference)
        mine = verdicts.judge_run(run.scenario, run.exit_code, False, doc)
        theirs = verdicts.judge_run(run.scenario, 0, False, reference)
        assert (mine.verdict, stable(mine.facts)) == (theirs.verdict, stable(theirs.facts))


def test_the_volume_is_read_only_executable_and_readable_by_nobody(
    client: docker.DockerClient, volume: str
) -> None:
    image = CELLS["debian-13-distro/distro/packaged"]  # it has a shell
    script = f"id -u; grep ' {pd.MOUNT} ' /proc/self/mountinfo; touch {pd.MOUNT}/x"
    (run,) = pd.run_batch(
        client,
        image,
        volume,
        "glibc",
        "x86_64",
        [probing.BatchRun("mount", ["/bin/sh", "-c", script])],
        30.0,
    )
    uid, mount = run.stdout.splitlines()[:2]
    options = mount.split()[5].split(",")
    assert uid == "65534" and "ro" in options and "noexec" not in options
    assert run.exit_code != 0 and "Read-only file system" in run.stderr


@pytest.mark.parametrize(
    ("image", "missing"),
    [
        ("fips-matrix/base-debian:bookworm", "no libcrypto.so.3 or libcrypto.so.4 found"),
        ("fips-matrix/base-debian:trixie", "no fips.so found"),
    ],
)
def test_an_image_without_openssl_3_or_fips_says_where_it_looked(
    client: docker.DockerClient, volume: str, builtin: dict[str, Any], image: str, missing: str
) -> None:
    # (builtin: its run made these base images)
    found = pd.discover(client, image, volume, pd.arch_of(client, image))
    assert found is not None
    doc = found.document
    assert any(p.startswith(missing) for p in doc["problems"]), doc["problems"]
    tried = {t["path"] for t in doc["libcrypto"]["tried"]} | {
        t["path"] for t in doc["fips_modules"]["tried"]
    }
    assert "/usr/lib/x86_64-linux-gnu/libcrypto.so.3" in tried
    assert "/usr/lib/x86_64-linux-gnu/ossl-modules/fips.so" in tried
    if missing.startswith("no fips.so"):
        assert doc["suggested"]["libcrypto"] == "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
    else:
        assert doc["suggested"]["libcrypto"] is None
    assert doc["suggested"]["module"] is None
