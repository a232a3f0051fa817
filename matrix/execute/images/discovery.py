"""What the portable probe's `--discover` found in an image (docs/portable-probe.md, "The
discovery document"): the libc, the libcrypto and fips.so the probe is to use and how each was
found, the module's configuration; or, when the image holds no OpenSSL 3 or no FIPS provider,
exactly what was looked for and where. Pure: it reads documents and runs nothing. A document is
read defensively (its paths come from an image of anyone's): a key that is missing or of
another type reads as not found."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from matrix.execute.probes.batch import ProbeRun

DISCOVERY_SCHEMA = 1
MODULE_MAC_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}:?)+$")
DEFAULT_FIPS_SECTION = "fips_sect"  # what fipsinstall writes
LISTED = 40  # paths named in a reason, at most: the discovery log holds them all


@dataclass(frozen=True)
class Choice:
    """A file discovery chose for the probe, and how it was found."""

    path: str
    realpath: str
    why: str  # why it was chosen (the document's suggested.*_why)
    found_by: tuple[str, ...]  # every way discovery found it (its from[])
    version: str | None = None  # a libcrypto's OpenSSL_version
    soname: str | None = None
    nodelete: bool | None = None  # a fips.so linked NODELETE

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "realpath": self.realpath, "why": self.why}
        for key in ("version", "soname", "nodelete"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["found_by"] = list(self.found_by)
        return out


@dataclass(frozen=True)
class Discovered:
    """One discovery document, of the libc family whose probe ran in the image."""

    family: str
    document: dict[str, Any]

    @property
    def libc(self) -> dict[str, str]:
        libc = _dict(self.document.get("libc"))
        return {k: str(libc[k]) for k in ("name", "version", "loader") if _str(libc.get(k))}

    @property
    def suggested(self) -> dict[str, Any]:
        return _dict(self.document.get("suggested"))

    @property
    def problems(self) -> list[str]:
        return [p for p in _list(self.document.get("problems")) if isinstance(p, str)]

    @property
    def libcrypto(self) -> Choice | None:
        """The libcrypto the probe is to use; None when discovery found none it can use."""
        chosen = self.suggested.get("libcrypto")
        if not _str(chosen) or self.suggested.get("libcrypto_usable") is not True:
            return None
        entry = _entry(_dict(self.document.get("libcrypto")), chosen)
        return Choice(
            path=str(entry.get("path") or chosen),
            realpath=str(chosen),
            why=str(self.suggested.get("libcrypto_why") or ""),
            found_by=_strings(entry.get("from")),
            version=entry.get("version") if _str(entry.get("version")) else None,
            soname=entry.get("soname") if _str(entry.get("soname")) else None,
        )

    @property
    def module(self) -> Choice | None:
        """The fips.so the probe is to load; None when discovery found none."""
        chosen = self.suggested.get("module")
        if not _str(chosen):
            return None
        entry = _entry(_dict(self.document.get("fips_modules")), chosen)
        nodelete = entry.get("nodelete")
        return Choice(
            path=str(chosen),
            realpath=str(entry.get("realpath") or chosen),
            why=str(self.suggested.get("module_why") or ""),
            found_by=_strings(entry.get("from")),
            nodelete=nodelete if isinstance(nodelete, bool) else None,
        )

    @property
    def configs(self) -> list[dict[str, Any]]:
        """The OpenSSL configuration files found, each {path, realpath, from, text}."""
        return [_dict(c) for c in _list(_dict(self.document.get("configs")).get("found"))]

    def summary(self, module_mac: dict[str, Any]) -> dict[str, Any]:
        """What a cell's fingerprint records of it."""
        environment = _dict(self.document.get("environment"))
        libcrypto, module = self.libcrypto, self.module
        return {
            "probe": "portable",
            "family": self.family,
            "built_for": str(self.document.get("built_for") or "?"),
            "libc": self.libc,
            "libcrypto": libcrypto.summary() if libcrypto else None,
            "module": module.summary() if module else None,
            "module_of_libcrypto": self.suggested.get("module_of_libcrypto") is True,
            "configs": [
                {"path": str(c.get("path")), "found_by": list(_strings(c.get("from")))}
                for c in self.configs
            ],
            "module_mac": module_mac,
            "environment": {k: v for k, v in environment.items() if _str(v)},
            "executables": [
                str(e.get("path"))
                for e in (_dict(x) for x in _list(self.document.get("executables")))
            ],
            "problems": self.problems,
        }


def choose(runs: Sequence[ProbeRun], families: Sequence[str]) -> Discovered | str:
    """Of each family's discovery run (in `families` order), the one whose probe ran and found
    a usable libcrypto, else the first that ran; or why none ran."""
    ran: list[Discovered] = []
    failed: list[str] = []
    hung: list[str] = []  # the families whose discovery ran but did not end, or said too much
    for family, run in zip(families, runs, strict=True):
        doc, why = run.document()
        if run.exit_code == 0 and doc is not None and doc.get("discovery") == DISCOVERY_SCHEMA:
            ran.append(Discovered(family, doc))
            continue
        if run.timed_out:
            how = f"timed out after {run.seconds:g} s" if run.seconds else "timed out"
        else:
            how = f"exit {run.exit_code}"
        # a cut document: the cut is the news, not what the program printed on stderr
        text = why if run.stdout_cut else (run.stderr or why)
        tail = text.strip().splitlines()[-1:] or [""]
        failed.append(f"{family}: {how}{': ' + tail[0][:300] if tail[0] else ''}")
        if run.timed_out or run.stdout_cut:
            hung.append(failed[-1])
    usable = [d for d in ran if d.suggested.get("libcrypto_usable") is True]
    if usable or ran:
        return (usable or ran)[0]
    if hung:  # it ran, so the image has a loader: say what went wrong, not that it has none
        others = [f for f in failed if f not in hung]
        also = f" (and {'; '.join(others)})" if others else ""
        return f"discovery ran in the image but gave no document: {'; '.join(hung)}{also}"
    return (
        "neither the glibc nor the musl probe could run in the image, so it has no dynamic "
        f"loader of either (a static program's image?): {'; '.join(failed)}"
    )


