"""The rules a platform's Dockerfile keeps, by what its platform is: every Dockerfile keeps
the generic rules; one that builds OpenSSL from the verified tarball keeps the whole
contract (the stages, build args and steps the tool relies on)."""

from __future__ import annotations

from enum import StrEnum


class Rules(StrEnum):
    GENERIC = "generic"  # nothing downloaded, no BuildKit, the runtime stage last
    FULL = "full"  # and the compile contract


GENERIC = Rules.GENERIC
FULL = Rules.FULL
