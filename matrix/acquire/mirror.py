"""Find the Debian mirror this host already uses, so no mirror address is hard-coded."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

ENV_VAR = "FIPS_MATRIX_DEBIAN_MIRROR"


def debian_mirror(
    env: Mapping[str, str] = os.environ, apt_dir: Path = Path("/etc/apt")
) -> str | None:
    """The mirror's base URL (the directory holding pool/ and dists/), or None."""
    override = env.get(ENV_VAR, "").strip()
    if override:
        return override.rstrip("/")
    for path in _source_files(apt_dir):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # unreadable apt files are apt's problem, not ours
        entries = _deb822(text) if path.suffix == ".sources" else _one_line(text)
        for uri in entries:
            if _is_debian_archive(uri):
                return uri.rstrip("/")
    return None


def _source_files(apt_dir: Path) -> Iterator[Path]:
    # apt's own order: sources.list, then sources.list.d/ sorted; other suffixes
    # (.disabled, .save, .dpkg-old...) are ignored by apt and by us.
    main = apt_dir / "sources.list"
    if main.is_file():
        yield main
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix in (".list", ".sources") and path.is_file():
                yield path


def _is_debian_archive(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and parts.path.rstrip("/").endswith("/debian")


def _wanted(suites: list[str], components: list[str]) -> bool:
    return "main" in components and any(not s.endswith("-security") for s in suites)


def _one_line(text: str) -> Iterator[str]:
    """`deb [opt=val ...] URI SUITE COMPONENT...` lines."""
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        rest = words[1:]
        if rest and rest[0].startswith("["):
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 3 and _wanted([rest[1]], rest[2:]):
            yield rest[0]


def _deb822(text: str) -> Iterator[str]:
    """Stanzas of `Field: value` lines separated by blank lines."""
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        if not _wanted(stanza.get("suites", "").split(), stanza.get("components", "").split()):
            continue
        yield from stanza.get("uris", "").split()


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t" and last is not None:
            fields[last] += " " + line.strip()  # continuation line
        elif ":" in line:
            key, value = line.split(":", 1)
            last = key.strip().lower()
            fields[last] = value.strip()
    if fields:
        yield fields