def skip_reason(found: Discovered) -> str | None:
    """Why the image cannot be probed (no OpenSSL 3 or later, no FIPS provider), naming what
    was looked for and where; None when it can."""
    libcrypto, module = found.libcrypto, found.module
    if libcrypto is not None and module is not None:
        return None
    doc = found.document
    problems = "; ".join(found.problems) or "nothing usable found"
    if libcrypto is None:
        what = "no OpenSSL 3 or later libcrypto the probe can use"
        if module is None:
            what += ", and no FIPS provider (fips.so)"
    else:
        version = f" ({libcrypto.version})" if libcrypto.version else ""
        what = f"libcrypto {libcrypto.realpath}{version}, but no FIPS provider (fips.so)"
    text = f"the image holds {what}: {problems}."
    if libcrypto is None:
        dirs, more = _tried(_dict(doc.get("libcrypto")), directories=True)
        text += (
            f" Looked for libcrypto.so.3 and libcrypto.so.4 in {_listing(dirs, more)}, and by "
            "name through the image's loader."
        )
    if module is None:
        paths, more = _tried(_dict(doc.get("fips_modules")), directories=False)
        text += f" Looked for fips.so at {_listing(paths, more)}."
    return text


def configured_module_mac(found: Discovered, preferred: str | None) -> tuple[str, str] | str:
    """The module-mac of the image's own configuration and the file it is in, or why there is
    none. The fips section is the one a `providers` section names (`fips = SECTION`), else
    fipsinstall's `fips_sect`; the files are read in the order the image's OpenSSL would take
    them: `preferred` (the platform's fips_config), then $OPENSSL_CONF's, then the others."""
    configs = found.configs

    def rank(config: dict[str, Any]) -> int:
        names = {config.get("path"), config.get("realpath")}
        if preferred is not None and preferred in names:
            return 0
        return 1 if "OPENSSL_CONF" in _strings(config.get("from")) else 2

    parsed = [
        (str(c.get("path")), _sections(str(c.get("text") or "")))
        for c in sorted(configs, key=rank)  # stable: the document's order within a rank
    ]
    sections = {DEFAULT_FIPS_SECTION}
    for _, conf in parsed:
        for values in conf.values():
            providers = values.get("providers")
            for _, other in parsed:
                fips = other.get(providers or "", {}).get("fips")
                if fips:
                    sections.add(fips)
    for path, conf in parsed:
        for name in sorted(sections):
            value = conf.get(name, {}).get("module-mac")
            if value is None:
                continue
            if not MODULE_MAC_RE.match(value):
                return f"module-mac in [{name}] of {path} is not hex bytes: {value[:80]!r}"
            return value, path
    if not parsed:
        tried, more = _tried(_dict(found.document.get("configs")), directories=False)
        return f"the image holds no OpenSSL configuration: looked at {_listing(tried, more)}"
    where = ", ".join(path for path, _ in parsed)
    names = ", ".join(sorted(sections))
    return f"no module-mac in [{names}] of the image's configuration ({where})"


# --- reading an OpenSSL configuration (only what the module-mac needs) ----------------------

_SECTION_RE = re.compile(r"^\s*\[\s*([^\]\s]+)\s*\]")
_PAIR_RE = re.compile(r"^\s*([A-Za-z0-9_.$-]+)\s*=\s*(.*?)\s*$")


def _sections(text: str) -> dict[str, dict[str, str]]:
    """Section -> key -> value; the first value of a key stands. Directives (.include,
    .pragma) are left out: discovery followed the includes and read those files too."""
    sections: dict[str, dict[str, str]] = {"default": {}}
    current = "default"
    for raw in text.splitlines():
        line = _uncommented(raw)
        section = _SECTION_RE.match(line)
        if section:
            current = section.group(1)
            sections.setdefault(current, {})
            continue
        pair = _PAIR_RE.match(line)
        if pair and not line.lstrip().startswith("."):
            sections[current].setdefault(pair.group(1), _unquoted(pair.group(2)))
    return sections


def _uncommented(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


# --- reading the document -------------------------------------------------------------------


def _tried(group: dict[str, Any], *, directories: bool) -> tuple[list[str], int]:
    """The paths (or their directories) a group's tried[] names, in order, and how many more
    the probe left out of its document or this list leaves out."""
    seen: list[str] = []
    for entry in _list(group.get("tried")):
        path = _dict(entry).get("path")
        if not _str(path) or not path.startswith("/"):
            continue  # a bare name: the loader's own search
        item = os.path.dirname(path) if directories else path
        if item not in seen:
            seen.append(item)
    dropped = group.get("tried_dropped")
    more = dropped if isinstance(dropped, int) and not isinstance(dropped, bool) else 0
    return seen[:LISTED], more + max(0, len(seen) - LISTED)


def _listing(items: list[str], more: int) -> str:
    text = ", ".join(items) if items else "no place at all"
    return f"{text} (and {more} more)" if more > 0 else text


def _entry(group: dict[str, Any], path: str) -> dict[str, Any]:
    """The found[] entry of a path (by its realpath or any name)."""
    for entry in (_dict(e) for e in _list(group.get("found"))):
        if path in (entry.get("realpath"), entry.get("path")):
            return entry
    return {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in _list(value) if isinstance(v, str))
