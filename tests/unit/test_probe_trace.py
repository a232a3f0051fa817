"""The probe's crash attribution (probes/probe_trace.h) and the OpenSSL surface of
probes/fips_probe.c.

A small harness includes probe_trace.h as the probe does, and is compiled here with each C
compiler present (gcc; musl-gcc when installed): it runs code of a library after dlclose
unmapped it, dereferences NULL, aborts, gets stuck in a thread's exit, or just returns, and
the tests read the stderr lines it writes (formats: docs/probe-document.md) and attribute the
fault from them alone, as the report's symbolizer will: offset = address - load base of the
object mapped there at the time, looked up in the object's symbol table with pyelftools.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from matrix.judge.crash_lines import MAPS_LINE, MARKERS  # the line formats, as the judge reads them

REPO = Path(__file__).resolve().parents[2]
PROBES = REPO / "probes"
PROBE_C = PROBES / "fips_probe.c"
TWIN = PROBES / "fips_twin.py"

HARNESS = r"""
#define _GNU_SOURCE
#include "probe_trace.h"
#include <dlfcn.h>
#include <stdio.h>

static int (*victim)(void);
static pthread_key_t key;
static volatile int spin = 1;
static volatile long thread_tid;

static void stuck_destructor(void *p)
{
    (void)p;
    while (spin)
        ;
}

static void *thread_main(void *arg)
{
    const char *mode = arg;
    int unloaded = strcmp(mode, "unloaded") == 0;

    (void)trace_thread_start(unloaded ? "doomed" : "stuck");
    thread_tid = (long)trace_gettid();
    if (unloaded)
        printf("victim returned %d\n", victim());
    else
        pthread_setspecific(key, (void *)1); /* its destructor never returns */
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    pthread_t t;

    trace_install();
    trace_phase = mode;
    if (strcmp(mode, "unloaded") == 0 && argc > 2) {
        char real[PATH_MAX];
        void *h;

        if (realpath(argv[2], real) == NULL || (h = dlopen(real, RTLD_NOW)) == NULL)
            return 3;
        trace_watch("victim", real);
        trace_objects("load");
        *(void **)&victim = dlsym(h, "victim");
        dlclose(h);
        trace_objects("unload");
        pthread_create(&t, NULL, thread_main, (void *)mode);
        pthread_join(t, NULL);
        fflush(stdout);
        return 0;
    }
    if (strcmp(mode, "null") == 0) {
        volatile int *volatile p = NULL;

        *p = 1;
    }
    if (strcmp(mode, "abort") == 0)
        abort();
    if (strcmp(mode, "stuck") == 0) {
        pthread_key_create(&key, stuck_destructor);
        pthread_create(&t, NULL, thread_main, (void *)mode);
        while (thread_tid == 0)
            ;
        if (!trace_thread_gone((pid_t)thread_tid, 1))
            trace_abort_thread((pid_t)thread_tid, "stuck");
        pthread_join(t, NULL);
    }
    trace_event("main-returning", NULL, NULL);
    return 0;
}
"""
VICTIM = "int victim(void) { return 42; }\n"


@dataclass
class Trace:
    """The lines of one run, parsed as docs/probe-document.md describes them."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    maps: list[tuple[int, int, str, int, str]] = field(default_factory=list)  # at the crash
    other: list[str] = field(default_factory=list)

    def of(self, marker: str) -> list[dict[str, Any]]:
        return [d for m, d in self.records if m == marker]

    def events(self) -> list[str]:
        return [str(d["event"]) for d in self.of("fips-probe-event")]


def parse(stderr: str) -> Trace:
    trace = Trace()
    in_maps = False
    for line in stderr.splitlines():
        marker, _, rest = line.partition(" ")
        if marker in MARKERS:
            record = json.loads(rest)
            assert isinstance(record, dict)
            trace.records.append((marker, record))
            in_maps = marker == "fips-probe-maps-begin"
        elif in_maps:
            found = MAPS_LINE.match(line)
            assert found is not None, line
            start, end, perms, offset, path = found.groups()
            trace.maps.append((int(start, 16), int(end, 16), perms, int(offset, 16), path))
        else:
            trace.other.append(line)
    return trace


def hexnum(value: Any) -> int:
    assert isinstance(value, str) and re.fullmatch(r"0x[0-9a-f]+", value), value
    return int(value, 16)


