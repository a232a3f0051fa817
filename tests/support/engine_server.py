"""A fake Docker engine on a unix socket, speaking enough of the engine's HTTP API for a real
`fips-matrix run` process (DOCKER_HOST=unix://...) to get as far as a test needs: ping,
version and info, images by name, a pull that fails, builds (that succeed, or hang until the
client goes away), probe containers (created, attached, started, then waited for forever)
and the container listing and removal a run does at its start.

tests/support/fakes.py fakes the SDK inside the test process; this fakes the engine outside it,
for tests that must signal or kill the tool's real process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socketserver
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class EngineState:
    images: dict[str, str] = field(default_factory=dict)  # name or id -> id
    hang_builds: bool = False  # a build streams its first step, then nothing more
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> attrs
    removed: list[str] = field(default_factory=list)  # container ids, as DELETEd
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> attrs
    # how long a removal takes after the container has stopped (a real engine kills it,
    # then cleans up): a second removal meanwhile is a 409 Conflict
    removal_seconds: float = 0.0
    builds: list[str] = field(default_factory=list)  # tags, as asked for
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def image_id(self, name: str) -> str:
        return "sha256:" + hashlib.sha256(name.encode()).hexdigest()

    def add_image(self, name: str) -> None:
        self.images[name] = self.images[self.image_id(name)] = self.image_id(name)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    state: EngineState


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def state(self) -> EngineState:
        return self.server.state

    def address_string(self) -> str:  # a unix socket has no client address
        return "unix"

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = re.sub(r"^/v[0-9.]+", "", unquote(parts.path))
        with self.state.lock:
            self.state.requests.append(f"{self.command} {path}")
        return path, parse_qs(parts.query)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding") == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _empty(self, status: int = 204) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _chunk(self, data: dict[str, Any]) -> None:
        line = json.dumps(data).encode() + b"\r\n"
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    # --- requests --------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route()
        self._empty(200)

    def do_GET(self) -> None:
        path, query = self._route()
        state = self.state
        if path == "/_ping":
            body = b"OK"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/version":
            self._json(
                200,
                {
                    "Version": "99.0-fake",
                    "ApiVersion": "1.41",
                    "MinAPIVersion": "1.12",
                    "Os": "linux",
                    "Arch": "amd64",
                    "KernelVersion": "6.1.0-fake",
                },
            )
        elif path == "/info":
            self._json(
                200,
                {
                    "KernelVersion": "6.1.0-fake",
                    "OperatingSystem": "fake engine",
                    "Architecture": "x86_64",
                    "Driver": "overlay2",
                },
            )
        elif path == "/images/json":  # a listing: every image, by its tags
            listed = [
                {"Id": image, "RepoTags": [name], "Labels": {}}
                for name, image in state.images.items()
            ]
            self._json(200, listed)
        elif path.startswith("/images/") and path.endswith("/json"):
            name = path[len("/images/") : -len("/json")]
            image = state.images.get(name)
            if image is None:
                self._json(404, {"message": f"No such image: {name}"})
            else:
                self._json(200, {"Id": image, "RepoTags": [name], "Config": {"Labels": {}}})
        elif path == "/containers/json":
            wanted = json.loads(query.get("filters", ["{}"])[0]).get("label", [])
            with state.lock:
                found = [
                    {"Id": cid, "Labels": c["Config"]["Labels"]}
                    for cid, c in state.containers.items()
                    if all(w.split("=")[0] in c["Config"]["Labels"] for w in wanted)
                ]
            self._json(200, found)
        elif path == "/volumes":
            with state.lock:
                self._json(200, {"Volumes": list(state.volumes.values()), "Warnings": []})
        elif path.startswith("/volumes/"):
            with state.lock:
                volume = state.volumes.get(path.split("/")[2])
            if volume is None:
                self._json(404, {"message": f"get {path.split('/')[2]}: no such volume"})
            else:
                self._json(200, volume)
        elif path.startswith("/containers/") and path.endswith("/logs"):
            cid = path.split("/")[2]
            with state.lock:
                gone = cid not in state.containers
            if gone:
                self._json(404, {"message": f"No such container: {cid}"})
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.docker.raw-stream")
                self.send_header("Content-Length", "0")
                self.end_headers()
        elif path.startswith("/containers/") and path.endswith("/json"):
            cid = path.split("/")[2]
            with state.lock:
                found = state.containers.get(cid)
            if found is None:
                self._json(404, {"message": f"No such container: {cid}"})
            else:
                self._json(200, found)
        else:
            self._json(404, {"message": f"fake engine: no {path}"})

    def do_DELETE(self) -> None:
        path, _ = self._route()
        cid = path.split("/")[2]
        with self.state.lock:
            again = cid in self.state.removed
            self.state.containers.pop(cid, None)
            self.state.removed.append(cid)
        if again:  # as the engine answers a removal of one being removed
            self._json(409, {"message": f"removal of container {cid} is already in progress"})
        else:
            time.sleep(self.state.removal_seconds)
            self._empty()

    def do_POST(self) -> None:
        path, query = self._route()
        body = self._body()
        state = self.state
        if path == "/images/create":  # a pull: no registry here
            self._json(404, {"message": "pull access denied: no registry reachable"})
        elif path == "/build":
            self._build(query.get("t", [""])[0])
        elif path == "/volumes/create":
            config = json.loads(body or b"{}")
            volume = {"Name": config["Name"], "Labels": config.get("Labels") or {}}
            with state.lock:
                state.volumes[config["Name"]] = volume
            self._json(201, volume)
        elif path == "/containers/create":
            config = json.loads(body or b"{}")
            cid = hashlib.sha256(f"{time.time_ns()}".encode()).hexdigest()
            with state.lock:
                state.containers[cid] = {
                    "Id": cid,
                    "Name": f"/fake-{cid[:8]}",
                    "Config": {"Labels": config.get("Labels") or {}, "Tty": False},
                    "State": {"Status": "created", "Running": False},
                    "HostConfig": config.get("HostConfig") or {},
                    "Cmd": config.get("Cmd") or [],
                }
            self._json(201, {"Id": cid, "Warnings": []})
        elif path.endswith("/attach"):
            self.send_response(101)
            self.send_header("Content-Type", "application/vnd.docker.raw-stream")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "tcp")
            self.end_headers()
            self.wfile.flush()
            cid = path.split("/")[2]
            while cid not in state.removed:  # a probe that never prints, unless removed
                if state.stopping.wait(0.1):
                    break
            self.close_connection = True
        elif path.endswith("/start"):
            self._empty()
        elif path.endswith("/wait"):
            cid = path.split("/")[2]
            with state.lock:
                cmd = state.containers.get(cid, {}).get("Cmd") or []
            if cmd[:2] == ["sh", "-c"]:  # the portable probe's volume fill: done at once
                self._json(200, {"StatusCode": 0, "Error": None})
                return
            while cid not in state.removed:  # a probe that never ends, unless removed
                if state.stopping.wait(0.1):
                    return
            self._json(200, {"StatusCode": 137, "Error": None})
        elif path.endswith("/kill"):
            self._empty()
        else:
            self._json(404, {"message": f"fake engine: no {path}"})

    def _build(self, tag: str) -> None:
        with self.state.lock:
            self.state.builds.append(tag)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk({"stream": "Step 1/9 : FROM fake\n"})
        if self.state.hang_builds:
            self._hang()
            return
        image = self.state.image_id(tag)
        self.state.add_image(tag)
        self._chunk({"aux": {"ID": image}})
        self._chunk({"stream": f"Successfully tagged {tag}\n"})
        self.wfile.write(b"0\r\n\r\n")

    def _hang(self) -> None:
        """Holds the request open until the client goes or the server stops."""
        self.close_connection = True
        while not self.state.stopping.wait(0.2):
            pass


class FakeEngine:
    """The server, on a socket of its own; DOCKER_HOST for a process to use it."""

    def __init__(self, state: EngineState) -> None:
        self.state = state
        self.dir = Path(tempfile.mkdtemp(prefix="fe-", dir="/tmp"))  # a short socket path
        self.socket = self.dir / "docker.sock"
        self.server = _Server(str(self.socket), _Handler)
        self.server.state = state
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> FakeEngine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.socket.unlink(missing_ok=True)
        os.rmdir(self.dir)
