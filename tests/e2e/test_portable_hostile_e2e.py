"""End to end: images built to stop the portable probe's discovery, probed by the real
`fips-matrix probe`. Each once hung discovery until the probe timeout (a FIFO where a file was
read, an ld.so.conf that includes itself ten times, a libcrypto whose constructor never
returns) and then read "no dynamic loader ... a static program's image?"; or forged a field
of discovery's reply (a version string with a newline); or lost the loader's default
directories behind a long LD_LIBRARY_PATH. Now each ends well before the timeout and says
what it met.

The images are cheap: the Debian base the portable probe's builder is made from (pulled, else
debootstrapped, as the tool does), with a few files of the test's; the fake libcryptos are
compiled here with the host's compiler (no OpenSSL anywhere)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from matrix import assets
from matrix.acquire.baseimages import ensure_base_image
from matrix.acquire.mirror import debian_mirror
from matrix.execute.images import portable
from matrix.progress import Reporter

pytestmark = pytest.mark.e2e

PREFIX = "fips-matrix-e2e-hostile"  # the images this test makes
TIMEOUT = 90  # --probe-timeout: each image must end well before it
LIB = "/usr/lib/x86_64-linux-gnu"

BLOCKING = r"""
#include <signal.h>
#include <unistd.h>
__attribute__((constructor)) static void hang(void)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, 0); /* the alarm of the process that opens it never comes */
    for (;;)
        pause();
}
"""
FORGING = r"""
const char *OpenSSL_version(int t)
{
    return t == 0 ? "OpenSSL 3.9.9 fake\nerror\tforged by the version string" : "";
}
"""
PLAIN = "int fake_libcrypto(void) { return 3; }\n"

# image name -> (Dockerfile lines after FROM, the libraries it copies: name -> source)
IMAGES: dict[str, tuple[str, dict[str, str]]] = {
    "ldconf-fifo": ("RUN mkfifo /etc/ld.so.conf.d/zz-fifo.conf\n", {}),
    "ldconf-loop": (
        "RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo 'include /etc/ld.so.conf.d/*.conf'; "
        "done > /etc/ld.so.conf.d/aa-loop.conf\n",
        {},
    ),
    "entry-fifo": (
        'RUN mkfifo /usr/local/bin/app\nENTRYPOINT ["/usr/local/bin/app"]\n',
        {},
    ),
    "blocking": (f"COPY blocking.so {LIB}/libcrypto.so.3\n", {"blocking": BLOCKING}),
    "forging": (f"COPY forging.so {LIB}/libcrypto.so.3\n", {"forging": FORGING}),
    "long-path": (
        f"COPY plain.so {LIB}/libcrypto.so.3\n"
        "ENV LD_LIBRARY_PATH=" + ":".join(f"/nonexistent/d{i}" for i in range(3000)) + "\n",
        {"plain": PLAIN},
    ),
}


def fips_matrix(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "matrix", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)


def compiled(tmp: Path, name: str, source: str) -> bytes:
    (tmp / f"{name}.c").write_text(source)
    out = tmp / f"{name}.so"
    command = ["cc", "-shared", "-fPIC", "-Wl,-soname,libcrypto.so.3", "-o", str(out)]
    subprocess.run([*command, str(tmp / f"{name}.c")], check=True)
    return out.read_bytes()


def build(client: docker.DockerClient, tag: str, dockerfile: str, files: dict[str, bytes]) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(
        fileobj=context, custom_context=True, tag=tag, network_mode="none", rm=True, forcerm=True
    )


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env(timeout=600)
    yield c
    c.close()


@pytest.fixture(scope="module")
def probed(
    client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, dict[str, Any]], float, Path]:
    """`fips-matrix probe` of every image: name -> its cell; the seconds it took; results."""
    tmp = tmp_path_factory.mktemp("hostile")
    base = ensure_base_image(client, portable.PLATFORM, debian_mirror(), Reporter())
    for name, (lines, libraries) in IMAGES.items():
        files = {f"{lib}.so": compiled(tmp, lib, source) for lib, source in libraries.items()}
        build(client, f"{PREFIX}/{name}:1", f"FROM {base.ref}\n{lines}", files)
    results = tmp / "results"
    refs = [f"{PREFIX}/{name}:1" for name in IMAGES]
    started = time.monotonic()
    args = ["--probe-timeout", str(TIMEOUT), "--allow-empty", "--results", str(results)]
    done = fips_matrix("probe", *refs, *args)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    summary = json.loads((results / "summary.json").read_text())
    cells = {}
    for cell in summary["run"]["cells"]:
        data = json.loads((results / "cells" / f"{assets.slug(cell)}.json").read_text())
        cells[data["fingerprint"]["image"]["tag"].split("/")[-1].split(":")[0]] = data
    assert set(cells) == set(IMAGES)
    return cells, seconds, results


def document(cell: dict[str, Any]) -> dict[str, Any]:
    """The glibc discovery document, from the cell's discovery log."""
    text = Path(cell["logs"]["discovery"]).read_text()
    part = text.split("### discover-glibc:", 1)[1].split("### discover-musl:", 1)[0]
    line = next(x for x in part.splitlines() if x.startswith('{"discovery"'))
    doc: dict[str, Any] = json.loads(line)
    return doc


