"""A bundle is checked whole before any of it is used: manifest, lock, the matrix it was made
for, every entry's name and every tarball's bytes. Until then no image is loaded and no file
of the cache is touched; and a signature verdict is never taken from it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from support.fakes import FakeDockerClient
from support.harness import SHA, TARBALL, cli_on_fake_engine, matrix_toml

from matrix import cli
from matrix.errors import MatrixError
from matrix.execute.images import bundle as bundle_module
from matrix.execute.images.bundle import load_bundle, write_bundle
from matrix.execute.lockfile import Lock
from matrix.model.definition import load_definition
from matrix.model.types import MatrixDefinition
from matrix.results.records import CellResult

NAME = f"sources/openssl-3.0.20-{SHA[:12]}.tar.gz"
IMAGE_ID = "sha256:" + "1" * 64


def definition(tmp_path: Path, versions: dict[str, str] | None = None) -> MatrixDefinition:
    path = tmp_path / "matrix.toml"
    path.write_text(matrix_toml(versions or {"3.0.20": SHA}))
    return load_definition(path)


def manifest(defn: MatrixDefinition, **changes: Any) -> dict[str, Any]:
    lock = {
        "schema": 1,
        "matrix_digest": defn.digest,
        "base_images": {"debian:bookworm": IMAGE_ID},
        "sources": {"3.0.20": SHA},
    }
    data: dict[str, Any] = {"schema": 1, "images": ["debian:bookworm"], "lock": lock}
    data.update(changes)
    return data


def bundle_bytes(entries: dict[str, bytes]) -> bytes:
    """A tar archive of these entries."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle(path: Path, entries: dict[str, bytes]) -> Path:
    path.write_bytes(bundle_bytes(entries))
    return path


def saved(tags: list[str], **extra: Any) -> bytes:
    """An image archive as `docker save` writes it: its manifest.json names the tags a load
    writes into the engine (the layers themselves do not matter here); `extra`: other
    entries (the legacy `repositories`, an OCI `index.json`), as JSON."""
    entries = {"manifest.json": [{"Config": "c.json", "RepoTags": tags, "Layers": []}], **extra}
    return bundle_bytes({name: json.dumps(value).encode() for name, value in entries.items()})


def good(defn: MatrixDefinition) -> dict[str, bytes]:
    return {
        "manifest.json": json.dumps(manifest(defn)).encode(),
        NAME: TARBALL,
        "images.tar": saved(["debian:bookworm"]),
    }


def test_a_good_bundle_loads_its_images_and_sources(tmp_path: Path) -> None:
    defn, client = definition(tmp_path), FakeDockerClient()
    entries = {**good(defn), f"{NAME}.asc": b"-----BEGIN PGP SIGNATURE-----\n"}
    lock = load_bundle(client, bundle(tmp_path / "b.tar", entries), tmp_path / "c", defn)
    assert lock.sources == {"3.0.20": SHA} and client.loads == [len(entries["images.tar"])]
    cached = tmp_path / "c" / NAME
    assert cached.read_bytes() == TARBALL
    assert (tmp_path / "c" / f"{NAME}.asc").is_file()  # checked later, here, with our keys
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name, f"{cached.name}.asc"]


Change = Callable[[MatrixDefinition, dict[str, bytes]], None]


def _manifest(**changes: Any) -> Change:
    def change(defn: MatrixDefinition, entries: dict[str, bytes]) -> None:
        entries["manifest.json"] = json.dumps(manifest(defn, **changes)).encode()

    return change


def _lock(**changes: Any) -> Change:
    def change(defn: MatrixDefinition, entries: dict[str, bytes]) -> None:
        data = manifest(defn)
        data["lock"].update(changes)
        entries["manifest.json"] = json.dumps(data).encode()

    return change


def _entry(name: str, data: bytes | None) -> Change:
    def change(defn: MatrixDefinition, entries: dict[str, bytes]) -> None:
        if data is None:
            del entries[name]
        else:
            entries[name] = data

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_lock(matrix_digest="e" * 64), "was made for another matrix definition"),
        (_manifest(schema=7), "manifest schema 7, this version reads 1"),
        (_manifest(images="all"), "images are not image names"),
        (_lock(sources={"3.0.20": "not a sha"}), "its lock is not valid"),
        (_lock(sources={"3.0.20": "f" * 64}), "pins OpenSSL 3.0.20 to ffffffffffff"),
        (_entry("manifest.json", b"{not json"), "its manifest is not JSON"),
        (_entry(NAME, TARBALL + b"tampered"), "the matrix pins"),
        (_entry(NAME, None), "absent"),
        (_entry(f"sources/{NAME[8:]}.json", b'{"signature": "verified: me"}'), "refused"),
        (_entry("sources/../../escape.tar.gz", TARBALL), "refused"),
        (_entry("sources/openssl-9.9.9-0123456789ab.tar.gz", TARBALL), "refused"),
        (_entry("images.tar", None), "no images.tar"),
        # images.tar is read before the engine loads it: its tags must be the manifest's
        (_entry("images.tar", saved(["debian:bookworm", "evil:1"])), "would tag 'evil:1'"),
        (_entry("images.tar", saved(["docker.io/library/debian:bookworm", "x"])), "'x'"),
        (
            _entry("images.tar", saved(["debian:bookworm"], repositories={"evil": {"2": "x"}})),
            "would tag 'evil:2' in the engine, which its manifest does not list",
        ),
        (
            _entry(
                "images.tar",
                saved(
                    [],
                    **{
                        "index.json": {
                            "manifests": [{"annotations": {"io.containerd.image.name": "e:3"}}]
                        }
                    },
                ),
            ),
            "would tag 'e:3'",
        ),
        (_entry("images.tar", b"the engine's image archive"), "images.tar is not an image arch"),
        (_entry("images.tar", bundle_bytes({"layer.tar": b""})), "images.tar has no manifest"),
        (_entry("images.tar", bundle_bytes({"manifest.json": b"{"})), "manifest.json is not JSON"),
    ],
)
def test_a_bad_bundle_is_refused_before_anything_is_applied(
    tmp_path: Path, change: Change, message: str
) -> None:
    defn, client = definition(tmp_path), FakeDockerClient()
    cache = tmp_path / "c"
    (cache / "sources").mkdir(parents=True)
    before = b"a cached tarball this bundle must not touch"
    (cache / NAME).write_bytes(before)
    entries = good(defn)
    change(defn, entries)
    with pytest.raises(MatrixError, match=message) as refused:
        load_bundle(client, bundle(tmp_path / "b.tar", entries), cache, defn)
    assert not str(refused.value).startswith("--locked")
    assert client.loads == []  # no image loaded
    assert (cache / NAME).read_bytes() == before
    assert sorted(p.name for p in (cache / "sources").iterdir()) == [Path(NAME).name]


