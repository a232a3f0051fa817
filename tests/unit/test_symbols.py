"""Names for a crash's addresses: the symbol tables of real objects compiled here
(matrix/execute/probes/elfsymbols.py, checked against binutils' nm), and the copy out of an image
(matrix/execute/probes/symbolize.py) against a fake engine."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from matrix.execute.probes import symbolize
from matrix.execute.probes.elfsymbols import Functions, read_functions

SOURCE = r"""
static int __attribute__((noinline)) hidden_work(int x) { return x * 3 + 1; }
int exported(int x) { return hidden_work(x) + 2; }
"""


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("elf")
    (out / "lib.c").write_text(SOURCE)
    lib, stripped = out / "libx.so", out / "libx-stripped.so"
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(out / "lib.c")],
        check=True,
        capture_output=True,
    )
    subprocess.run(["strip", "--strip-all", "-o", str(stripped), str(lib)], check=True)
    return {"lib": lib, "stripped": stripped}


def nm(path: Path, *flags: str) -> dict[str, int]:
    """Function symbols by binutils, independently of pyelftools: name -> value."""
    out = subprocess.run(["nm", *flags, str(path)], capture_output=True, text=True, check=True)
    found = {}
    for line in out.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] in ("t", "T"):
            found[words[2]] = int(words[0], 16)
    return found


def test_local_functions_are_named_from_symtab(objects: dict[str, Path]) -> None:
    table = read_functions(objects["lib"].read_bytes())
    assert isinstance(table, Functions) and table.table == ".symtab"
    symbols = nm(objects["lib"])
    for name in ("hidden_work", "exported"):
        assert table.at(symbols[name]) == (name, 0)
        assert table.at(symbols[name] + 3) == (name, 3)
    assert table.at(0) is None  # the ELF header: no function


def test_a_stripped_object_names_only_what_it_exports(objects: dict[str, Path]) -> None:
    table = read_functions(objects["stripped"].read_bytes())
    assert isinstance(table, Functions) and table.table == ".dynsym"
    symbols = nm(objects["lib"])
    assert nm(objects["stripped"], "-D")["exported"] == symbols["exported"]
    assert table.at(symbols["exported"] + 1) == ("exported", 1)
    assert table.at(symbols["hidden_work"]) is None


def test_what_is_not_an_elf_object_says_so() -> None:
    assert read_functions(b"#!/bin/sh\n", "/x") == "could not read symbols of /x: not an ELF object"
    assert read_functions(b"").startswith("could not read symbols of the object: ")


def hostile_symtab_offset(data: bytes, offset: int) -> bytes:
    """The object with its .symtab's sh_offset (byte 24 of an Elf64_Shdr) set to `offset`,
    found from the ELF header's own fields (not with the parser under test)."""
    shoff = int.from_bytes(data[0x28:0x30], "little")
    shentsize = int.from_bytes(data[0x3A:0x3C], "little")
    shnum = int.from_bytes(data[0x3C:0x3E], "little")
    shstrndx = int.from_bytes(data[0x3E:0x40], "little")
    strtab = shoff + shstrndx * shentsize
    names_at = int.from_bytes(data[strtab + 24 : strtab + 32], "little")
    for i in range(shnum):
        header = shoff + i * shentsize
        name = int.from_bytes(data[header : header + 4], "little")
        if data[names_at + name :].startswith(b".symtab\0"):
            patched = bytearray(data)
            patched[header + 24 : header + 32] = offset.to_bytes(8, "little")
            return bytes(patched)
    raise AssertionError("no .symtab")


@pytest.mark.parametrize("offset", [2**63, 2**64 - 1, 2**40])
def test_any_parser_error_of_a_hostile_object_is_a_reason(
    objects: dict[str, Path], offset: int
) -> None:
    """pyelftools raised OverflowError on an offset of 2**63: an object of an image is
    untrusted, and no parser error escapes."""
    data = hostile_symtab_offset(objects["lib"].read_bytes(), offset)
    table = read_functions(data, "/usr/lib/libx.so")
    assert isinstance(table, str)
    assert table.startswith("could not read symbols of /usr/lib/libx.so: "), table


class FilesContainer:
    """A created container's archive of one path: a file, or a symbolic link to one."""

    def __init__(self, files: dict[str, bytes], links: dict[str, str]) -> None:
        self.files, self.links = files, links
        self.removed = False

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo(path.rsplit("/", 1)[-1])
            if path in self.links:
                info.type, info.linkname = tarfile.SYMTYPE, self.links[path]
                tar.addfile(info)
            elif path in self.files:
                info.size = len(self.files[path])
                tar.addfile(info, io.BytesIO(self.files[path]))
            else:
                raise docker.errors.NotFound(path)
        return iter([out.getvalue()]), {"size": info.size}

    def remove(self, force: bool = False) -> None:
        self.removed = True


class Client:
    def __init__(self, container: FilesContainer) -> None:
        self.containers = self
        self.container = container
        self.created: list[dict[str, Any]] = []

    def create(self, image: str, **kwargs: Any) -> FilesContainer:
        self.created.append(kwargs)
        return self.container


def test_objects_are_copied_out_once_per_image_following_links(
    objects: dict[str, Path],
) -> None:
    data = objects["lib"].read_bytes()
    container = FilesContainer(
        {"/lib/real/libx.so": data}, {"/usr/lib/libx.so": "../../lib/real/libx.so"}
    )
    client = Client(container)
    offset = nm(objects["lib"])["hidden_work"]
    wanted = [("/usr/lib/libx.so", offset), ("/usr/lib/libx.so", offset + 2), ("/gone.so", 8)]
    symbols, notes = symbolize.resolve(client, "sha256:image-a", wanted)  # type: ignore[arg-type]
    assert symbols == [
        {"object": "/usr/lib/libx.so", "offset": f"{offset:#x}", "function": "hidden_work",
         "function_offset": "0x0"},
        {"object": "/usr/lib/libx.so", "offset": f"{offset + 2:#x}", "function": "hidden_work",
         "function_offset": "0x2"},
    ]  # fmt: skip
    assert notes == {"/usr/lib/libx.so": ".symtab", "/gone.so": "not in the image"}
    assert container.removed and client.created[0]["command"] == ["none"]
    # the same image again: nothing is copied
    again = symbolize.resolve(client, "sha256:image-a", wanted)  # type: ignore[arg-type]
    assert again == (symbols, notes) and len(client.created) == 1