def skipped_promptly(cell: dict[str, Any]) -> str:
    assert cell["outcome"] == "SKIPPED", cell["reason"]
    reason: str = cell["reason"]
    assert "static program" not in reason and "timed out after" not in reason, reason
    return reason


def test_every_discovery_ends_well_before_the_timeout(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    """Each hung until the probe timeout; the blocking libcrypto now costs two 10 s children
    (by name, then by path), the rest a second or so."""
    cells, _, _ = probed
    for name, cell in cells.items():
        assert cell["outcome"] == "SKIPPED", (name, cell["reason"])
        text = Path(cell["logs"]["discovery"]).read_text()
        headers = [line for line in text.splitlines() if line.startswith("### discover-")]
        assert len(headers) == 2, text[:2000]
        for header in headers:
            assert "timed_out=False" in header, (name, header)
            seconds = float(header.rsplit("seconds=", 1)[1])
            assert seconds < (30 if name == "blocking" else 10), (name, header)


def test_a_fifo_in_ld_so_conf_d_is_not_read(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    cell = probed[0]["ldconf-fifo"]
    skipped_promptly(cell)
    files = {f["path"]: f["result"] for f in document(cell)["loader_config"]}
    assert files["/etc/ld.so.conf.d/zz-fifo.conf"] == "not a regular file: a FIFO"
    assert files["/etc/ld.so.conf"] == "read"


def test_an_ld_so_conf_that_includes_itself_is_read_once(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    cell = probed[0]["ldconf-loop"]
    skipped_promptly(cell)
    results = [f["result"] for f in document(cell)["loader_config"]]
    loop = [f for f in document(cell)["loader_config"] if f["path"].endswith("aa-loop.conf")]
    assert loop[0]["result"] == "read"
    assert {f["result"] for f in loop[1:]} == {"not read again: included before (an include loop?)"}
    assert results.count("read") <= 64


def test_a_fifo_as_the_entrypoint_is_not_opened(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    cell = probed[0]["entry-fifo"]
    skipped_promptly(cell)
    (exe,) = document(cell)["executables"]
    assert exe["path"] == "/usr/local/bin/app"
    assert exe["error"] == "cannot open: not a regular file: a FIFO"


def test_a_libcrypto_whose_constructor_blocks_is_said_to_time_out(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    cell = probed[0]["blocking"]
    reason = skipped_promptly(cell)
    assert reason.startswith("the image holds no OpenSSL 3 or later libcrypto the probe can use")
    assert f"{LIB}/libcrypto.so.3: timed out: the process that opened it did not finish" in reason
    (found,) = document(cell)["libcrypto"]["found"]
    assert found["error"].startswith("timed out: ") and found["usable"] is False


def test_a_version_string_cannot_forge_a_field_of_the_reply(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    cell = probed[0]["forging"]
    skipped_promptly(cell)
    (found,) = document(cell)["libcrypto"]["found"]
    assert found["version"] == "OpenSSL 3.9.9 fake\nerror\tforged by the version string"
    assert found["error"] is None and found["opened"] is True
    assert found["missing_function"] == "OPENSSL_init_crypto"


def test_a_long_library_path_keeps_the_default_directories_and_says_what_it_dropped(
    probed: tuple[dict[str, dict[str, Any]], float, Path],
) -> None:
    cell = probed[0]["long-path"]
    reason = skipped_promptly(cell)
    doc = document(cell)
    (found,) = doc["libcrypto"]["found"]
    assert found["realpath"] == f"{LIB}/libcrypto.so.3"  # in a default directory
    assert found["missing_function"] == "OPENSSL_init_crypto"
    (dropped,) = [d for d in doc["search_dirs_dropped_from"] if d["from"] == "LD_LIBRARY_PATH"]
    kept = [d for d in doc["search_dirs"] if d["from"] == "LD_LIBRARY_PATH"]
    assert len(kept) + dropped["count"] == 3000
    assert f"{dropped['count']} of LD_LIBRARY_PATH" in reason
