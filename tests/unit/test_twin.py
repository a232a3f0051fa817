"""The cffi twin of the probe (probes/fips_twin.py): a second, independent witness.

Here, what needs no OpenSSL: its helpers, its surface, its documents judged like the C
probe's. The cross-check on real OpenSSL builds (the same verdict and the same key
observations from both, the crashes after the document) is tests/e2e/test_twin_e2e.py,
on the cell images the tool builds; the crash attribution on real builds is
tests/e2e/test_crash_e2e.py.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from matrix.judge import verdict as v
from matrix.judge.cell import twin_ran as cell_twin_ran
from matrix.model.vocabulary import Scenario, Verdict

REPO = Path(__file__).resolve().parents[2]
TWIN = REPO / "probes" / "fips_twin.py"
PROBE_C = REPO / "probes" / "fips_probe.c"
FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = [s.value for s in Scenario]  # the model's: the twin and the C probe must match


def load_twin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fips_twin", TWIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fips_twin"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


twin = load_twin()


def fixture(build: str, scenario: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"glibc-{build}-{scenario}.json").read_text())
    return data


# ---------- helpers without OpenSSL ----------


def test_the_twin_offers_the_c_probes_scenarios() -> None:
    names = PROBE_C.read_text(encoding="utf-8").split("scenario_names[] = {", 1)[1]
    in_c = [s.strip().strip('"') for s in names.split("}", 1)[0].split(",") if s.strip()]
    assert list(twin.SCENARIOS) == in_c == SCENARIOS


def test_the_twin_imports_only_the_standard_library_and_cffi() -> None:
    """Nothing that maps a libcrypto of its own (hashlib, ssl, random, uuid, tempfile...)."""
    allowed = {"__future__", "argparse", "dataclasses", "json", "os", "struct", "sys"}
    allowed |= {"threading", "time", "typing", "subprocess", "signal", "cffi"}
    imported = set()
    for node in ast.walk(ast.parse(TWIN.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= allowed, imported - allowed


def test_importing_the_twin_maps_no_libcrypto() -> None:
    """What the import itself brings: no module that maps a libcrypto, and no mapping."""
    code = (
        "import sys; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); "
        "import fips_twin as t; "
        "bad = {'hashlib', '_hashlib', 'ssl', '_ssl', 'random', 'uuid', 'tempfile'}; "
        "print(t.libcrypto_mappings(t.read_maps()), sorted(bad & (set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(TWIN.parent)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] []"


MAPS = b"""\
55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 123 /usr/bin/python3.11
7f0000000000-7f0000010000 r--p 00000000 fd:01 77 /opt/fips-matrix/lib/ossl-modules/fips.so
7f0000010000-7f0000090000 r-xp 00010000 fd:01 77 /opt/fips-matrix/lib/ossl-modules/fips.so
7f0000090000-7f00000a0000 r--p 00090000 fd:01 77 /opt/fips-matrix/lib/ossl-modules/fips.so
7f00000a0000-7f00000b0000 rw-p 000a0000 fd:01 78 /opt/fips-matrix/lib/ossl-modules/fips.so.bak
7f00000b0000-7f00000c0000 rw-p 000a0000 fd:01 79 /old/fips.so (deleted)
7f00000c0000-7f00000d0000 rw-p 00000000 00:00 0 \n\
7f1000000000-7f1000100000 r--p 00000000 fd:01 90 /opt/fips-matrix/lib/libcrypto.so.3
7f1000100000-7f1000300000 r-xp 00100000 fd:01 90 /opt/fips-matrix/lib/libcrypto.so.3
7f1000300000-7f1000310000 r--p 00000000 fd:01 91 /opt/fips-matrix/lib/libssl.so.3
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
"""


def test_mappings_are_counted_by_the_last_field_only() -> None:
    module = b"/opt/fips-matrix/lib/ossl-modules/fips.so"
    assert twin.count_mappings(MAPS, module) == 3  # not .bak, not another directory
    assert twin.count_mappings(MAPS, b"/old/fips.so") == 0  # "(deleted)" is not the path
    assert twin.count_mappings(b"", module) == 0


def test_any_libcrypto_already_mapped_is_found_once() -> None:
    assert twin.libcrypto_mappings(MAPS) == ["/opt/fips-matrix/lib/libcrypto.so.3"]
    assert twin.libcrypto_mappings(MAPS.replace(b"libcrypto", b"libfoo")) == []
    other = MAPS + b"7f20-7f21 r--p 0 fd:01 5 /usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"
    assert len(twin.libcrypto_mappings(other)) == 2


def tiny_elf(flags_1: int | None, elf_class: int = 2) -> bytes:
    """An ELF64 header, one PT_DYNAMIC program header, and its dynamic entries."""
    dyn = b""
    if flags_1 is not None:
        dyn += struct.pack("<qQ", 0x6FFFFFFB, flags_1)  # DT_FLAGS_1
    dyn += struct.pack("<qQ", 0, 0)  # DT_NULL
    dyn += struct.pack("<qQ", 0x6FFFFFFB, 0x8)  # after DT_NULL: must be ignored
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 2, 6, 120, 0, 0, len(dyn), len(dyn), 8)  # PT_DYNAMIC
    return header + phdr + dyn


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (tiny_elf(0x8), True),
        (tiny_elf(0x8 | 0x1), True),  # NODELETE among other flags (DF_1_NOW)
        (tiny_elf(0x1), False),
        (tiny_elf(None), False),
        (tiny_elf(0x8, elf_class=1), None),  # ELF32: not what the probe reads
        (b"#!/bin/sh\n", None),
        (b"", None),
    ],
    ids=["nodelete", "nodelete+now", "now-only", "no-flags_1", "elf32", "script", "empty"],
)
def test_elf_nodelete_flag_of_a_handmade_file(tmp_path: Path, data: bytes, expected: Any) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(data)
    assert twin.elf_nodelete(str(path)) is expected


def test_elf_nodelete_of_a_missing_file(tmp_path: Path) -> None:
    assert twin.elf_nodelete(str(tmp_path / "nothing.so")) is None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_elf_nodelete_flag_of_real_shared_objects(tmp_path: Path) -> None:
    src = tmp_path / "x.c"
    src.write_text("int x(void) { return 1; }\n")
    built = {}
    for name, flags in (("pinned", ["-Wl,-z,nodelete"]), ("plain", [])):
        out = tmp_path / f"lib{name}.so"
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *flags],
            check=True,
            capture_output=True,
        )
        built[name] = twin.elf_nodelete(str(out))
    assert built == {"pinned": True, "plain": False}


def test_module_config_is_the_c_probes_text() -> None:
    text = twin.config_text(b"/m/fips.so", "AB:CD", ["defer-tests=1", "a=b=c"])
    assert text == (
        b"openssl_conf = openssl_init\n"
        b"[openssl_init]\nproviders = provider_sect\n"
        b"[provider_sect]\nfips = fips_sect\n"
        b"[fips_sect]\nmodule = /m/fips.so\nmodule-mac = AB:CD\n"
        b"conditional-errors = 1\nsecurity-checks = 1\n"
        b"defer-tests = 1\na = b=c\n"
    )
    assert twin.format_mac(bytes([0x0A, 0xFF, 0x00])) == "0A:FF:00"
    assert twin.bad_mac("0A:FF") == "1A:FF"
    assert twin.bad_mac("B6:2C") == "06:2C"


def test_error_reasons_and_tri_state() -> None:
    assert twin.err_get_reason(0x1C8000A5) == 0xA5  # library bits dropped
    assert twin.err_get_reason(0x80000002) == 2  # a system error: errno
    assert [twin.tri(x) for x in (-1, None, 0, 1, 5, True, False)] == [
        None,
        None,
        False,
        True,
        True,
        True,
        False,
    ]


def test_default_fips_key_is_the_portable_probes() -> None:
    """OpenSSL's default FIPS key, written in our words twice: the twin's and the portable
    probe's header must say the same (the cells' fipskey.h is checked by the e2e cross-check:
    a wrong key makes every module-mac wrong and every load fail)."""
    header = (REPO / "probes" / "portable" / "fips_probe_ossl.h").read_text()
    assert f'FIPS_PROBE_DEFAULT_FIPS_KEY "{twin.DEFAULT_FIPS_KEY}"' in header
    assert len(bytes.fromhex(twin.DEFAULT_FIPS_KEY)) == 32


def test_step_record_has_the_c_probes_keys_in_order() -> None:
    c_step = fixture("unpinned", "ondemand-kat")["steps"][2]  # fail_a
    counts = twin.Counts(starts=29, passes=28, fails=1, corrupted=1)
    errors = c_step["errors"]
    mine = twin.step_record(
        "fail_a", False, errors, counts, twin.Counts(), "KAT_Digest/SHA2", 0, None, 5, True
    )
    assert list(mine) == list(c_step)
    assert list(mine["self_tests"]) == list(c_step["self_tests"])
    assert mine == c_step
    assert twin.step_record("x", None, [], counts, counts, "", -1, None, 0, False)["status"] is None


def test_a_twin_document_is_judged_like_the_c_probes() -> None:
    for build in ("nodelete", "unpinned"):
        for scenario in SCENARIOS:
            c_doc = fixture(build, scenario)
            t_doc = copy.deepcopy(c_doc)
            t_doc["witness"] = twin.WITNESS
            t_doc["versions"]["openssl_headers"] = None
            assert v.judge(scenario, t_doc) == v.judge(scenario, c_doc)


def test_a_refusal_is_never_a_verdict() -> None:
    doc = json.loads(twin.dumps(twin.error_document("ondemand-kat", "another libcrypto")))
    assert "completed" not in doc and doc["witness"] == "cffi"
    assert v.judge_run("ondemand-kat", twin.EXIT_SETUP, False, doc).verdict == Verdict.PROBE_CRASHED


def test_libcrypto_is_picked_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "libcrypto.so").touch()
    (tmp_path / "libcrypto.so.3").touch()
    assert twin.pick_libcrypto(str(tmp_path)) == str(tmp_path / "libcrypto.so.3")
    assert twin.pick_libcrypto("/x/libcrypto.so.4") == "/x/libcrypto.so.4"
    (tmp_path / "libcrypto.so.4").touch()
    with pytest.raises(ValueError, match="expected one"):
        twin.pick_libcrypto(str(tmp_path))


def test_command_line_takes_the_c_probes_options() -> None:
    argv = ["--scenario", "load-kat", "--module", "/m", "--libcrypto", "/l", "--canary", "/c"]
    argv += ["--workdir", "/w", "--config", "defer-tests=1", "--config", "x=y"]
    args = twin.parse_args(argv)
    assert (args.scenario, args.module, args.libcrypto, args.canary) == (
        "load-kat",
        "/m",
        "/l",
        "/c",
    )
    assert (args.workdir, args.config, args.fips_key) == (
        "/w",
        ["defer-tests=1", "x=y"],
        twin.DEFAULT_FIPS_KEY,
    )
    with pytest.raises(SystemExit):
        twin.parse_args(["--scenario", "nope", "--module", "/m", "--libcrypto", "/l"])
    assert args.module_mac is None  # computed, as the C probe does
    given = twin.parse_args([*argv, "--module-mac", "AB:CD"])
    assert given.module_mac == "AB:CD"  # an image's own value, as the portable probe gets it


def test_without_cffi_the_twin_refuses_and_is_no_witness(tmp_path: Path) -> None:
    """An image with python3 but no cffi: a refusal (exit 3, an "error" document), which the
    cell records as the twin being unavailable, never as a disagreement."""
    module = tmp_path / "fips.so"
    module.write_bytes(b"not read")
    # -I -S: no site-packages, so no cffi (the standard library never has it)
    command = [sys.executable, "-I", "-S", str(TWIN), "--scenario", "no-failure"]
    command += ["--module", str(module), "--libcrypto", "libcrypto.so.3"]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode == twin.EXIT_SETUP, run.stderr
    doc = json.loads(run.stdout)
    assert "cffi" in doc["error"] and "completed" not in doc
    assert not cell_twin_ran(run.returncode, doc)
