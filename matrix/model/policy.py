"""What a matrix file may ask for. A matrix file is code: it chooses base images,
Dockerfiles, source URLs and configure options, so running someone's matrix file is like
running their Makefile. What is never legitimate is refused: source URLs other than http(s),
or naming this machine (loopback) or its link (link-local); Dockerfiles outside the matrix
file's directory tree; configure options a shell would read as more than words."""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from matrix import assets
from matrix.errors import DefinitionError
from matrix.model.locate import line_in_file
from matrix.model.types import MatrixDefinition, Platform

URL_SCHEMES = ("http", "https")
# a bare file name, looked up in dockerfiles/ (dockerfile_path)
DOCKERFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.Dockerfile$")
# Each configure entry is one argv word for ./Configure, passed through a build argument
# that the build script splits into words: nothing a shell would read as more than text.
CONFIGURE_OPTION_RE = re.compile(r"^[A-Za-z0-9_.,=+/:-]+$")
# module_config's KEY = "VALUE" lines go into the module's config file as they are
CONFIG_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
CONFIG_VALUE_RE = re.compile(r"^[A-Za-z0-9._:-]*$")


def url_refusal(url: str) -> str:
    """Why a source URL is never legitimate, or "": another scheme than http(s), no host, or
    a host that is this machine (loopback, unspecified) or only its link (link-local)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in URL_SCHEMES:
        return f"want an {' or '.join(URL_SCHEMES)} URL, not {parts.scheme or 'a bare path'!r}"
    if not host:
        return "the URL names no host"
    address = _address(host)
    name = host.rstrip(".")  # "localhost." is localhost
    if name == "localhost" or name.endswith(".localhost") or (address and address.is_loopback):
        return "a loopback address (this machine): refused"
    if address is not None and address.is_link_local:
        return "a link-local address (cloud metadata, the local link): refused"
    if address is not None and address.is_unspecified:
        return "the unspecified address (this machine): refused"
    own = address_refusal(str(address)) if address is not None else ""
    if own:  # this machine's own (non-loopback) address
        return f"{own}: refused"
    return ""


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal stands for, in any form the resolver takes (127.1,
    0x7f.0.0.1, 2130706433, ::ffff:127.0.0.1); None for a name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def dockerfile_path(platform: Platform, definition: MatrixDefinition) -> Path:
    """The `dockerfiles/` beside the matrix file that defines the platform wins (for a
    platform a matrix file inherits, the file it extends), then the package's."""
    defined_in = definition.file_of(platform.name)
    # each directory with the tree its Dockerfiles must stay in (symbolic links included)
    dirs = [
        (defined_in.parent / "dockerfiles", defined_in.parent),
        (assets.DOCKERFILES_DIR, assets.DOCKERFILES_DIR),
    ]
    seen: list[Path] = []

    def where() -> str:  # read only for an error: this runs once per cell
        line = line_in_file(defined_in, ("platforms", platform.name, "dockerfile"))
        return f"{defined_in}:{line}"

    for d, tree in dirs:
        if d in seen:
            continue
        seen.append(d)
        candidate = d / platform.dockerfile
        if candidate.is_file():
            real, root = candidate.resolve(), tree.resolve()
            if not real.is_relative_to(root):
                raise DefinitionError(
                    f"{where()}: dockerfile {platform.dockerfile!r} of platform "
                    f"{platform.name!r} is {real}, outside {root}: refused (a matrix file's "
                    "Dockerfiles live in its own directory tree)"
                )
            return candidate
    raise DefinitionError(
        f"{where()}: dockerfile {platform.dockerfile!r} of platform {platform.name!r} not "
        f"found in {', '.join(str(d) for d in seen)}; add it there or fix the name"
    )


def address_refusal(text: str) -> str:
    """Why a source may not come from this address, or "": asked of a URL's literal host here
    and of every address a download really reaches (acquire/guard.py)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # fe80::1%eth0: the scope
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address (this machine)"
    if address.is_link_local:
        return "a link-local address (cloud metadata, the local link)"
    if address.is_unspecified:
        return "the unspecified address (this machine)"
    if _own(address):
        return "an address of this machine"
    return ""


def _own(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the address is one of this machine's: only those can be bound to."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True