def function_at(path: str, offset: int) -> str | None:
    """The symbol table's function that holds this offset (a shared object is linked at 0)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for name in (".symtab", ".dynsym"):
            table = elf.get_section_by_name(name)
            if table is None:
                continue
            for sym in table.iter_symbols():  # type: ignore[attr-defined]
                value, size = int(sym["st_value"]), int(sym["st_size"])
                if sym["st_info"]["type"] == "STT_FUNC" and value <= offset < value + size:
                    return str(sym.name)
    return None


def compilers() -> list[str | None]:
    return [c for c in ("gcc", "musl-gcc") if shutil.which(c)] or [None]


@dataclass(frozen=True)
class Built:
    compiler: str
    harness: Path
    victim: Path

    @property
    def glibc(self) -> bool:
        return self.compiler != "musl-gcc"


@pytest.fixture(scope="module", params=compilers())
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    compiler = request.param
    if compiler is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp(f"trace-{compiler}")
    (out / "harness.c").write_text(HARNESS)
    (out / "victim.c").write_text(VICTIM)
    warnings = ["-O1", "-Wall", "-Wextra", "-Werror"]
    for command in (
        [compiler, *warnings, "-shared", "-fPIC", "-o", "libvictim.so", "victim.c"],
        [compiler, *warnings, f"-I{PROBES}", "-o", "harness", "harness.c", "-ldl", "-pthread"],
    ):
        done = subprocess.run(command, cwd=out, capture_output=True, text=True, check=False)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    return Built(compiler, out / "harness", out / "libvictim.so")


def run(built: Built, *args: str) -> tuple[int, int, str, Trace]:
    proc = subprocess.Popen(
        [str(built.harness), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    trace = parse(err)
    for _, record in trace.records:  # every line says which process and thread wrote it
        assert record["pid"] == proc.pid and isinstance(record["tid"], int)
    return proc.returncode, proc.pid, out, trace


def the_crash(trace: Trace, signal: int) -> dict[str, Any]:
    [crash] = trace.of("fips-probe-crash")
    assert crash["signal"] == signal
    assert crash["first"] is True
    assert 0 < len(crash["stack"]) <= 64
    for word in crash["stack"]:
        hexnum(word)
    hexnum(crash["sp"])
    assert trace.maps, "no maps at the crash"
    assert [m for m, _ in trace.records][-3:] == [
        "fips-probe-maps-begin",
        "fips-probe-maps-end",
        "fips-probe-backtrace",
    ]
    return crash


def mapped_at_crash(trace: Trace, address: int) -> tuple[int, int, str, int, str] | None:
    return next((m for m in trace.maps if m[0] <= address < m[1]), None)


def test_code_of_an_unmapped_library_is_attributed_to_it(built: Built) -> None:
    code, pid, out, trace = run(built, "unloaded", str(built.victim))
    victim = str(built.victim.resolve())
    objects = [o for o in trace.of("fips-probe-object") if o["object"] == "victim"]
    mapped = objects[0]
    assert (mapped["state"], mapped["generation"], mapped["step"]) == ("mapped", 1, "load")
    assert mapped["path"] == victim
    base = hexnum(mapped["base"])
    assert any(hexnum(m["start"]) == base and hexnum(m["offset"]) == 0 for m in mapped["mappings"])
    text = [m for m in mapped["mappings"] if "x" in m["perms"]]
    assert len(text) == 1
    if not built.glibc:
        # musl's dlclose leaves everything mapped: the stale pointer still works
        assert [o["state"] for o in objects] == ["mapped"]
        assert (code, out) == (0, "victim returned 42\n")
        assert trace.of("fips-probe-crash") == []
        return
    gone = objects[1]
    assert (gone["state"], gone["generation"], gone["step"]) == ("unmapped", 1, "unload")
    assert gone["mappings"] == mapped["mappings"] and gone["base"] == mapped["base"]

    assert code == -11 and out == ""
    crash = the_crash(trace, 11)
    doomed = [t for t in trace.of("fips-probe-thread") if t["name"] == "doomed"]
    assert [t["tid"] for t in doomed] == [crash["tid"]] and crash["tid"] != pid
    assert crash["thread"] == "doomed" and crash["signal_name"] == "SIGSEGV"
    assert crash["phase"] == "unloaded" and crash["code"] == 1  # SEGV_MAPERR
    pc = hexnum(crash["pc"])
    assert hexnum(crash["addr"]) == pc  # the fault was fetching the instruction itself
    assert crash["pc_perms"] is None and mapped_at_crash(trace, pc) is None
    assert hexnum(text[0]["start"]) <= pc < hexnum(text[0]["end"])
    assert function_at(victim, pc - base) == "victim"
    [bt] = trace.of("fips-probe-backtrace")
    assert bt["frames"] is None and "no executable mapping" in bt["why"]


def test_a_fault_in_mapped_code_has_a_backtrace(built: Built) -> None:
    code, pid, _, trace = run(built, "null")
    assert code == -11
    crash = the_crash(trace, 11)
    assert (crash["tid"], crash["thread"], crash["phase"]) == (pid, "main", "null")
    assert hexnum(crash["addr"]) == 0
    pc = hexnum(crash["pc"])
    where = mapped_at_crash(trace, pc)
    assert where is not None and where[4] == str(built.harness) and "x" in where[2]
    assert crash["pc_perms"] == where[2]
    harness_base = min(m[0] for m in trace.maps if m[4] == str(built.harness) and m[3] == 0)
    assert function_at(str(built.harness), pc - harness_base) == "main"
    [bt] = trace.of("fips-probe-backtrace")
    if built.glibc:
        frames = [hexnum(f) for f in bt["frames"]]
        assert pc in frames
    else:
        assert bt["frames"] is None and "musl" in bt["why"]


def test_an_abort_is_reported_without_a_fault_address(built: Built) -> None:
    code, pid, _, trace = run(built, "abort")
    assert code == -6
    crash = the_crash(trace, 6)
    assert crash["signal_name"] == "SIGABRT" and crash["code"] <= 0 and crash["addr"] is None
    assert crash["tid"] == pid


def test_a_thread_stuck_in_its_exit_is_aborted_where_it_is_stuck(built: Built) -> None:
    code, pid, _, trace = run(built, "stuck")
    assert code == -6
    [stuck] = [e for e in trace.of("fips-probe-event") if e["event"] == "thread-exit-stuck"]
    crash = the_crash(trace, 6)
    assert crash["tid"] == stuck["stuck_tid"] != pid
    assert crash["thread"] == stuck["thread"] == "stuck"
    pc = hexnum(crash["pc"])
    harness_base = min(m[0] for m in trace.maps if m[4] == str(built.harness) and m[3] == 0)
    assert function_at(str(built.harness), pc - harness_base) == "stuck_destructor"


def test_a_clean_exit_reports_its_lifecycle_and_no_crash(built: Built) -> None:
    code, pid, _, trace = run(built, "exit")
    assert code == 0
    assert trace.of("fips-probe-crash") == [] and trace.maps == []
    assert trace.of("fips-probe-thread") == [
        {"pid": pid, "tid": pid, "name": "main", "altstack": True}
    ]
    assert trace.events() == ["main-returning", "atexit"]  # atexit runs last
    assert trace.other == []


# ---------- the OpenSSL surface of the probe ----------


def code_of(path: Path) -> str:
    """C source without its comments and string literals."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def listed_functions() -> tuple[set[str], set[str]]:
    """The functions and header-only names the probe's top comment says it uses."""
    head = PROBE_C.read_text(encoding="utf-8").split("*/", 1)[0]
    functions = head.split("functions:", 1)[1].split("header-only:", 1)[0]
    header_only = head.split("header-only:", 1)[1].split("(", 1)[0]
    return set(functions.replace("*", " ").split()), set(header_only.split())


