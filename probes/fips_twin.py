#!/usr/bin/env python3
"""fips_twin: a second, independent witness of probes/fips_probe.c, in Python with cffi (ABI mode).

It forces the same OpenSSL 3 FIPS provider failure, frees everything, watches the loader,
reloads, and prints one JSON document with the C probe's keys (schema 1) plus
"witness": "cffi", so that matrix/judge/verdict.py judges both the same way. A bug in one
implementation then shows as a disagreement instead of silently becoming a verdict.

Usage: fips_twin.py --scenario NAME --module PATH --libcrypto PATH [--canary PATH]
                    [--workdir DIR] [--config KEY=VALUE]... [--fips-key HEX] [--module-mac HEX]

--libcrypto is the libcrypto file to open; a directory holding exactly one libcrypto.so.N is
accepted too, and a bare name (libcrypto.so.3) is left to the dynamic loader's search, as for a
distribution's own libcrypto. --fips-key is the build's FIPS key (FIPS_KEY_STRING, which the C probe
takes from its headers); the default is OpenSSL's default key. --module-mac is the module's
integrity value to configure instead of the computed one (an image's own, as the portable probe
is given it).

Exit status: 0 with a complete document; 2 on bad usage; 3 when it cannot run (another
libcrypto already mapped in this interpreter, an unusable libcrypto, no cffi, a setup error): the
document then carries "error" (or baseline.setup_error) and no "completed". After a complete
document the process may still die by a signal (a worker thread's exit, the process's own
end): that is an observation too (docs/probe-document.md). A worker whose exit has not
finished 5 s after it was let go is stuck in its thread-local destructors: the twin then
aborts (SIGABRT) rather than hang. Whatever else hangs after the document (a stuck exit that
no Python code can see: the interpreter's own end, OpenSSL's exit handlers) ends by SIGALRM
15 s after it: the kernel's default action needs no Python code to run. The twin writes no
crash lines: attribution is the C probe's.

Runs inside a cell's container with Debian's python3 and python3-cffi: the standard library
and cffi only, Python 3.9 and later. It must not import anything that maps a libcrypto of
its own (hashlib, ssl, random, uuid, tempfile, ...): the module's HMAC and SHA-256 are
computed through the given libcrypto, in a private library context, as the C probe does.

Every observation is taken in its own statement, in the C probe's order.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

SCHEMA = 1
WITNESS = "cffi"
SCENARIOS = (
    "ondemand-kat",
    "load-kat",
    "integrity",
    "leaked-ref",
    "no-failure",
    "two-contexts",
    "worker-thread",
    "worker-no-stop",
    "thread-pool",
    "exit-after-reload",
    "worker-thread-no-failure",
    "worker-no-stop-no-failure",
    "thread-pool-no-failure",
)
# The controls of the scenarios with workers: each runs exactly as its partner, minus the
# forced failure (no fail_a, no refuses_a), as the C probe's shape_of.
SHAPE_OF = {
    "worker-thread-no-failure": "worker-thread",
    "worker-no-stop-no-failure": "worker-no-stop",
    "thread-pool-no-failure": "thread-pool",
}
# The failure is forced by an on-demand self-test with the SHA2 KAT corrupted.
ON_DEMAND = (
    "ondemand-kat",
    "leaked-ref",
    "two-contexts",
    "worker-thread",
    "worker-no-stop",
    "thread-pool",
    "exit-after-reload",
)
# thread-pool: (name, calls OPENSSL_thread_stop_ex, exits before the failure), as the C probe
POOL: tuple[tuple[str, bool, bool], ...] = (
    ("pool-1", True, True),
    ("pool-2", False, True),
    ("pool-3", True, False),
    ("pool-4", False, False),
)
CHILD_WAIT = 30.0  # seconds exit-after-reload waits for a child before killing it
# include/openssl/fipskey.h of an unmodified source tree (FIPS_KEY_STRING)
DEFAULT_FIPS_KEY = "f4556650ac31d35461610bac4ed81b1a181b2d8a43ea2854cbae22ca74560813"
MAX_EXTRA = 8  # the C probe keeps at most this many --config lines
EXIT_OK, EXIT_USAGE, EXIT_SETUP = 0, 2, 3

# ---------- OpenSSL 3 ABI (the same in 3.0 through 4.0) ----------

CDEF = """
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct ossl_provider_st OSSL_PROVIDER;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
typedef struct ossl_init_settings_st OPENSSL_INIT_SETTINGS;
typedef struct ossl_param_st {
    const char *key;
    unsigned int data_type;
    void *data;
    size_t data_size;
    size_t return_size;
} OSSL_PARAM;

int OPENSSL_init_crypto(uint64_t opts, const OPENSSL_INIT_SETTINGS *settings);
const char *OpenSSL_version(int type);

OSSL_LIB_CTX *OSSL_LIB_CTX_new(void);
int OSSL_LIB_CTX_load_config(OSSL_LIB_CTX *ctx, const char *config_file);
void OSSL_LIB_CTX_free(OSSL_LIB_CTX *ctx);
void OSSL_SELF_TEST_set_callback(OSSL_LIB_CTX *libctx,
                                 int (*cb)(const OSSL_PARAM *params, void *arg), void *cbarg);

OSSL_PROVIDER *OSSL_PROVIDER_load(OSSL_LIB_CTX *ctx, const char *name);
int OSSL_PROVIDER_unload(OSSL_PROVIDER *prov);
int OSSL_PROVIDER_self_test(const OSSL_PROVIDER *prov);
int OSSL_PROVIDER_get_params(const OSSL_PROVIDER *prov, OSSL_PARAM *params);

