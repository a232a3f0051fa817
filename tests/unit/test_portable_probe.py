"""The portable probe (probes/portable/) built here with the host's compilers, no engine.

Nothing of OpenSSL is needed: the probe compiles against our own headers, and a fake
"libcrypto.so.3" (the canary built under that soname) stands for a library that is there but is
not an OpenSSL the probe can use. What is checked is what the binary really does: which headers
the compiler read, which symbols the ELF file imports, what --discover reports for files laid out
in a temporary directory, and how a probe run refuses a libcrypto it cannot use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

REPO = Path(__file__).resolve().parents[2]
PROBES = REPO / "probes"
PORTABLE = PROBES / "portable"
OPENSSL_PREFIXES = ("OSSL_", "EVP_", "ERR_", "OPENSSL_", "OpenSSL_", "CRYPTO_", "RAND_")


def compilers() -> list[str]:
    return [c for c in ("cc", "musl-gcc") if shutil.which(c)]


def sources() -> list[str]:
    return [str(PROBES / "fips_probe.c"), *sorted(str(p) for p in PORTABLE.glob("*.c"))]


def build(cc: str, out: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = [cc, "-O1", "-Wall", "-Wextra", "-Werror", "-DFIPS_PROBE_PORTABLE"]
    command += [f"-I{PORTABLE}", *extra, "-o", str(out), *sources(), "-ldl", "-pthread"]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "cc" not in compilers():
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("portable") / "fips_probe"
    done = build("cc", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("cc", compilers())
def test_it_compiles_warning_free_against_our_headers_only(cc: str, tmp_path: Path) -> None:
    # -H lists every header the compiler opened: each openssl/ one must be ours.
    done = build(cc, tmp_path / "fips_probe", ("-H",))
    assert done.returncode == 0, done.stderr
    opened = [line.lstrip(". ") for line in done.stderr.splitlines() if line.startswith(".")]
    openssl = [h for h in opened if "/openssl/" in h]
    assert openssl, "fips_probe.c included no openssl/ header at all?"
    assert all(Path(h).resolve().is_relative_to(PORTABLE) for h in openssl), openssl


def dynamic_symbols(path: Path) -> tuple[list[str], list[str]]:
    """(imported, exported) names of the dynamic symbol table."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".dynsym")
        assert isinstance(table, SymbolTableSection)
        imported: list[str] = []
        exported: list[str] = []
        for sym in table.iter_symbols():
            if not sym.name:
                continue
            (imported if sym["st_shndx"] == "SHN_UNDEF" else exported).append(sym.name)
        return imported, exported


def test_no_openssl_symbol_is_linked_or_exported(probe: Path) -> None:
    imported, exported = dynamic_symbols(probe)
    assert "dlopen" in imported or "dlsym" in imported  # it does resolve at run time
    assert [n for n in imported + exported if n.startswith(OPENSSL_PREFIXES)] == []
    with open(probe, "rb") as f:
        needed = [
            str(getattr(tag, "needed", ""))
            for section in ELFFile(f).iter_sections()
            if isinstance(section, DynamicSection)
            for tag in section.iter_tags()
            if tag.entry.d_tag == "DT_NEEDED"
        ]
    assert not [n for n in needed if "crypto" in n or "ssl" in n], needed


