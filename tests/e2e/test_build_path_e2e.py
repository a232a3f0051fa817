"""The build path, proven on every run: on a warm engine every other end-to-end test finds
its images in the layer cache, so a regression in a Dockerfile or the build script could
pass unseen. This one builds one small cell (debian-12's Dockerfile, OpenSSL 3.0.20, the
default link) with no cache at all, every time, and checks that it really compiled and
that its probes gave verdicts.

No cache at all, without disturbing anyone's cache: the cell's platform starts from a base
image of its own, the debian-12 base with one label added (the same files under a new
image id), so no layer of any earlier build matches, and nothing built here can be found
by another build. Every image built on that base is removed at the end."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from matrix.acquire.baseimages import ensure_base_image
from matrix.acquire.mirror import debian_mirror
from matrix.assets import DEFAULT_MATRIX
from matrix.model.definition import load_definition
from matrix.progress import Reporter

pytestmark = pytest.mark.e2e

COMPILE_STEP = "RUN fips-matrix-build.sh compile"


def descendants(client: docker.DockerClient, root: str) -> list[str]:
    """The ids of every image built on `root`, children before their parents."""
    children: dict[str, list[str]] = {}
    for image in client.images.list(all=True):
        parent = image.attrs.get("Parent") or ""
        children.setdefault(parent, []).append(str(image.id))
    order: list[str] = []
    stack = [root]
    while stack:
        current = stack.pop()
        for child in children.get(current, []):
            order.append(child)
            stack.append(child)
    return list(reversed(order))


@pytest.fixture
def own_base(tmp_path: Path) -> Iterator[str]:
    """A base image of this test's own (see the module's docstring); removed afterwards,
    with everything built on it."""
    client = docker.from_env()
    platform = load_definition(DEFAULT_MATRIX).platforms["debian-12"]
    base = ensure_base_image(client, platform, debian_mirror(), Reporter())
    tag = f"fips-matrix/e2e-cold:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {base.ref}\nLABEL org.fips-reload-matrix.e2e-cold={tag}\n"
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    try:
        yield tag
    finally:
        for image_id in [*descendants(client, str(image.id)), str(image.id)]:
            with contextlib.suppress(docker.errors.ImageNotFound):  # gone with its tag
                client.images.remove(image_id, force=True)


def test_one_cell_is_built_with_no_cache_and_probed(tmp_path: Path, own_base: str) -> None:
    default = load_definition(DEFAULT_MATRIX)
    source = default.sources["3.0.20"]
    name = f"e2e-cold-{own_base.rsplit(':', 1)[1]}"
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""schema = 1
scenarios = {json.dumps(list(default.scenarios))}

[platforms.{name}]
description = "debian-12's Dockerfile on a base image no earlier build used"
dockerfile = "debian.Dockerfile"
base_image = "{own_base}"
libc = "glibc"

[sources."3.0.20"]
sha256 = "{source.sha256}"
urls = {json.dumps(list(source.urls))}
debian_orig = true

[variants.default]
configure = []
"""
    )
    results = tmp_path / "results"
    args = ["--matrix", str(matrix), "--results", str(results)]
    run = subprocess.run(
        [sys.executable, "-m", "matrix", "run", *args, "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cell = json.loads((results / "cells" / f"{name}__3.0.20__default.json").read_text())
    assert cell["outcome"] == "OK", cell["reason"]
    assert cell["fingerprint"]["image"]["cached"] is False

    # Every step ran: the stages built ahead (none from the cache), then the cell's build,
    # which finds those stages (built just now) and runs every step from the compile stage
    # on; the compile itself ran, with its parts stamped.
    stages = (results / "stages" / f"{name}.log").read_text()
    build = Path(cell["logs"]["build"]).read_text()
    assert "RUN apt-get update" in stages and "Using cache" not in stages
    _, compile_on = build.split(" AS compile\n", 1)
    assert "Using cache" not in compile_on
    assert COMPILE_STEP in compile_on
    compiled = re.search(r"fips-matrix-build: compile took (\d+) s; cpu:", build)
    assert compiled is not None, build[-3000:]
    for part in ("compile/configure", "compile/generated", "compile/make", "probe/build"):
        assert re.search(rf"^fips-matrix-build: phase {part} \d+ \d+$", build, re.M), part

    # ... and its probe ran in the image and gave a verdict for every scenario.
    assert [s["scenario"] for s in cell["scenarios"]] == list(default.scenarios)
    for s in cell["scenarios"]:
        # a complete document; the process may still die after it (3.0.20's worker-no-stop)
        assert s["probe"] and s["probe"].get("completed"), (s["scenario"], s["cause"])
        assert s["evidence"], s["scenario"]
        assert s["probe"]["versions"]["openssl"].startswith("OpenSSL 3.0.20")
    assert cell["fingerprint"]["base_image"]["ref"] == own_base