EVP_MD *EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties);
void EVP_MD_free(EVP_MD *md);
int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size,
               const EVP_MD *type, ENGINE *impl);
unsigned char *EVP_Q_mac(OSSL_LIB_CTX *libctx, const char *name, const char *propq,
                         const char *subalg, const OSSL_PARAM *params,
                         const void *key, size_t keylen,
                         const unsigned char *data, size_t datalen,
                         unsigned char *out, size_t outsize, size_t *outlen);
int RAND_bytes_ex(OSSL_LIB_CTX *ctx, unsigned char *buf, size_t num, unsigned int strength);
void OPENSSL_thread_stop_ex(OSSL_LIB_CTX *ctx);
void OPENSSL_cleanup(void);

unsigned long ERR_get_error_all(const char **file, int *line, const char **func,
                                const char **data, int *flags);
unsigned long ERR_peek_last_error(void);
const char *ERR_reason_error_string(unsigned long e);
const char *ERR_lib_error_string(unsigned long e);
void ERR_clear_error(void);
"""

LIBC_CDEF = """
void *dlopen(const char *filename, int flags);
int dlclose(void *handle);
const char *gnu_get_libc_version(void);
"""

OPENSSL_INIT_LOAD_CRYPTO_STRINGS = 0x00000002
OPENSSL_INIT_NO_LOAD_CONFIG = 0x00000080
OPENSSL_VERSION = 0
OPENSSL_MODULES_DIR = 8
OSSL_PARAM_INTEGER = 1
OSSL_PARAM_UTF8_PTR = 6
ERR_TXT_STRING = 0x02
ERR_SYSTEM_FLAG = 0x80000000
ERR_SYSTEM_MASK = 0x7FFFFFFF
ERR_REASON_MASK = 0x7FFFFF

# dlfcn.h (glibc and musl agree on these values on Linux)
RTLD_LAZY = getattr(os, "RTLD_LAZY", 0x1)
RTLD_NOW = getattr(os, "RTLD_NOW", 0x2)
RTLD_NOLOAD = getattr(os, "RTLD_NOLOAD", 0x4)

# self_test.h and core_names.h
PHASE_START, PHASE_CORRUPT, PHASE_PASS, PHASE_FAIL = b"Start", b"Corrupt", b"Pass", b"Fail"
ARM_TYPE, ARM_DESC = b"KAT_Digest", b"SHA2"  # OSSL_SELF_TEST_TYPE_KAT_DIGEST, _DESC_MD_SHA2
KEY_PHASE, KEY_TYPE, KEY_DESC = b"st-phase", b"st-type", b"st-desc"

ABC_SHA256 = bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
FAILED_TESTS_MAX = 511  # the C probe keeps them in a 512-byte buffer

# ---------- helpers that need no OpenSSL (unit-tested on their own) ----------


def latin1(raw: bytes) -> str:
    """Bytes as the C probe's JSON writer shows them: every byte >= 0x7f becomes \\u00XX,
    which is what a latin-1 decode followed by json.dumps gives too."""
    return raw.decode("latin-1")


def count_mappings(maps: bytes, path: bytes) -> int:
    """Lines of a /proc/PID/maps text whose last field is exactly path (as the C probe)."""
    n = 0
    for line in maps.split(b"\n"):
        if len(line) >= len(path) and line.endswith(path) and line:
            n += 1
    return n


def libcrypto_mappings(maps: bytes) -> list[str]:
    """The distinct mapped files whose path contains 'libcrypto.so', in order of appearance."""
    found: list[str] = []
    for line in maps.split(b"\n"):
        fields = line.split(None, 5)
        if len(fields) == 6 and b"libcrypto.so" in fields[5]:
            name = os.fsdecode(fields[5].strip())
            if name not in found:
                found.append(name)
    return found


def read_maps() -> bytes:
    with open("/proc/self/maps", "rb") as f:
        return f.read()


DT_NULL, DT_FLAGS_1, DF_1_NODELETE, PT_DYNAMIC = 0, 0x6FFFFFFB, 0x8, 2


def elf_nodelete(path: str) -> bool | None:
    """Is DF_1_NODELETE set in the file's ELF64 dynamic section? None if unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2:  # ELFCLASS64
        return None
    end = "<" if data[5] == 1 else ">"  # EI_DATA: ELFDATA2LSB or MSB
    phoff, phentsize, phnum = (
        struct.unpack_from(end + "Q", data, 32)[0],
        struct.unpack_from(end + "H", data, 54)[0],
        struct.unpack_from(end + "H", data, 56)[0],
    )
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + 56 > len(data):
            return None
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            end + "IIQQQQ", data, at
        )
        if p_type != PT_DYNAMIC:
            continue
        for off in range(p_offset, p_offset + p_filesz - 15, 16):
            if off + 16 > len(data):
                break
            tag, val = struct.unpack_from(end + "qQ", data, off)
            if tag == DT_NULL:
                break
            if tag == DT_FLAGS_1 and val & DF_1_NODELETE:
                return True
        return False  # the first PT_DYNAMIC decides
    return None


def err_get_reason(e: int) -> int:
    """ERR_GET_REASON (an inline function in err.h, so not in the library)."""
    if e & ERR_SYSTEM_FLAG:
        return e & ERR_SYSTEM_MASK
    return e & ERR_REASON_MASK


def format_mac(mac: bytes) -> str:
    """module-mac as fipsinstall writes it: upper-case hex bytes separated by colons."""
    return ":".join(f"{b:02X}" for b in mac)


def bad_mac(mac_hex: str) -> str:
    """A wrong module-mac: the real one with its first character flipped."""
    return ("1" if mac_hex[0] == "0" else "0") + mac_hex[1:]


