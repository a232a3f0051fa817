"""A run's results made fit for readers and for a repository: the cells and the run without
this machine's paths (the matrix file's, the source cache's) and without log references,
since logs are not published."""

from __future__ import annotations

import json
import re
from pathlib import PurePath
from typing import Any

from matrix.model.types import BUILT_IN_MATRIX
from matrix.results.records import CellResult, Run

CACHE = "<cache>"
# An absolute path to a cached tarball (a source's reason, origin or advice): the cache's
# own directory is this machine's, the file name under sources/ is the fact.
_CACHED_TARBALL = re.compile(r"(?<![\w.<>-])/(?:[^\s/'\"<>()]+/)*sources/(?=openssl-)")


def redact_paths(text: str) -> str:
    return _CACHED_TARBALL.sub(f"{CACHE}/sources/", text)


def matrix_name(recorded: str) -> str:
    """A matrix path as results name it: the built-in one by that name (also as older runs
    recorded it, by its absolute path in a checkout), a user's relative path as it is, and
    an absolute one by its file name alone."""
    path = PurePath(recorded)
    if recorded == BUILT_IN_MATRIX or path.parts[-2:] == ("matrix", "default.toml"):
        return BUILT_IN_MATRIX
    return path.name if path.is_absolute() else recorded


def published_cell(result: CellResult) -> CellResult:
    """The cell as readers get it: no log references (logs stay with the run), and no path
    of this machine in any of its texts."""
    data: dict[str, Any] = json.loads(redact_paths(json.dumps(result.to_json())))
    data["logs"] = {}
    matrix = data.get("fingerprint", {}).get("matrix")
    if isinstance(matrix, dict) and isinstance(matrix.get("path"), str):
        matrix["path"] = matrix_name(matrix["path"])
    return CellResult.from_json(data)


def published_run(run: Run) -> Run:
    data = json.loads(redact_paths(json.dumps(run.to_json())))
    data["matrix"] = matrix_name(str(data.get("matrix", "?")))
    return Run.from_json(data)
