"""The cffi twin of the probe (probes/fips_twin.py): a second, independent witness.

The helpers that need no OpenSSL are tested always. The cross-check runs the C probe and
the twin on real OpenSSL builds of the development machine (FIPS_TWIN_BUILDS, default
/tmp/dev: openssl-3.0.20 with the default link, np the same relinked without -znodelete,
openssl-4.0.2, np-4.0.2 the same relinked without -znodelete) and requires the same verdict
and the same key observations from both; it is skipped, with the reason, where those builds,
gcc or a Python with cffi are missing. The matrix's containers run the real cross-check
everywhere else. On the real builds, the C probe's crash lines are also read back and the
crashes attributed from them (offset in the object mapped there at the time, pyelftools).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_probe_trace import function_at, hexnum, parse

from matrix.judge import verdict as v
from matrix.judge.cell import twin_ran as cell_twin_ran
from matrix.model.vocabulary import Scenario, Verdict

REPO = Path(__file__).resolve().parents[2]
TWIN = REPO / "probes" / "fips_twin.py"
PROBE_C = REPO / "probes" / "fips_probe.c"
FIXTURES = Path(__file__).parent / "fixtures"
DEV = Path(os.environ.get("FIPS_TWIN_BUILDS", "/tmp/dev"))
SCENARIOS = [s.value for s in Scenario]  # the model's: the twin and the C probe must match
WORKERS = ("worker-thread", "worker-no-stop", "thread-pool")
# label: (build directory under DEV, libcrypto file name, extra --config lines)
BUILDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "3.0.20-default": ("openssl-3.0.20", "libcrypto.so.3", ()),
    "3.0.20-no-pinshared": ("np", "libcrypto.so.3", ()),
    "4.0.2-default": ("openssl-4.0.2", "libcrypto.so.4", ()),
    "4.0.2-no-pinshared": ("np-4.0.2", "libcrypto.so.4", ()),
}
DEFERRED = ("openssl-4.0.2", "libcrypto.so.4", ("defer-tests=1",))


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
    allowed |= {"threading", "time", "typing", "subprocess", "cffi"}
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


def test_default_fips_key_is_openssls() -> None:
    header = DEV / "openssl-3.0.20" / "include" / "openssl" / "fipskey.h"
    if header.is_file():
        assert f'"{twin.DEFAULT_FIPS_KEY}"' in header.read_text()
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


# ---------- the cross-check on real builds ----------


def python_with_cffi() -> str | None:
    """The running interpreter if it has cffi, else Debian's python3 with python3-cffi."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and os.path.exists(candidate):
            ok = subprocess.run([candidate, "-c", "import cffi"], capture_output=True, check=False)
            if ok.returncode == 0:
                return candidate
    return None


@pytest.fixture(scope="module")
def twin_python() -> str:
    python = python_with_cffi()
    if python is None:
        pytest.skip("no Python with cffi here (apt-get install python3-cffi)")
    return python


def build_paths(directory: str, libcrypto: str) -> tuple[Path, Path, Path]:
    root = DEV / directory
    return root, root / libcrypto, root / "providers" / "fips.so"


@pytest.fixture(scope="module")
def c_probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C probe compiled against each build present (as fips-matrix-build.sh does)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("probes")
    probes: dict[str, Path] = {}
    for directory, libcrypto, _ in (*BUILDS.values(), DEFERRED):
        root, lib, module = build_paths(directory, libcrypto)
        if directory in probes or not (lib.is_file() and module.is_file()):
            continue
        binary = out / f"fips_probe-{directory}"
        command = ["gcc", "-O1", "-o", str(binary), str(PROBE_C), f"-I{root}/include"]
        command += [f"-L{root}", "-lcrypto", "-ldl", f"-Wl,-rpath,{root}", "-pthread"]
        subprocess.run(
            command,
            check=True,
            capture_output=True,
        )
        probes[directory] = binary
    return probes


def run_json(command: list[str], what: str) -> tuple[int, dict[str, Any], str]:
    """Exit code as the batch driver reports it (128+N when killed by signal N), the
    document, and stderr."""
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    try:
        doc: dict[str, Any] = json.loads(run.stdout)
    except ValueError:
        pytest.fail(f"{what} printed no JSON (exit {run.returncode}): {run.stderr[-2000:]}")
    code = run.returncode if run.returncode >= 0 else 128 - run.returncode
    return code, doc, run.stderr