def config_text(module: bytes, mac_hex: str, extra: list[str]) -> bytes:
    """The module's configuration, byte for byte as the C probe writes it. No "activate":
    the probe calls OSSL_PROVIDER_load itself to see the real errors."""
    text = (
        b"openssl_conf = openssl_init\n"
        b"[openssl_init]\nproviders = provider_sect\n"
        b"[provider_sect]\nfips = fips_sect\n"
        b"[fips_sect]\nmodule = " + module + b"\nmodule-mac = " + mac_hex.encode() + b"\n"
        b"conditional-errors = 1\nsecurity-checks = 1\n"
    )
    for line in extra:
        key, _, value = line.partition("=")
        text += os.fsencode(key) + b" = " + os.fsencode(value) + b"\n"
    return text


def tri(v: int | None) -> bool | None:
    """The C probe's emit_kv_tri: -1 (or None) is "not observed"."""
    if v is None or v < 0:
        return None
    return bool(v)


@dataclass
class Counts:
    starts: int = 0
    passes: int = 0
    fails: int = 0
    corrupted: int = 0

    def copy(self) -> Counts:
        return Counts(self.starts, self.passes, self.fails, self.corrupted)


def step_record(
    name: str,
    ok: bool | None,
    errors: list[dict[str, str | None]],
    now: Counts,
    start: Counts,
    failed_tests: str,
    status: int,
    digest: bool | None,
    mappings: int,
    loaded: bool,
) -> dict[str, Any]:
    """One step of the document, keys in the C probe's order."""
    return {
        "name": name,
        "ok": ok,
        "errors": errors,
        "self_tests": {
            "started": now.starts - start.starts,
            "passed": now.passes - start.passes,
            "failed": now.fails - start.fails,
            "corrupted": now.corrupted - start.corrupted,
            "failed_tests": failed_tests,
        },
        "status": None if status < 0 else status,
        "digest_ok": digest,
        "mappings": mappings,
        "noload_loaded": loaded,
    }


def error_document(scenario: str | None, error: str) -> dict[str, Any]:
    """What the twin prints when it refuses to run: no "completed", so no verdict."""
    return {"schema": SCHEMA, "witness": WITNESS, "scenario": scenario, "error": error}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":")) + "\n"


def pick_libcrypto(path: str) -> str:
    """The file itself, or the one libcrypto.so.N in a directory."""
    if not os.path.isdir(path):
        return path
    names = sorted(
        n
        for n in os.listdir(path)
        if n.startswith("libcrypto.so.") and n[len("libcrypto.so.") :].isdigit()
    )
    if len(names) != 1:
        raise ValueError(f"{path}: expected one libcrypto.so.N, found {names or 'none'}")
    return os.path.join(path, names[0])


# ---------- the probe ----------


class Refused(Exception):
    """The twin cannot run here; the message goes into the document's "error"."""


