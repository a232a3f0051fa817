"""Keeps the Debian mirror's address out of everything a run writes: results get committed
and shared, and the mirror is this machine's configuration, not a fact of the platform."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

PLACEHOLDER = "<debian-mirror>"

Redactor = Callable[[str], str]


def mirror_redactor(mirror: str | None) -> Redactor:
    if not mirror:
        return lambda text: text
    host = urlsplit(mirror).hostname or ""
    base = mirror.rstrip("/")

    def redact(text: str) -> str:
        text = text.replace(base, PLACEHOLDER)
        return text.replace(host, PLACEHOLDER) if host else text

    return redact