Run = tuple[int, dict[str, Any], str]


def both(
    build: tuple[str, str, tuple[str, ...]],
    scenario: str,
    c_probes: dict[str, Path],
    python: str,
    tmp_path: Path,
) -> tuple[Run, Run]:
    directory, libcrypto, config = build
    _, lib, module = build_paths(directory, libcrypto)
    if directory not in c_probes:
        pytest.skip(f"no OpenSSL build at {DEV / directory}")
    common = ["--scenario", scenario, "--module", str(module)]
    canary = DEV / "libcanary.so"
    if canary.is_file():
        common += ["--canary", str(canary)]
    for line in config:
        common += ["--config", line]
    (tmp_path / "c").mkdir()
    (tmp_path / "twin").mkdir()
    c = run_json([str(c_probes[directory]), *common, "--workdir", str(tmp_path / "c")], "C probe")
    t = run_json(
        [python, str(TWIN), *common, "--workdir", str(tmp_path / "twin"), "--libcrypto", str(lib)],
        "twin",
    )
    return c, t


def assert_same_observations(scenario: str, c_doc: dict[str, Any], t_doc: dict[str, Any]) -> None:
    assert t_doc["witness"] == "cffi"
    assert t_doc["completed"] is True and c_doc["completed"] is True
    for key in ("schema", "scenario", "module", "module_config_extra", "libc", "provider"):
        assert t_doc[key] == c_doc[key], key
    assert t_doc["versions"]["openssl"] == c_doc["versions"]["openssl"]
    assert t_doc["baseline"] == c_doc["baseline"]  # NODELETE, canary, sha256, nothing preloaded
    assert t_doc["leaked_reference"] == c_doc["leaked_reference"]
    c_steps, t_steps = c_doc["steps"], t_doc["steps"]
    assert [s["name"] for s in t_steps] == [s["name"] for s in c_steps]
    timing = scenario in WORKERS  # workers run beside the steps: counts may differ
    for c_step, t_step in zip(c_steps, t_steps, strict=True):
        where = f"step {c_step['name']}"
        for key in ("ok", "status", "digest_ok", "noload_loaded"):
            assert t_step[key] == c_step[key], f"{where}: {key}"
        assert (t_step["mappings"] > 0) == (c_step["mappings"] > 0), f"{where}: mapped"
        c_st, t_st = c_step["self_tests"], t_step["self_tests"]
        assert (t_st["started"] > 0) == (c_st["started"] > 0), f"{where}: self-tests ran"
        assert t_st["failed_tests"] == c_st["failed_tests"], f"{where}: failed tests"
        assert t_st["corrupted"] == c_st["corrupted"], f"{where}: corrupted"
        if not timing:
            assert t_st == c_st, where
            assert t_step["errors"] == c_step["errors"], f"{where}: errors"
    if scenario == "worker-thread":
        assert_same_worker(c_doc["worker"], t_doc["worker"])
        assert "workers" not in c_doc and "workers" not in t_doc
    if scenario in ("worker-no-stop", "thread-pool"):
        assert "worker" not in c_doc and "worker" not in t_doc
        c_ws, t_ws = c_doc["workers"], t_doc["workers"]
        assert len(c_ws) == len(t_ws) == (4 if scenario == "thread-pool" else 1)
        for c_w, t_w in zip(c_ws, t_ws, strict=True):
            assert_same_worker(c_w, t_w)
            for key in ("name", "calls_thread_stop", "called_thread_stop"):
                assert t_w[key] == c_w[key], key
            for key in ("exited_before_failure", "exits_after_document"):
                assert t_w[key] == c_w[key], key
            assert t_w["exits_after_document"] is not t_w["exited_before_failure"]
            assert isinstance(c_w["tid"], int) and isinstance(t_w["tid"], int)
    if scenario == "exit-after-reload":
        for key in ("exit_without_context", "exit_after_cleanup", "context_alive_at_exit"):
            assert t_doc[key] == c_doc[key], key
    else:
        assert "exit_without_context" not in c_doc and "exit_without_context" not in t_doc