def test_the_engines_load_error_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine refuses an archive whose manifest was good (a layer cut short): the SDK's
    ImageLoadError, not an APIError, was a traceback."""
    defn, client = definition(tmp_path), FakeDockerClient()

    def refuses(data: Any) -> Any:
        raise docker.errors.ImageLoadError("unexpected EOF")

    monkeypatch.setattr(client.images, "load", refuses)
    tarball = tmp_path / "openssl.tar.gz"
    tarball.write_bytes(TARBALL)
    cli_on_fake_engine(monkeypatch, client, tarball)
    path = bundle(tmp_path / "b.tar", good(defn))
    argv = ["run", "--matrix", str(defn.path), "--bundle", str(path)]
    assert (
        cli.main([*argv, "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]) == 2
    )
    out = capsys.readouterr().out
    assert (
        f"fips-matrix: error: bundle {path}: the engine refused its images: unexpected EOF" in out
    )
    assert "Traceback" not in out


def test_a_forged_signature_record_in_the_bundle_is_never_used(tmp_path: Path) -> None:
    """A bundle made by an older version carried the cache's sidecar: a verdict of its own."""
    defn, client = definition(tmp_path), FakeDockerClient()
    entries = good(defn)
    entries[f"{NAME}.json"] = json.dumps(
        {"sha256": SHA, "origin": "forged", "signature": "verified: nobody"}
    ).encode()
    with pytest.raises(MatrixError, match="refused"):
        load_bundle(client, bundle(tmp_path / "b.tar", entries), tmp_path / "c", defn)
    # and the sidecar of an earlier, other copy does not survive a new tarball either
    cache = tmp_path / "c2"
    (cache / "sources").mkdir(parents=True)
    (cache / f"{NAME}.json").write_text('{"signature": "verified: stale"}')
    load_bundle(client, bundle(tmp_path / "b2.tar", good(defn)), cache, defn)
    assert not (cache / f"{NAME}.json").exists()
    assert hashlib.sha256((cache / NAME).read_bytes()).hexdigest() == SHA


def test_the_bundles_run_names_another_matrix_as_such(tmp_path: Path) -> None:
    defn = definition(tmp_path)
    entries = good(defn)
    data = json.loads(entries["manifest.json"])
    data["lock"]["matrix_digest"] = "a" * 64
    entries["manifest.json"] = json.dumps(data).encode()
    with pytest.raises(MatrixError) as refused:
        load_bundle(FakeDockerClient(), bundle(tmp_path / "b.tar", entries), tmp_path / "c", defn)
    text = str(refused.value)
    assert "was made for another matrix definition (digest aaaaaaaaaaaa" in text
    assert "run it with the matrix file it was made from" in text


def test_no_bundle_is_written_when_a_cell_has_no_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lab has no network to build what the bundle lacks: a cell whose build failed stops
    the bundle (exit 1, the cell named), and no archive is written."""
    defn, client = definition(tmp_path), FakeDockerClient()
    tarball = tmp_path / "openssl.tar.gz"
    tarball.write_bytes(TARBALL)
    client.build_errors[":debian-12-3.0.20-no-pinshared"] = "the link failed"
    cli_on_fake_engine(monkeypatch, client, tarball)
    output = tmp_path / "lab.tar"
    argv = ["bundle", "--matrix", str(defn.path), "--output", str(output)]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    argv += ["--only", "debian-12/3.0.20/default", "--only", "debian-12/3.0.20/no-pinshared"]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "not written: 1 cell(s) have no image" in out
    assert "debian-12/3.0.20/no-pinshared" in out.split("not written")[1]
    assert not output.exists() and not list(tmp_path.glob(".lab.tar*"))


def test_an_archive_the_engine_could_not_fill_is_not_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defn, client = definition(tmp_path), FakeDockerClient()
    result = CellResult("p/1/v", "p", "glibc", "1", "v", "OK")
    result.fingerprint["image"] = {"tag": "fips-matrix/cell:p-1-v"}
    lock = Lock.from_json(manifest(defn)["lock"])

    def refused(*_: Any) -> Any:
        yield b"the first megabyte"
        raise docker.errors.APIError("no space left on device")

    monkeypatch.setattr(bundle_module, "_save", refused)
    output = tmp_path / "lab.tar"
    with pytest.raises(MatrixError, match="could not save the images"):
        write_bundle(client, [result], lock, tmp_path / "cache", output)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.toml"]