class Twin:
    def __init__(self, ffi: Any, crypto: Any, libc: Any, module: str) -> None:
        self.ffi = ffi
        self.lib = crypto
        self.libc = libc
        self.module = module  # real path
        self.module_b = os.fsencode(module)
        self.null = ffi.NULL
        self.size_max = (1 << (8 * ffi.sizeof("size_t"))) - 1
        # the self-test callback's state (st in the C probe)
        self.n = Counts()
        self.armed = False
        self.failed = ""
        self.callback_errors: list[str] = []
        self.step_start = Counts()
        self.steps: list[dict[str, Any]] = []
        self.current: str | None = None
        self.provider: dict[str, str | None] = {"name": None, "version": None, "buildinfo": None}
        self.workers: list[Worker] = []  # started; they leave after the document
        self.leaked: list[Any] = []  # EVP_MDs never freed (leaked-ref): held to the end
        # cffi frees a callback when its Python object goes: keep it for the process's life.
        self.callback = ffi.callback("int(const OSSL_PARAM *, void *)", self._self_test_cb)

    # ----- self-test callback: counts events, corrupts one test on demand -----

    def _param_str(self, params: Any, key: bytes) -> bytes:
        ffi = self.ffi
        i = 0
        while params[i].key != ffi.NULL:
            p = params[i]
            if ffi.string(p.key) == key:
                if p.data == ffi.NULL:
                    return b""
                # UTF8_STRING: data is the string, data_size its length
                data = ffi.cast("char *", p.data)
                value: bytes = ffi.string(data, p.data_size) if p.data_size else ffi.string(data)
                return value
            i += 1
        return b""

    def _self_test_cb(self, params: Any, _arg: Any) -> int:
        try:
            phase = self._param_str(params, KEY_PHASE)
            kind = self._param_str(params, KEY_TYPE)
            desc = self._param_str(params, KEY_DESC)
            if phase == PHASE_START:
                self.n.starts += 1
            elif phase == PHASE_PASS:
                self.n.passes += 1
            elif phase == PHASE_FAIL:
                self.n.fails += 1
                entry = latin1(kind) + "/" + latin1(desc)
                joined = f"{self.failed},{entry}" if self.failed else entry
                self.failed = joined[:FAILED_TESTS_MAX]
            elif phase == PHASE_CORRUPT and self.armed and kind == ARM_TYPE and desc == ARM_DESC:
                self.n.corrupted += 1
                return 0
            return 1
        except BaseException as exc:  # never let a twin bug pass for an observation
            self.callback_errors.append(f"{type(exc).__name__}: {exc}")
            return 1

    # ----- loader observations -----

    def mappings(self, path: bytes | None = None) -> int:
        try:
            maps = read_maps()
        except OSError:
            return -1
        return count_mappings(maps, self.module_b if path is None else path)

    def noload_says_loaded(self) -> bool:
        handle = self.libc.dlopen(self.module_b, RTLD_NOLOAD | RTLD_LAZY)
        if handle == self.null:
            return False
        self.libc.dlclose(handle)  # give back the reference NOLOAD just took
        return True

    def dlclose_unmaps(self, canary: str | None) -> bool | None:
        if canary is None or not os.path.exists(canary):
            return None
        real = os.fsencode(os.path.realpath(canary))
        handle = self.libc.dlopen(real, RTLD_NOW)
        if handle == self.null:
            return None
        before = self.mappings(real)
        self.libc.dlclose(handle)
        if before <= 0:
            return None
        after = self.mappings(real)
        return after == 0

    # ----- OpenSSL observations -----

    def _cstr(self, ptr: Any) -> str | None:
        return None if ptr == self.null else latin1(self.ffi.string(ptr))

    def errors(self) -> list[dict[str, str | None]]:
        ffi, lib = self.ffi, self.lib
        data = ffi.new("const char **")
        flags = ffi.new("int *")
        found: list[dict[str, str | None]] = []
        while True:
            e = lib.ERR_get_error_all(ffi.NULL, ffi.NULL, ffi.NULL, data, flags)
            if e == 0:
                break
            reason = self._cstr(lib.ERR_reason_error_string(e))
            library = self._cstr(lib.ERR_lib_error_string(e))
            if reason is None:
                reason = f"reason({err_get_reason(e)})"
            text = self._cstr(data[0]) if flags[0] & ERR_TXT_STRING else None
            found.append({"lib": library, "reason": reason, "data": text})
        return found

    def _params(self, entries: list[tuple[bytes, int, Any, int]]) -> tuple[Any, list[Any]]:
        """An OSSL_PARAM array ending with the all-zero end marker; keep the second value
        alive while the array is used."""
        ffi = self.ffi
        array = ffi.new("OSSL_PARAM[]", len(entries) + 1)  # zeroed: the last is the end
        keep: list[Any] = [array]
        for i, (key, data_type, data, size) in enumerate(entries):
            k = ffi.new("char[]", key)
            keep.append(k)
            array[i].key = k
            array[i].data_type = data_type
            array[i].data = data
            array[i].data_size = size
            array[i].return_size = self.size_max  # OSSL_PARAM_UNMODIFIED
        return array, keep

    def provider_status(self, prov: Any) -> int:
        ffi = self.ffi
        if prov == ffi.NULL:
            return -1
        status = ffi.new("int *", -1)
        params, _keep = self._params([(b"status", OSSL_PARAM_INTEGER, status, ffi.sizeof("int"))])
        if not self.lib.OSSL_PROVIDER_get_params(prov, params):
            return -1
        if params[0].return_size == self.size_max:  # not OSSL_PARAM_modified
            return -1
        return int(status[0])

    def digest_works(self, ctx: Any, keep: list[Any] | None = None) -> bool:
        """SHA-256("abc") through the FIPS provider only: no fallback to default."""
        ffi, lib = self.ffi, self.lib
        md = lib.EVP_MD_fetch(ctx, b"SHA256", b"provider=fips")
        out = ffi.new("unsigned char[64]")
        size = ffi.new("unsigned int *", 0)
        ok = False
        if md != ffi.NULL:
            ok = bool(lib.EVP_Digest(b"abc", 3, out, size, md, ffi.NULL))
        ok = ok and size[0] == len(ABC_SHA256) and ffi.buffer(out, size[0])[:] == ABC_SHA256
        if keep is not None:
            keep.append(md)  # the leaked-ref scenario keeps this reference
        else:
            lib.EVP_MD_free(md)
        return ok

    def read_provider_versions(self, prov: Any) -> None:
        """Copied out: the strings live in the module, which may be unmapped later."""
        ffi = self.ffi
        if self.provider["name"] or prov == ffi.NULL:
            return
        ptrs = ffi.new("char *[3]")
        entries = [
            (key, OSSL_PARAM_UTF8_PTR, ffi.cast("void *", ptrs + i), 0)
            for i, key in enumerate((b"name", b"version", b"buildinfo"))
        ]
        params, _keep = self._params(entries)
        if not self.lib.OSSL_PROVIDER_get_params(prov, params):
            return
        for i, key in enumerate(("name", "version", "buildinfo")):
            self.provider[key] = self._cstr(ptrs[i]) or None

    # ----- steps -----

    def step_begin(self, name: str) -> None:
        self.lib.ERR_clear_error()
        self.step_start = self.n.copy()
        self.failed = ""
        self.current = name
        sys.stderr.write(f"fips_twin: step {name}\n")
        sys.stderr.flush()

    def step_end(self, action_ok: int | None, prov: Any, digest_ctx: Any = None) -> None:
        """Observes everything observable after an action, in the C probe's order."""
        ok = tri(action_ok)
        errors = self.errors()
        status = self.provider_status(prov if prov is not None else self.null)
        digest: bool | None = None
        if digest_ctx is not None and digest_ctx != self.null:
            digest = self.digest_works(digest_ctx)
        self.lib.ERR_clear_error()  # errors of the observations themselves are not the step's
        maps = self.mappings()
        loaded = self.noload_says_loaded()
        assert self.current is not None
        self.steps.append(
            step_record(
                self.current,
                ok,
                errors,
                self.n,
                self.step_start,
                self.failed,
                status,
                digest,
                maps,
                loaded,
            )
        )
        self.current = None

    def new_context(self, config: bytes) -> Any:
        lib = self.lib
        ctx = lib.OSSL_LIB_CTX_new()
        if ctx == self.null:
            return ctx
        # Set before the load: the provider keeps the callback it got then.
        lib.OSSL_SELF_TEST_set_callback(ctx, self.callback, self.null)
        if not lib.OSSL_LIB_CTX_load_config(ctx, config):
            lib.OSSL_LIB_CTX_free(ctx)
            return self.null
        return ctx

    def load_step(self, name: str, config: bytes, armed: bool) -> tuple[Any, Any]:
        """Loads the module into a new context: (context, provider), either may be NULL."""
        ctx = self.new_context(config)
        self.armed = armed
        self.step_begin(name)
        prov = self.lib.OSSL_PROVIDER_load(ctx, b"fips") if ctx != self.null else self.null
        self.armed = False
        self.step_end(prov != self.null, prov)
        self.read_provider_versions(prov)
        return ctx, prov

    def module_mac(self, key_hex: str) -> tuple[str, str] | None:
        """HMAC-SHA256 of the module file under the build's FIPS key (as fipsinstall
        computes module-mac) and its SHA-256, in a private context with the default provider."""
        ffi, lib = self.ffi, self.lib
        try:
            with open(self.module_b, "rb") as f:
                data: bytes | None = f.read()
        except OSError:
            data = None
        tool = lib.OSSL_LIB_CTX_new()
        default = lib.OSSL_PROVIDER_load(tool, b"default") if tool != ffi.NULL else ffi.NULL
        sha256 = lib.EVP_MD_fetch(tool, b"SHA256", ffi.NULL) if default != ffi.NULL else ffi.NULL
        result = None
        if data is not None:
            try:
                key: bytes | None = bytes.fromhex(key_hex.replace(":", ""))
            except ValueError:
                key = None
            buf = ffi.from_buffer("unsigned char[]", data)
            mac = ffi.new("unsigned char[32]")
            maclen = ffi.new("size_t *", 0)
            sha = ffi.new("unsigned char[64]")
            shalen = ffi.new("unsigned int *", 0)
            ok = False
            if key and sha256 != ffi.NULL:
                args = (tool, b"HMAC", ffi.NULL, b"SHA256", ffi.NULL, key, len(key), buf)
                ok = lib.EVP_Q_mac(*args, len(data), mac, 32, maclen) != ffi.NULL
            if ok:
                ok = bool(lib.EVP_Digest(buf, len(data), sha, shalen, sha256, ffi.NULL))
            if ok:
                result = (
                    format_mac(ffi.buffer(mac, maclen[0])[:]),
                    ffi.buffer(sha, shalen[0])[:].hex(),
                )
        lib.EVP_MD_free(sha256)
        lib.OSSL_PROVIDER_unload(default)
        lib.OSSL_LIB_CTX_free(tool)
        return result

    # ----- scenarios -----

    def run_scenario(self, sc: str, good: bytes, bad: bytes) -> dict[str, Any]:
        """Context A: load, fail (as the scenario says), confirm the refusal, free all,
        unload, free A. Then observe the loader, and load into a fresh context B."""
        lib, null = self.lib, self.null
        shape = SHAPE_OF.get(sc, sc)  # a control runs as its partner
        leaked: list[Any] = []
        prov_c = c = null
        ok: int  # an action's result: 1/0 from OpenSSL, or a bool

        a, prov_a = self.load_step("load_a", bad if sc == "integrity" else good, sc == "load-kat")
        if sc == "two-contexts":
            c, prov_c = self.load_step("load_c", good, False)

        if prov_a != null:
            # With deferred self-tests the KATs run at first use: load-kat keeps them corrupted.
            self.armed = sc == "load-kat"
            self.step_begin("digest_a")
            ok = self.digest_works(a, leaked if sc == "leaked-ref" else None)
            self.armed = False
            self.step_end(ok, prov_a)

        if prov_a != null and shape in ("worker-thread", "worker-no-stop"):
            self.step_begin("worker_start")
            worker = Worker(self, a, "worker", shape == "worker-thread")
            started = worker.start()
            if started:
                self.workers.append(worker)
                worker.wait_rounds(3)
            worker.mark_before_failure()
            self.step_end(started and worker.ok_before > 0, prov_a)
        if prov_a != null and shape == "thread-pool":
            self.start_pool(a, prov_a)

        if prov_a != null and sc in ON_DEMAND:
            self.step_begin("fail_a")
            self.armed = True
            ok = lib.OSSL_PROVIDER_self_test(prov_a)
            self.armed = False
            self.step_end(ok, prov_a)

        if self.workers:
            # Let the workers meet the error state, then stop them before anything is freed.
            self.step_begin("pool_stop" if shape == "thread-pool" else "worker_stop")
            for w in self.workers:
                if not w.exited_before_failure:
                    w.stop_after_failure()
            self.step_end(1, prov_a)

        if sc != "no-failure" and sc not in SHAPE_OF:
            # Does the module refuse work now? (status and a digest through A)
            self.step_begin("refuses_a")
            self.step_end(-1, prov_a, a)
        if sc == "two-contexts":
            # The other context never failed anything itself: does it still work?
            self.step_begin("refuses_c")
            self.step_end(-1, prov_c, c)

            self.step_begin("unload_a_only")
            ok = lib.OSSL_PROVIDER_unload(prov_a)
            lib.OSSL_LIB_CTX_free(a)
            prov_a = a = null
            self.step_end(ok, null)

            # A reload while the other context still holds the module.
            b, prov_b = self.reload("reload_while_c", "selftest_while_c", good)
            lib.OSSL_PROVIDER_unload(prov_b)
            lib.OSSL_LIB_CTX_free(b)

        self.step_begin("unload_a")
        ok = 1
        if prov_a != null:
            ok = lib.OSSL_PROVIDER_unload(prov_a)
        lib.OSSL_LIB_CTX_free(a)
        if prov_c != null:
            ok = int(bool(lib.OSSL_PROVIDER_unload(prov_c)) and bool(ok))
        lib.OSSL_LIB_CTX_free(c)
        self.step_end(ok, null)

        b, prov_b = self.reload("reload_b", "selftest_b", good)

        exits: dict[str, Any] = {}
        if sc == "exit-after-reload":
            exits["exit_without_context"] = self.exit_in_child(prov_b, b, cleanup=False)
            exits["exit_after_cleanup"] = self.exit_in_child(prov_b, b, cleanup=True)
            exits["context_alive_at_exit"] = prov_b != null

        tail: dict[str, Any] = {
            "steps": self.steps,
            "provider": dict(self.provider),
            "leaked_reference": bool(leaked) and leaked[0] != null,
        }
        if shape == "worker-thread" and self.workers:
            tail["worker"] = self.workers[0].report()
        if shape in ("worker-no-stop", "thread-pool"):
            tail["workers"] = [w.entry() for w in self.workers]
        tail.update(exits)
        # "leaked" stays alive on purpose: that is the scenario.
        self.leaked = leaked
        if sc == "exit-after-reload":
            return tail  # B stays loaded: how this process ends is the run's exit status

        lib.OSSL_PROVIDER_unload(prov_b)
        lib.OSSL_LIB_CTX_free(b)
        return tail

    def reload(self, load_name: str, selftest_name: str, config: bytes) -> tuple[Any, Any]:
        """Load into a fresh context, then (if it loaded) an on-demand self-test and a digest."""
        ctx, prov = self.load_step(load_name, config, False)
        if prov != self.null:
            self.step_begin(selftest_name)
            ok = self.lib.OSSL_PROVIDER_self_test(prov)
            self.step_end(ok, prov, ctx)
        return ctx, prov

    def start_pool(self, a: Any, prov_a: Any) -> None:
        """thread-pool: four workers through A; pool-1 and pool-2 finish and exit before the
        failure, pool-3 and pool-4 live through it (see POOL for who calls thread_stop)."""
        self.step_begin("pool_start")
        ok = True
        for name, calls_stop, early in POOL:
            worker = Worker(self, a, name, calls_stop, exits_early=early)
            if not worker.start():
                ok = False
                break
            self.workers.append(worker)
        for worker in self.workers:
            worker.wait_rounds(3)
            worker.mark_before_failure()
            ok = ok and worker.ok_before > 0
        self.step_end(ok and len(self.workers) == len(POOL), prov_a)

        self.step_begin("pool_early_exit")
        ok = True
        for worker in self.workers:
            if not worker.exits_early:
                continue
            with worker.cond:
                worker.stop = worker.leave = True  # its work is done: it exits, not parks
                worker.exited_before_failure = True
            worker.leave_now()
            worker.mark_before_failure()  # all its rounds were before the failure
            ok = ok and worker.joined
        for worker in self.workers:
            if not worker.exits_early:
                worker.mark_before_failure()
        self.step_end(ok, prov_a)

    def exit_in_child(self, prov_b: Any, b: Any, cleanup: bool) -> dict[str, Any]:
        """exit-after-reload: a forked child frees B (and, with cleanup, calls OPENSSL_cleanup)
        and returns from main; how it ended, as the C probe records it."""
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.lib.OSSL_PROVIDER_unload(prov_b)
            self.lib.OSSL_LIB_CTX_free(b)
            if cleanup:
                self.lib.OPENSSL_cleanup()
            raise ChildReturns
        status = None
        deadline = time.monotonic() + CHILD_WAIT
        while status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                status = code
            elif time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return {"exit_status": None, "signal": None, "timed_out": True}
            else:
                time.sleep(0.01)
        return {
            "exit_status": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "timed_out": False,
        }


