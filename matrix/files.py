"""Files the tool writes for others to read (results, cached sources): written whole or not
at all, with the permissions the user's umask gives new files, and durable once written. And
files it reads from elsewhere (results directories): regular files only, never through a
symbolic link, and never an open that can block."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO


class NotRegular(OSError):
    """A file that is not read: str() says why (a symbolic link, a FIFO, a device...)."""


def open_regular(path: Path) -> BinaryIO:
    """A regular file opened for reading, never through a symbolic link. The open does not
    block (O_NONBLOCK: a FIFO would wait for a writer for ever), and the file's type is
    checked before any read; NotRegular saying why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        why = "a symbolic link: not read" if path.is_symlink() else exc.strerror or str(exc)
        raise NotRegular(why) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(f"not a regular file ({_kind(mode)}): not read")
    return os.fdopen(fd, "rb")


def read_regular(path: Path, limit: int) -> bytes:
    """At most limit + 1 bytes of a regular file (open_regular), so a caller sees a file
    over its limit."""
    with open_regular(path) as f:
        return f.read(limit + 1)


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISDIR: "a directory",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def umask() -> int:
    """The process's umask, read without changing it (Linux shows it in /proc); where that
    is not possible, set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: Path) -> None:
    """Gives a file made with mkstemp (always 0600) the mode any new file gets."""
    os.chmod(path, 0o666 & ~umask())


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: a reader sees
    the old file or the new one, and after a crash the new one is there or the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        publish_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def write_text(path: Path, text: str) -> None:
    """write_atomic of a text, in UTF-8; what UTF-8 cannot encode (a lone surrogate) is
    written as its escape rather than failing half-way through a set of files."""
    write_atomic(path, text.encode("utf-8", "backslashreplace"))


def sync_directory(directory: Path) -> None:
    """fsync a directory, so that a rename in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