def test_the_probe_uses_exactly_the_openssl_functions_it_lists() -> None:
    call = r"\b((?:OPENSSL|OpenSSL|OSSL|EVP|ERR|RAND|CRYPTO)_\w+)\s*\("
    called = set(re.findall(call, code_of(PROBE_C)))
    functions, header_only = listed_functions()
    assert header_only == {"ERR_GET_REASON"}
    assert called == functions | header_only
    assert len(functions) <= 24  # small: the portable build resolves each at run time
    # and the cffi twin declares exactly the same ones
    cdef = TWIN.read_text(encoding="utf-8").split('CDEF = """', 1)[1].split('"""', 1)[0]
    declared = set(re.findall(r"\b(\w+)\s*\((?!\*)", cdef))  # not "int (*cb)("
    assert declared == functions


def test_the_probe_includes_only_public_openssl_headers_and_each_build_value_once() -> None:
    source = PROBE_C.read_text(encoding="utf-8")
    includes = re.findall(r"#include\s+([<\"][^>\"]+[>\"])", source)
    openssl = [i for i in includes if "openssl" in i or "internal" in i or "prov/" in i]
    assert openssl and all(re.fullmatch(r"<openssl/\w+\.h>", i) for i in openssl)
    assert [i for i in includes if i.startswith('"')] == ['"probe_trace.h"']
    code = code_of(PROBE_C)
    assert code.count("OPENSSL_VERSION_TEXT") == 1 and code.count("FIPS_KEY_STRING") == 1
    assert "OPENSSL_free" not in code and "OSSL_PARAM_construct" not in code
    assert "openssl" not in code_of(PROBES / "probe_trace.h").lower()  # no OpenSSL at all