class ChildReturns(Exception):
    """Raised in a forked child of exit-after-reload: it returns from main, printing nothing."""


class Worker:
    """A worker thread: rounds of RAND and HMAC through context A until told to stop, then
    (if it is one that does) OPENSSL_thread_stop_ex, then parked until told to leave."""

    def __init__(
        self, twin: Twin, ctx: Any, name: str, calls_thread_stop: bool, exits_early: bool = False
    ) -> None:
        self.twin = twin
        self.ctx = ctx
        self.name = name
        self.calls_thread_stop = calls_thread_stop
        self.exits_early = exits_early  # thread-pool: finishes and exits before the failure
        self.cond = threading.Condition()
        self.stop = False
        self.leave = False
        self.parked = False
        self.stopped_ex = False  # it did call OPENSSL_thread_stop_ex
        self.tid = 0
        self.ok = self.failed = self.rounds = 0
        self.first_error = ""
        # main's snapshots: rounds before the forced failure, and while it ran
        self.ok_before = self.failed_before = self.ok_during = self.failed_during = 0
        self.exited_before_failure = False
        self.joined = False
        # daemon: like the C probe's, a worker that never parked does not hold the exit
        self.thread = threading.Thread(target=self._main, name=f"fips-twin-{name}", daemon=True)

    def start(self) -> bool:
        try:
            self.thread.start()
        except RuntimeError:
            return False
        return True

    def _round(self) -> bool:
        """One round of real work: random bytes and an HMAC, both through the context."""
        ffi, lib = self.twin.ffi, self.twin.lib
        buf = ffi.new("unsigned char[32]")
        key = ffi.new("unsigned char[32]")
        mac = ffi.new("unsigned char[32]")
        maclen = ffi.new("size_t *", 0)
        ok = lib.RAND_bytes_ex(self.ctx, buf, 32, 0) > 0
        if ok:
            ok = lib.RAND_bytes_ex(self.ctx, key, 32, 0) > 0
        if ok:
            args = (self.ctx, b"HMAC", b"provider=fips", b"SHA256", ffi.NULL, key, 32, buf, 32)
            ok = lib.EVP_Q_mac(*args, mac, 32, maclen) != ffi.NULL
        if not ok and not self.first_error:
            e = lib.ERR_peek_last_error()
            reason = self.twin._cstr(lib.ERR_reason_error_string(e))
            self.first_error = (reason if reason is not None else "unknown error")[:127]
        lib.ERR_clear_error()
        return bool(ok)

    def _main(self) -> None:
        with self.cond:
            self.tid = threading.get_native_id()
            while not self.stop:
                self.cond.release()
                try:
                    ok = self._round()
                finally:
                    self.cond.acquire()
                self.rounds += 1
                if ok:
                    self.ok += 1
                else:
                    self.failed += 1
                self.cond.notify_all()
                self.cond.release()
                try:
                    time.sleep(0.002)
                finally:
                    self.cond.acquire()
        if self.calls_thread_stop:
            # As the documentation asks: free this thread's resources of that context.
            self.twin.lib.OPENSSL_thread_stop_ex(self.ctx)
        with self.cond:
            self.stopped_ex = self.calls_thread_stop
            self.parked = True
            self.cond.notify_all()
            while not self.leave:
                self.cond.wait()

    def wait_rounds(self, rounds: int) -> None:
        """Waits until the worker has done `rounds` rounds in all, or 5 s passed."""
        with self.cond:
            self.cond.wait_for(lambda: self.rounds >= rounds, timeout=5)

    def mark_before_failure(self) -> None:
        """Main's snapshot of the rounds so far, as those before the forced failure."""
        with self.cond:
            self.ok_before = self.ok
            self.failed_before = self.failed

    def stop_after_failure(self) -> None:
        """Lets the worker meet the error state (the rounds since the failure are those
        "during" it, and 3 more), then stops it: it stops using the context and parks."""
        with self.cond:
            self.ok_during = self.ok - self.ok_before
            self.failed_during = self.failed - self.failed_before
        done = self.ok_before + self.failed_before + self.ok_during + self.failed_during
        self.wait_rounds(done + 3)
        with self.cond:
            self.stop = True
            while not self.parked:
                self.cond.wait()

    def _counts(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "ok_before_failure": self.ok_before,
            "failed_before_failure": self.failed_before,
            "ok_during_failure": self.ok_during,
            "failed_during_failure": self.failed_during,
            "ok_after_failure": self.ok - self.ok_before - self.ok_during,
            "failed_after_failure": self.failed - self.failed_before - self.failed_during,
            "first_error": self.first_error or None,
            "stopped_before_free": self.parked,
        }

    def report(self) -> dict[str, Any]:
        """worker-thread's "worker" object."""
        with self.cond:
            return self._counts()

    def entry(self) -> dict[str, Any]:
        """One of the new scenarios' "workers", keys in the C probe's order."""
        with self.cond:
            counts = self._counts()
            return {
                "name": self.name,
                "tid": self.tid,
                "calls_thread_stop": self.calls_thread_stop,
                "called_thread_stop": self.stopped_ex,
                "exited_before_failure": self.exited_before_failure,
                **counts,
                "exits_after_document": self.parked and not self.joined,
            }

    def leave_now(self) -> None:
        """Lets the parked worker exit and waits until its OS thread is gone (thread-local
        destructors included, as pthread_join does in the C probe)."""
        with self.cond:
            self.leave = True
            self.cond.notify_all()
        tid = self.thread.native_id
        self.thread.join()
        deadline = time.monotonic() + 5
        while tid is not None and os.path.exists(f"/proc/self/task/{tid}"):
            if time.monotonic() > deadline:
                # Stuck in its thread-local destructors: end with a signal, as the C probe
                # does, instead of hanging until the batch's timeout.
                sys.stderr.write(f"fips_twin: the {self.name} thread is stuck in its exit\n")
                sys.stderr.flush()
                os.abort()
            time.sleep(0.001)
        self.joined = True
        sys.stderr.write(f"fips_twin: the {self.name} thread exited\n")


