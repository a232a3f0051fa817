"""Keeps the Debian mirror's address out of everything a run writes: results get committed
and shared, and the mirror is this machine's configuration, not a fact of the platform."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

PLACEHOLDER = "<debian-mirror>"

Redactor = Callable[[str], str]


def keep(text: str) -> str:
    """The redactor of a run with no mirror to hide."""
    return text


def mirror_redactor(mirror: str | None) -> Redactor:
    if not mirror:
        return keep
    host = urlsplit(mirror).hostname or ""
    base = mirror.rstrip("/")
    # The bare host too (apt and debootstrap name it alone), but only a dotted name, and only
    # where it stands as a name: a short host must not eat into ids, words or hex digests.
    bare = re.compile(rf"(?<![\w.-]){re.escape(host)}(?![\w-])") if "." in host else None

    def redact(text: str) -> str:
        text = text.replace(base, PLACEHOLDER)
        # the pattern only where the bare host is left: a plain search is far cheaper
        return bare.sub(PLACEHOLDER, text) if bare and host in text else text

    return redact