def assert_same_worker(c_w: dict[str, Any], t_w: dict[str, Any]) -> None:
    assert list(t_w) == list(c_w)
    assert t_w["stopped_before_free"] is c_w["stopped_before_free"] is True
    assert t_w["ok_before_failure"] > 0 and c_w["ok_before_failure"] > 0
    # which call meets the error state first (RAND or HMAC) is a matter of timing
    assert (t_w["first_error"] is None) == (c_w["first_error"] is None)
    assert (t_w["failed_after_failure"] > 0) == (c_w["failed_after_failure"] > 0)


def assert_same_judgement(scenario: str, c: Run, t: Run) -> None:
    c_j = v.judge_run(scenario, c[0], False, c[1])
    t_j = v.judge_run(scenario, t[0], False, t[1])
    assert t_j.verdict == c_j.verdict
    assert c[1]["completed"] is t[1]["completed"] is True
    if c[0] == 0:
        assert t[0] == 0, f"the twin died ({t[0]}) where the C probe ended normally"
        return
    # The C probe died after its document: its crash lines must say it was a worker's
    # exit. The twin's fate may then differ: a thread-exit handler that uses freed memory
    # faults, spins (the twin aborts a stuck thread: SIGABRT) or does no visible harm,
    # depending on what the memory holds in that process.
    [crash] = [r for m, r in parse(c[2]).records if m == "fips-probe-crash"]
    assert c[0] == 128 + crash["signal"] and crash["phase"] == "after-document"
    assert crash["thread"] in {w["name"] for w in c[1].get("workers", [])} | {"worker"}
    assert t[0] == 0 or 128 < t[0] < 160, t[0]
    for fact in ("mapped_after_unload", "noload_after_unload", "reload_ok"):
        assert t_j.facts[fact] == c_j.facts[fact], fact
    assert t_j.facts["reload_fresh_instance"] == c_j.facts["reload_fresh_instance"]
    assert v.judge(scenario, t[1]).cause == v.judge(scenario, c[1]).cause


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("label", list(BUILDS))
def test_twin_and_c_probe_agree(
    label: str, scenario: str, c_probes: dict[str, Path], twin_python: str, tmp_path: Path
) -> None:
    c, t = both(BUILDS[label], scenario, c_probes, twin_python, tmp_path)
    assert_same_judgement(scenario, c, t)
    assert_same_observations(scenario, c[1], t[1])


def test_twin_and_c_probe_agree_with_deferred_self_tests(
    c_probes: dict[str, Path], twin_python: str, tmp_path: Path
) -> None:
    """4.0's defer-tests: load-kat's corrupted KAT fires at first use (digest_a)."""
    c, t = both(DEFERRED, "load-kat", c_probes, twin_python, tmp_path)
    assert_same_judgement("load-kat", c, t)
    assert (c[0], t[0]) == (0, 0)
    assert_same_observations("load-kat", c[1], t[1])
    assert t[1]["module_config_extra"] == ["defer-tests=1"]


def test_twin_refuses_when_another_libcrypto_is_mapped(twin_python: str, tmp_path: Path) -> None:
    directory, libcrypto, _ = BUILDS["3.0.20-no-pinshared"]
    _, lib, module = build_paths(directory, libcrypto)
    if not lib.is_file():
        pytest.skip(f"no OpenSSL build at {DEV / directory}")
    # _hashlib maps the interpreter's own libcrypto, when it was built with one
    code = (
        "import sys, runpy, hashlib; "
        "maps = open('/proc/self/maps').read(); "
        "sys.exit(99) if 'libcrypto.so' not in maps else None; "
        "sys.argv = ['fips_twin.py'] + sys.argv[1:]; "
        "runpy.run_path(sys.argv.pop(1), run_name='__main__')"
    )
    command = [twin_python, "-c", code, str(TWIN), "--scenario", "no-failure"]
    command += ["--module", str(module), "--libcrypto", str(lib), "--workdir", str(tmp_path)]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode == 99:
        pytest.skip(f"{twin_python}'s hashlib maps no libcrypto")
    assert run.returncode == twin.EXIT_SETUP, run.stderr
    doc = json.loads(run.stdout)
    assert "another libcrypto is already mapped" in doc["error"]
    assert "completed" not in doc


# ---------- crashes after the reload, attributed from the C probe's lines alone ----------