@pytest.fixture()
def fake_tree(tmp_path: Path) -> dict[str, Path]:
    """app/bin/app NEEDs libcrypto.so.3 with RUNPATH $ORIGIN/../lib, where a fake one (no
    OpenSSL function at all) sits; app/lib/ossl-modules/fips.so is another plain library."""
    lib = tmp_path / "app" / "lib"
    (lib / "ossl-modules").mkdir(parents=True)
    (tmp_path / "app" / "bin").mkdir()
    fake = lib / "libcrypto.so.3"
    canary = str(PROBES / "canary.c")
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-Wl,-soname,libcrypto.so.3", "-o", str(fake), canary],
        check=True,
    )
    module = lib / "ossl-modules" / "fips.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-Wl,-z,nodelete", "-o", str(module), canary], check=True
    )
    main = tmp_path / "main.c"
    main.write_text(
        "int fips_matrix_canary(void);\nint main(void) { return fips_matrix_canary(); }\n"
    )
    app = tmp_path / "app" / "bin" / "app"
    subprocess.run(
        [
            "cc",
            "-o",
            str(app),
            str(main),
            str(fake),
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
        ],
        check=True,
    )
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "openssl.cnf").write_text(".include fips.d\n[openssl_init]\n")
    (conf / "fips.d").mkdir()
    (conf / "fips.d" / "fipsmodule.cnf").write_text("[fips_sect]\nmodule-mac = AB:CD\n")
    (conf / "fips.d" / "ignored.txt").write_text("not a config\n")
    return {"app": app, "lib": lib, "fake": fake, "module": module, "conf": conf}


