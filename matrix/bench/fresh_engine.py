"""A Docker engine of the benchmark's own, with nothing in it: a second dockerd with its own
data root, exec root, pidfile, socket, configuration (an empty one: the machine's
daemon.json may name a data root or hosts of its own) and containerd namespaces (a running
system containerd is shared, and would otherwise show it the main engine's images), no
bridge (builds use the host's network, probes none) and no iptables rules of its own, so
it disturbs no other engine on the machine. Stopped, and its data removed, when the
`with fresh_engine(...)` block ends. Needs root and dockerd."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from matrix.errors import MatrixError


class FreshEngine:
    def __init__(self, root: Path, start_timeout: float = 60.0) -> None:
        self.root = root
        self.start_timeout = start_timeout
        self.socket = root / "docker.sock"
        self.pidfile = root / "dockerd.pid"
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """DOCKER_HOST for clients of this engine."""
        return f"unix://{self.socket}"

    @staticmethod
    def dockerd() -> str:
        """dockerd's path; a clear error, before any work, where there is none or no root."""
        if os.geteuid() != 0:
            raise MatrixError("a fresh engine (a dockerd of our own) needs root")
        dockerd = shutil.which("dockerd") or next(
            (p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd") if os.path.exists(p)), None
        )
        if dockerd is None:
            raise MatrixError("a fresh engine needs dockerd (apt-get install docker.io)")
        return dockerd

    def command(self) -> list[str]:
        return [
            self.dockerd(),
            "--config-file",
            str(self.root / "daemon.json"),
            "--containerd-namespace",
            "fips-matrix-bench",
            "--containerd-plugins-namespace",
            "fips-matrix-bench-plugins",
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.pidfile),
            "--host",
            self.host,
            "--bridge=none",
            "--iptables=false",
        ]

    def start(self) -> None:
        command = self.command()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "daemon.json").write_text("{}\n")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + self.start_timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace").splitlines()[-10:]
                self.stop()
                raise MatrixError("the fresh engine did not start:\n" + "\n".join(tail))
            time.sleep(0.5)

    def answers(self) -> bool:
        """Whether the engine answers a ping on its socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in s.recv(1024)
        except OSError:
            return False

    def stop(self) -> None:
        """Stops our dockerd (by its own pid), waits for it, then removes its data."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._unmount_leftovers()
        shutil.rmtree(self.root, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        """Mounts dockerd left under our root (an overlay of a container it could not stop)."""
        prefix = str(self.root.resolve()) + "/"
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@contextlib.contextmanager
def fresh_engine(root: Path) -> Iterator[FreshEngine]:
    """A fresh engine for the `with` block: started, then stopped and its data removed."""
    engine = FreshEngine(root)
    try:  # dockerd runs in a session of its own: Ctrl-C while it starts must stop it too
        engine.start()
        yield engine
    finally:
        engine.stop()
