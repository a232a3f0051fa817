"""The lock of a run: the matrix definition, every base image by id and every source by
sha256 that the run used. A run with --locked refuses to go on when anything differs."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix.errors import LockMismatch, MatrixError
from matrix.files import write_text
from matrix.model.definition import SHA256_RE

LOCK_SCHEMA = 1
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass
class Lock:
    matrix_digest: str
    base_images: dict[str, str] = field(default_factory=dict)  # ref -> image id
    sources: dict[str, str] = field(default_factory=dict)  # version -> sha256

    def to_json(self) -> dict[str, Any]:
        return {"schema": LOCK_SCHEMA, **self.__dict__}

    def write(self, path: Path) -> None:
        text = json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
        write_text(path, text)

    @classmethod
    def from_json(cls, data: Any) -> Lock:
        """A lock from its JSON; ValueError saying what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError("a lock must be a JSON object")
        if data.get("schema") != LOCK_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, this version reads {LOCK_SCHEMA}")
        digest = data.get("matrix_digest")
        if not isinstance(digest, str) or not SHA256_RE.match(digest):
            raise ValueError("matrix_digest: want a sha256 in hex")
        maps = {}
        for key, value_re in (("base_images", IMAGE_ID), ("sources", SHA256_RE)):
            value = data.get(key)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and value_re.match(v)
                for k, v in value.items()
            ):
                raise ValueError(f"{key}: want an object of {key[:-1].replace('_', ' ')} ids")
            maps[key] = dict(value)
        return cls(digest, maps["base_images"], maps["sources"])

    @classmethod
    def read(cls, path: Path) -> Lock:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, RecursionError) as exc:
            raise MatrixError(
                f"--locked: cannot read the lock {path} ({exc}); run once without --locked "
                "to record one"
            ) from exc

    def check_matrix(self, digest: str, path: Path) -> None:
        if digest != self.matrix_digest:
            raise LockMismatch(
                f"--locked: the matrix definition changed since the lock was written "
                f"(digest {digest[:12]}, lock says {self.matrix_digest[:12]})"
            )

    def check_base(self, ref: str, image_id: str) -> None:
        _check(f"base image {ref}", image_id, self.base_images.get(ref), 19)

    def check_source(self, version: str, sha256: str) -> None:
        _check(f"OpenSSL {version}", sha256, self.sources.get(version), 12)


def _check(what: str, got: str, want: str | None, width: int) -> None:
    if want != got:
        raise LockMismatch(
            f"--locked: {what} is {got[:width]}, the lock says {(want or 'nothing')[:width]}"
        )


class LockKeeper:
    """What a run uses, checked against the lock it was given (--locked) as it is used, and
    recorded for the run's own lock. Workers call it side by side."""

    def __init__(self, matrix_digest: str, locked: Lock | None = None) -> None:
        self.locked = locked
        self.used = Lock(matrix_digest)
        self._lock = threading.Lock()

    def base(self, ref: str, image_id: str) -> None:
        if self.locked is not None:
            self.locked.check_base(ref, image_id)
        with self._lock:
            self.used.base_images[ref] = image_id

    def source(self, version: str, sha256: str) -> None:
        if self.locked is not None:
            self.locked.check_source(version, sha256)
        with self._lock:
            self.used.sources[version] = sha256

    def write(self, path: Path) -> None:
        """A run of some cells adds what it used to the lock of the same matrix, so a later
        --locked run of all cells still finds every base image and source."""
        try:
            old = Lock.read(path)
        except MatrixError:
            old = None
        used = self.used
        if old is not None and old.matrix_digest == used.matrix_digest:
            used = Lock(
                used.matrix_digest,
                {**old.base_images, **used.base_images},
                {**old.sources, **used.sources},
            )
        used.write(path)
