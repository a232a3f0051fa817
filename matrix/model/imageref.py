"""Whether a string is an image reference the engine takes, and if not, what is wrong with it,
checked before any engine call: the engine's own refusal ("invalid reference format") names
no part, and reached a cell as raw API text. The grammar is the engine's (distribution's
reference package): [DOMAIN/]PATH[:TAG][@DIGEST], or an image id."""

from __future__ import annotations

import re

NAME_MAX = 255  # the engine's limit on DOMAIN/PATH
TAG_MAX = 128
_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9A-Fa-f:.]+\]"  # a name or [IPv6]
_DOMAIN = re.compile(rf"(?:{_HOST})(?::[0-9]+)?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]*")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def reference_problem(ref: str) -> str | None:
    """What is wrong with `ref` as an image reference, or None when the engine takes it."""
    if _ID.fullmatch(ref):
        return None
    if not ref:
        return "it is empty"
    bad = sorted({c for c in ref if not (c.isascii() and (c.isalnum() or c in "._-/:@[]"))})
    if bad:
        return f"it holds {', '.join(repr(c) for c in bad)}, which no image reference has"
    name, _, digest = ref.partition("@")
    if digest:
        if not _DIGEST.fullmatch(digest):
            return f"digest {digest!r} is not ALGORITHM:HEX (sha256: and 64 hex digits)"
        if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
            return f"digest {digest!r}: a sha256 digest is 64 lowercase hex digits"
    tag = ""
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            return f"tag {tag!r}: want letters, digits, '_', '.' or '-', not first '.' or '-'"
        if len(tag) > TAG_MAX:
            return f"tag is {len(tag)} characters long: at most {TAG_MAX}"
    if not name:
        return "it has no repository name"
    if len(name) > NAME_MAX:
        return f"repository name is {len(name)} characters long: at most {NAME_MAX}"
    first, slash, rest = name.partition("/")
    # the first part is a registry only when it looks like one, as the engine decides
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.fullmatch(first):
            return f"registry {first!r} is not a host name with an optional :port"
        path = rest
    else:
        path = name
    for component in path.split("/"):
        if component != component.lower():
            return f"repository name {name!r} must be lowercase"
        if not _COMPONENT.fullmatch(component):
            return (
                f"repository name component {component!r}: want lowercase letters and digits "
                "joined by '.', '_', '__' or dashes"
            )
    return None