def discover(probe: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [str(probe), "--discover", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_discovery_follows_the_executables_runpath(probe: Path, fake_tree: dict[str, Path]) -> None:
    doc = discover(probe, "--exe", str(fake_tree["app"]))
    assert doc["discovery"] == 1 and doc["libc"]["name"] in ("glibc", "musl")
    (exe,) = doc["executables"]
    assert exe["runpath"] == "$ORIGIN/../lib" and exe["needs_libcrypto"] == "libcrypto.so.3"
    lib = os.path.realpath(fake_tree["lib"])
    dirs = [d for d in doc["search_dirs"] if d["from"].startswith("RUNPATH of")]
    assert [os.path.realpath(d["dir"]) for d in dirs] == [lib]
    assert dirs[0]["libcrypto_files"] == ["libcrypto.so.3"]
    found = {f["realpath"]: f for f in doc["libcrypto"]["found"]}
    fake = found[os.path.realpath(fake_tree["fake"])]
    assert fake["soname"] == "libcrypto.so.3" and fake["opened"] is True
    assert fake["usable"] is False and fake["missing_function"] == "OPENSSL_init_crypto"
    assert any(f.startswith("RUNPATH of") for f in fake["from"])
    # ossl-modules beside a libcrypto is looked at, and the NODELETE flag read from the file
    modules = {m["realpath"]: m for m in doc["fips_modules"]["found"]}
    module = modules[os.path.realpath(fake_tree["module"])]
    assert module["nodelete"] is True and any(f.startswith("beside ") for f in module["from"])
    # every path tried is there, with what was found
    tried = {t["path"]: t["result"] for t in doc["libcrypto"]["tried"]}
    assert tried[f"{dirs[0]['dir']}/libcrypto.so.4"] == "absent"
    # an ENTRYPOINT may name its program without a path: the image's PATH finds it
    path = f"/nonexistent:{fake_tree['app'].parent}"
    doc = discover(probe, "--exe", "app", "--exe", "no-such-app", env={"PATH": path})
    exe, missing = doc["executables"]
    assert exe["found_in_path"] == str(fake_tree["app"]) and exe["needs_libcrypto"]
    assert missing["found_in_path"] is None and missing["error"] == "not found in PATH"


def test_discovery_takes_overrides_environment_and_includes(
    probe: Path, fake_tree: dict[str, Path]
) -> None:
    conf = fake_tree["conf"]
    doc = discover(
        probe,
        "--libcrypto",
        str(fake_tree["lib"]),
        "--modules",
        str(fake_tree["module"].parent),
        env={"OPENSSL_CONF": str(conf / "openssl.cnf"), "OPENSSL_CONF_INCLUDE": str(conf)},
    )
    assert doc["overrides"]["libcrypto"] == str(fake_tree["lib"])
    assert doc["environment"]["OPENSSL_CONF"] == str(conf / "openssl.cnf")
    assert doc["suggested"]["libcrypto"] == os.path.realpath(fake_tree["fake"])
    assert doc["suggested"]["libcrypto_why"] == "the user's --libcrypto"
    assert doc["suggested"]["libcrypto_usable"] is False
    assert doc["suggested"]["module_why"] == "the user's --modules"
    configs = {c["realpath"]: c for c in doc["configs"]["found"]}
    main = configs[os.path.realpath(conf / "openssl.cnf")]
    assert main["from"] == ["OPENSSL_CONF"] and main["text"].startswith(".include fips.d")
    assert main["includes"][0]["raw"] == "fips.d"
    included = configs[os.path.realpath(conf / "fips.d" / "fipsmodule.cnf")]
    assert "module-mac = AB:CD" in included["text"] and included["truncated"] is False
    assert os.path.realpath(conf / "fips.d" / "ignored.txt") not in configs


def test_discovery_says_what_it_looked_for_when_nothing_is_there(
    probe: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nothing" / "libcrypto.so.3"
    doc = discover(probe, "--libcrypto", str(missing), "--fips-config", str(tmp_path / "x.cnf"))
    tried = {t["path"]: t for t in doc["libcrypto"]["tried"]}
    assert tried[str(missing)]["result"] == "absent"
    assert tried[str(missing)]["from"] == ["override: --libcrypto"]
    cf = {t["path"]: t["result"] for t in doc["configs"]["tried"]}
    assert cf[str(tmp_path / "x.cnf")] == "absent"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    doc = discover(probe, "--libcrypto", str(loop))
    assert {t["path"]: t["result"] for t in doc["libcrypto"]["tried"]}[str(loop)] == (
        "a symbolic link loop"
    )


def test_a_probe_run_refuses_a_library_that_is_not_openssl(
    probe: Path, fake_tree: dict[str, Path], tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            *(str(probe), "--scenario", "no-failure", "--module", str(fake_tree["module"])),
            *("--workdir", str(tmp_path), "--libcrypto", str(fake_tree["fake"])),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 3
    doc = json.loads(done.stdout)
    assert "completed" not in doc
    assert "has no OPENSSL_init_crypto" in doc["error"]
    assert (
        os.path.realpath(fake_tree["fake"]) in doc["error"]
        or str(fake_tree["fake"]) in doc["error"]
    )
    assert doc["portable"]["libcrypto_requested"] == str(fake_tree["fake"])


@pytest.mark.parametrize("option", ["--module-mac", "--fips-key"])
def test_bad_hex_is_a_usage_error(probe: Path, option: str) -> None:
    done = subprocess.run(
        [str(probe), "--scenario", "no-failure", "--module", "/x", option, "not-hex"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 2 and option in done.stderr


def shared(tmp_path: Path, name: str, source: str, *flags: str) -> Path:
    """A shared library compiled here from `source`."""
    (tmp_path / f"{name}.c").write_text(source)
    out = tmp_path / f"{name}.so"
    command = ["cc", "-shared", "-fPIC", *flags, "-o", str(out), str(tmp_path / f"{name}.c")]
    subprocess.run(command, check=True)
    return out


BLOCKING_CONSTRUCTOR = r"""
#include <signal.h>
#include <unistd.h>
__attribute__((constructor)) static void hang(void)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, 0); /* the child's alarm never comes */
    if (fork() == 0) /* and a process of its own holds the reply's pipe open */
        for (;;)
            pause();
    for (;;)
        pause();
}
"""


def test_nothing_discovery_opens_can_block_it(probe: Path, tmp_path: Path) -> None:
    """A FIFO as the entrypoint or as a configuration file: discovery opened it and waited for
    a writer for ever (the whole run's timeout, then SKIPPED for the wrong reason)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    doc = discover(
        probe, "--exe", str(fifo), "--fips-config", str(fifo), env={"OPENSSL_CONF": str(fifo)}
    )
    assert time.monotonic() - started < 10
    (exe,) = doc["executables"]
    assert exe["error"] == "cannot open: not a regular file: a FIFO"
    tried = {t["path"]: t for t in doc["configs"]["tried"]}
    assert tried[str(fifo)]["result"] == "not a regular file"
    assert tried[str(fifo)]["from"] == ["override: --fips-config", "OPENSSL_CONF"]


def test_a_libcrypto_whose_constructor_blocks_is_a_timeout(probe: Path, tmp_path: Path) -> None:
    """Its constructor blocks every signal (the child's alarm) and forks a process that keeps
    the reply's pipe open: the parent's own deadline ends it, and says it was a timeout."""
    lib = shared(tmp_path, "block", BLOCKING_CONSTRUCTOR, "-Wl,-soname,libcrypto.so.3")
    started = time.monotonic()
    doc = discover(probe, "--libcrypto", str(lib))
    assert time.monotonic() - started < 20
    (found,) = [f for f in doc["libcrypto"]["found"] if f["realpath"] == str(lib)]
    assert found["usable"] is False
    assert found["error"].startswith("timed out: the process that opened it did not finish")
    assert f"{lib}: timed out: " in " ".join(doc["problems"])


def test_a_version_string_cannot_forge_lines_of_the_reply(probe: Path, tmp_path: Path) -> None:
    forging = r"""
const char *OpenSSL_version(int t)
{
    return t == 0 ? "OpenSSL 3.9.9 fake\nmodules_dir\t\"/forged\"\nmissing\t\\n"
         : t == 8 ? "MODULESDIR: \"/real\"" : "OPENSSLDIR: \"/etc/ssl\"";
}
"""
    lib = shared(tmp_path, "forging", forging)
    doc = discover(probe, "--libcrypto", str(lib))
    (found,) = [f for f in doc["libcrypto"]["found"] if f["realpath"] == str(lib)]
    assert found["version"] == 'OpenSSL 3.9.9 fake\nmodules_dir\t"/forged"\nmissing\t\\n'
    assert found["modulesdir"] == "/real"
    assert found["missing_function"] == "OPENSSL_init_crypto"


def test_a_reply_over_the_cap_says_so(probe: Path, tmp_path: Path) -> None:
    long_version = r"""
#include <string.h>
static char v[40000];
const char *OpenSSL_version(int t)
{
    memset(v, 'v', sizeof(v) - 1);
    return t == 0 ? v : "";
}
"""
    lib = shared(tmp_path, "long", long_version)
    doc = discover(probe, "--libcrypto", str(lib))
    (found,) = [f for f in doc["libcrypto"]["found"] if f["realpath"] == str(lib)]
    assert found["error"].startswith("its reply was over 16384 bytes: cut")
    assert found["usable"] is False


def test_a_long_library_path_never_drops_the_default_directories(probe: Path) -> None:
    """3000 directories in LD_LIBRARY_PATH: 2759 were dropped without a word, the loader's
    default ones among them."""
    many = ":".join(f"/nonexistent/d{i}" for i in range(3000))
    doc = discover(probe, env={"LD_LIBRARY_PATH": many})
    dirs = {d["dir"]: d["from"] for d in doc["search_dirs"]}
    if doc["libc"]["name"] == "glibc":
        for default in ("/lib64", "/usr/lib64", "/lib", "/usr/lib"):
            assert dirs[default] == "glibc's default directories"
    assert dirs["/usr/local/lib"] == "a usual place"
    from_path = [d for d in dirs.values() if d == "LD_LIBRARY_PATH"]
    (dropped,) = [d for d in doc["search_dirs_dropped_from"] if d["from"] == "LD_LIBRARY_PATH"]
    assert len(from_path) + dropped["count"] == 3000
    said = [p for p in doc["problems"] if "directories were not searched" in p]
    assert said and f"{dropped['count']} of LD_LIBRARY_PATH" in said[0]