# ---------- main ----------

AFTER_DOCUMENT_LIMIT = 15  # seconds: the workers' 5 s deadline, and time to end after it


def libc_identity(ffi: Any, libc: Any) -> tuple[str, str]:
    try:
        version = ffi.string(libc.gnu_get_libc_version()).decode("ascii", "replace")
    except AttributeError:
        return "musl", musl_version()
    return "glibc", version


def musl_version() -> str:
    """musl has no version API: its loader prints the version when run by itself."""
    import subprocess  # only here: glibc never needs it

    try:
        maps = read_maps()
    except OSError:
        return "unknown"
    loader = next(
        (
            os.fsdecode(line[line.index(b"/") :])
            for line in maps.split(b"\n")
            if b"/ld-musl-" in line and b"/" in line
        ),
        None,
    )
    if loader is None:
        return "unknown"
    try:
        run = subprocess.run([loader], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = run.stderr.decode("latin-1")
    at = text.find("Version ")
    return text[at + len("Version ") :].split("\n")[0] if at >= 0 else "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fips_twin.py", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--module", required=True)
    p.add_argument("--libcrypto", required=True)
    p.add_argument("--canary")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--fips-key", default=DEFAULT_FIPS_KEY, metavar="HEX")
    p.add_argument("--module-mac", metavar="HEX")
    return p.parse_args(argv)


def emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(dumps(doc))
    sys.stdout.flush()


def open_libraries(libcrypto: str) -> tuple[Any, Any, Any]:
    """(ffi, libcrypto, libc), refusing when any libcrypto was mapped before ours."""
    mapped = libcrypto_mappings(read_maps())
    if mapped:
        raise Refused(
            "another libcrypto is already mapped in this interpreter: " + ", ".join(mapped)
        )
    import cffi  # after the check: cffi itself must not bring a libcrypto

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.cdef(LIBC_CDEF)
    try:
        libc = ffi.dlopen(None)  # the C namespace: glibc's (or the executable's) dlopen
        libc.dlopen  # noqa: B018  (resolve now)
    except (OSError, AttributeError):
        libc = ffi.dlopen("libdl.so.2")  # glibc before 2.34, if python3 did not link it
    if "/" in libcrypto:
        target = os.path.realpath(libcrypto)
        if not os.path.isfile(target):
            raise Refused(f"no libcrypto at {libcrypto}")
    else:
        target = libcrypto  # a bare name: the dynamic loader's own search (a distro's libcrypto)
    try:
        crypto = ffi.dlopen(target)
    except OSError as exc:
        raise Refused(f"cannot open {target}: {exc}") from exc
    now = libcrypto_mappings(read_maps())
    if len(now) != 1 or ("/" in libcrypto and now != [target]):
        raise Refused(f"opened {target}, and now the mapped libcryptos are {now}")
    # Pin it as the C probe's libcrypto is pinned (linked in, never closed): cffi would
    # dlclose it when the interpreter tears its objects down, before OpenSSL's atexit.
    libc.dlopen(os.fsencode(now[0]), RTLD_NOW | RTLD_NOLOAD)
    return ffi, crypto, libc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario: str = args.scenario
    if not os.path.exists(args.module):
        sys.stderr.write(f"fips_twin: no module at {args.module}\n")
        return EXIT_USAGE
    module = os.path.realpath(args.module)
    extra = [c for c in args.config if "=" in c][:MAX_EXTRA]

    try:
        ffi, crypto, libc = open_libraries(pick_libcrypto(args.libcrypto))
    except (Refused, ValueError, OSError, ImportError) as exc:  # ImportError: no cffi here
        emit(error_document(scenario, str(exc)))
        return EXIT_SETUP

    # No system config: one that activates fips in the default context would share the
    # module's mapping and state with ours.
    crypto.OPENSSL_init_crypto(
        OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, ffi.NULL
    )
    twin = Twin(ffi, crypto, libc, module)

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "witness": WITNESS,
        "scenario": scenario,
        "module": latin1(twin.module_b),
        "module_config_extra": [latin1(os.fsencode(c)) for c in extra],
        "versions": {
            "openssl": twin._cstr(crypto.OpenSSL_version(OPENSSL_VERSION)),
            "openssl_headers": None,  # ABI mode: no headers were compiled in
            "openssl_dir": twin._cstr(crypto.OpenSSL_version(OPENSSL_MODULES_DIR)),
        },
    }
    libc_name, libc_version = libc_identity(ffi, libc)
    doc["libc"] = {"name": libc_name, "version": libc_version}
    doc["kernel"] = os.uname().release

    nodelete = elf_nodelete(module)
    baseline: dict[str, Any] = {"module_nodelete": nodelete}
    doc["baseline"] = baseline
    canary = twin.dlclose_unmaps(args.canary)
    baseline["libc_dlclose_unmaps"] = canary
    maps = twin.mappings()
    baseline["mappings"] = maps
    loaded = twin.noload_says_loaded()
    baseline["noload_loaded"] = loaded
    macs = twin.module_mac(args.fips_key)
    if macs is None:
        baseline["setup_error"] = "could not compute the module's HMAC"
        emit(doc)
        return EXIT_SETUP
    mac, sha = macs
    if args.module_mac:  # the image's own value, in place of the computed one
        mac = args.module_mac
    baseline["module_sha256"] = sha
    crypto.ERR_clear_error()

    good = os.path.join(args.workdir, "fips-good.cnf")
    bad = os.path.join(args.workdir, "fips-bad-mac.cnf")
    try:
        for path, value in ((good, mac), (bad, bad_mac(mac))):
            with open(path, "wb") as f:
                f.write(config_text(twin.module_b, value, extra))
    except OSError as exc:
        sys.stderr.write(f"fips_twin: cannot write configs in {args.workdir}: {exc}\n")
        doc["error"] = f"cannot write configs in {args.workdir}: {exc}"
        emit(doc)
        return EXIT_SETUP

    try:
        doc.update(twin.run_scenario(scenario, os.fsencode(good), os.fsencode(bad)))
    except ChildReturns:
        return EXIT_OK  # a forked child of exit-after-reload: it returns from main
    if twin.callback_errors:
        # The counts cannot be trusted: no "completed", so no verdict from this document.
        doc["error"] = "self-test callback failed: " + "; ".join(twin.callback_errors[:3])
        emit(doc)
        return EXIT_SETUP
    doc["completed"] = True
    emit(doc)
    # Seen on glibc 2.41 with 3.0.20 (worker-no-stop): after the document the process hung
    # until the batch killed it 120 s later, beyond the reach of the workers' own deadline.
    signal.alarm(AFTER_DOCUMENT_LIMIT)
    # Only now may the workers leave: whatever that does to the process is the exit status.
    for worker in twin.workers:
        if worker.parked and not worker.joined:
            worker.leave_now()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