def run_c(label: str, scenario: str, c_probes: dict[str, Path], tmp_path: Path) -> Run:
    directory, _, _ = BUILDS[label]
    _, _, module = build_paths(directory, "")
    if directory not in c_probes:
        pytest.skip(f"no OpenSSL build at {DEV / directory}")
    command = [str(c_probes[directory]), "--scenario", scenario, "--module", str(module)]
    return run_json([*command, "--workdir", str(tmp_path)], "C probe")


def object_at(records: list[dict[str, Any]], address: int) -> dict[str, Any] | None:
    """The fips-probe-object record whose ranges held this address (the latest one)."""
    found = None
    for record in records:
        if any(hexnum(m["start"]) <= address < hexnum(m["end"]) for m in record["mappings"]):
            found = record
    return found


def test_the_worker_exit_after_a_clean_reload_runs_code_of_the_unloaded_fips_so(
    c_probes: dict[str, Path], tmp_path: Path
) -> None:
    """4.0.2 no-pinshared, worker-thread: the reload is clean, and the worker's exit, after
    the document, jumps into the text of the first fips.so, unmapped since unload_a: the
    thread-local destructor that copy of the module registered."""
    code, doc, stderr = run_c("4.0.2-no-pinshared", "worker-thread", c_probes, tmp_path)
    assert v.judge("worker-thread", doc).verdict == Verdict.CLEAN_RELOAD
    assert code == 139
    trace = parse(stderr)
    assert trace.events()[-2:] == ["document-printed", "worker-exiting"]
    [crash] = trace.of("fips-probe-crash")
    [worker] = [t for t in trace.of("fips-probe-thread") if t["name"] == "worker"]
    assert (crash["tid"], crash["thread"]) == (worker["tid"], "worker")
    assert crash["phase"] == "after-document"
    fips = [o for o in trace.of("fips-probe-object") if o["object"] == "fips"]
    assert [(o["state"], o["generation"], o["step"]) for o in fips] == [
        ("mapped", 1, "load_a"),
        ("unmapped", 1, "unload_a"),
        ("mapped", 2, "reload_b"),
        ("unmapped", 2, "free_b"),
    ]
    pc = hexnum(crash["pc"])
    assert hexnum(crash["addr"]) == pc and crash["pc_perms"] is None
    assert not any(start <= pc < end for start, end, *_ in trace.maps)
    where = object_at(fips, pc)
    assert where is not None and where["generation"] == 1
    assert function_at(where["path"], pc - hexnum(where["base"])) == "clean_master_key"
    # the return address on the stack: the C library's thread exit, calling destructors
    caller = hexnum(crash["stack"][0])
    [(_, _, perms, _, path)] = [m for m in trace.maps if m[0] <= caller < m[1]]
    assert "/libc.so" in path and "x" in perms


def test_a_worker_that_never_called_thread_stop_faults_in_libcrypto_on_its_exit(
    c_probes: dict[str, Path], tmp_path: Path
) -> None:
    """3.0.20, worker-no-stop: the worker used context A and never called
    OPENSSL_thread_stop_ex; A was freed. At the worker's exit libcrypto's thread-stop
    handler reads A's per-thread RAND state through the freed context: a use after free
    in libcrypto (fips.so is still mapped: the thread's state holds it)."""
    code, doc, stderr = run_c("3.0.20-no-pinshared", "worker-no-stop", c_probes, tmp_path)
    assert v.judge("worker-no-stop", doc).facts["mapped_after_unload"] is True
    if code == 0:
        pytest.skip("the use after free did no visible harm in this run")
    trace = parse(stderr)
    [crash] = trace.of("fips-probe-crash")
    assert code == 128 + crash["signal"] and crash["thread"] == "worker"
    assert crash["pc_perms"] is not None and "x" in crash["pc_perms"]
    [backtrace] = trace.of("fips-probe-backtrace")
    named = []
    for frame in map(hexnum, backtrace["frames"]):
        [path] = [m[4] for m in trace.maps if m[0] <= frame < m[1]]
        if path.startswith("/"):  # not [vdso]
            base = min(m[0] for m in trace.maps if m[4] == path)
            named.append((Path(path).name, function_at(path, frame - base)))
    assert ("libcrypto.so.3", "rand_delete_thread_state") in named
    assert ("libcrypto.so.3", "init_thread_destructor") in named
    assert not any(name == "fips.so" for name, _ in named)
