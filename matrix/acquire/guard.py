"""Where a source URL may lead: never to this machine (loopback, its own addresses, the
unspecified address) nor to the local link (cloud metadata), whatever the URL's host looks
like. The matrix file's check reads the literal host only (matrix/model/policy.py,
url_refusal); this checks what a download really reaches: every address the name resolves
to before connecting, the address connected to after, and each redirect's target, again.

Hosts of the user's own configuration (the Debian mirror from apt's sources, which may well be
a cache on this machine) are trusted as they are."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from matrix.model.policy import address_refusal, url_refusal


class Unreachable(OSError):
    """A download that would reach this machine or its link; str() says where and why."""


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


class _Checked:
    """An HTTP(S) connection that refuses a name resolving to a refused address, and checks
    the address it did connect to (a name can resolve anew between the two). A literal
    address was checked where it was written (the matrix file, or the redirect)."""

    host: str
    port: int
    sock: Any

    def __init__(self, *args: Any, trusted: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trusted = trusted

    def connect(self) -> None:
        checked = self.host not in self.trusted and not _literal(self.host)
        if checked:
            for *_, sockaddr in socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM):
                why = address_refusal(str(sockaddr[0]))
                if why:
                    raise Unreachable(f"{self.host} resolves to {sockaddr[0]}, {why}: refused")
        super().connect()  # type: ignore[misc]
        if checked:
            peer = str(self.sock.getpeername()[0])
            why = address_refusal(peer)
            if why:
                self.close()  # type: ignore[attr-defined]
                raise Unreachable(f"{self.host} connected to {peer}, {why}: refused")


class _HTTPConnection(_Checked, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Checked, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, trusted: Collection[str]) -> None:
        super().__init__()
        self.trusted = trusted

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, trusted=self.trusted), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, trusted: Collection[str]) -> None:
        super().__init__()
        self.trusted = trusted

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPSConnection, trusted=self.trusted)
        return self.do_open(connection, req, context=getattr(self, "_context", None))


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """A redirect's target is checked as the matrix file's URLs are, literal host included."""

    def __init__(self, trusted: Collection[str]) -> None:
        super().__init__()
        self.trusted = trusted

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        why = redirect_refusal(newurl, self.trusted)
        if why:
            raise urllib.error.URLError(f"redirected to {newurl}: {why}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def redirect_refusal(url: str, trusted: Collection[str] = ()) -> str:
    """Why a redirect to `url` is not followed, or "": what a source URL may not be
    (model/policy.py), unless it names a host of the user's own configuration."""
    try:
        if (urlsplit(url).hostname or "") in trusted:
            return ""
    except ValueError:
        pass  # not a URL: url_refusal says so
    return url_refusal(url)


def opener(trusted: Collection[str] = ()) -> urllib.request.OpenerDirector:
    """urlopen's opener with every check above; `trusted`: host names of the user's own
    configuration, reached as they are."""
    return urllib.request.build_opener(
        _HTTPHandler(trusted), _HTTPSHandler(trusted), _RedirectHandler(trusted)
    )


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
