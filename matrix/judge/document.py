"""The probe document's schema (docs/probe-document.md), as the judge reads it: what of a
complete document the verdict is read from must be there, and of which type. A document from
a results file may hold anything: what is wrong is said in words, never a traceback."""

from __future__ import annotations

from typing import Any

PROBE_SCHEMA = 1

Doc = dict[str, Any]

# exit-after-reload's forked children: how each ended
CHILD_ENDS = {
    "exit_without_context": "a child that freed context B and returned from main",
    "exit_after_cleanup": "a child that freed B, called OPENSSL_cleanup() and returned from main",
}

_NONE = type(None)
_FLAG = (bool, int)  # the C probe writes true/false; older documents may hold 0/1
Shape = dict[str, type | tuple[type, ...]]
_BASELINE: Shape = {
    "mappings": int,
    "noload_loaded": _FLAG,
    "module_nodelete": (bool, _NONE),
    "libc_dlclose_unmaps": (bool, _NONE),
}
_STEP: Shape = {
    "name": str,
    "ok": (bool, _NONE),
    "errors": list,
    "self_tests": dict,
    "status": (int, _NONE),
    "digest_ok": (bool, _NONE),
    "mappings": int,
    "noload_loaded": _FLAG,
}
_SELF_TESTS: Shape = {"started": int, "corrupted": int, "failed_tests": str}
_WORKER = ("ok_before_failure", "failed_after_failure", "ok_after_failure", "first_error")
_WORKERS: Shape = {  # one of workers: what the verdict code reads beyond _WORKER
    "name": str,
    "called_thread_stop": bool,
    "exited_before_failure": bool,
}
_END: Shape = {"exit_status": (int, _NONE), "signal": (int, _NONE), "timed_out": bool}
_REQUIRED_STEPS = ("load_a", "unload_a", "reload_b")


def malformed(doc: Doc) -> str:
    """What of a complete document the verdict is read from is missing or of another type
    ("" when nothing): a document from a results file may hold anything, and must come out
    INCONCLUSIVE, never as a traceback."""
    base = doc.get("baseline")
    if not isinstance(base, dict):
        return "baseline: want an object"
    problem = _wrong_keys(base, _BASELINE, "baseline")
    if problem:
        return problem
    steps = doc.get("steps")
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        return "steps: want an array of objects"
    for i, step in enumerate(steps):
        problem = _wrong_keys(step, _STEP, f"steps[{i}]") or _wrong_keys(
            step["self_tests"], _SELF_TESTS, f"steps[{i}].self_tests"
        )
        if problem:
            return problem
        if not all(isinstance(e, dict) and "reason" in e for e in step["errors"]):
            return f"steps[{i}].errors: want objects with a reason"
    names = {step["name"] for step in steps}
    missing = [name for name in _REQUIRED_STEPS if name not in names]
    if missing:
        return f"no step {', '.join(missing)}"
    worker = doc.get("worker")
    if worker is not None and not (isinstance(worker, dict) and all(k in worker for k in _WORKER)):
        return f"worker: want an object with {', '.join(_WORKER)}"
    workers = doc.get("workers")
    if workers is not None:
        if not isinstance(workers, list) or not all(isinstance(w, dict) for w in workers):
            return "workers: want an array of objects"
        for i, w in enumerate(workers):
            if not all(k in w for k in _WORKER):
                return f"workers[{i}]: want an object with {', '.join(_WORKER)}"
            problem = _wrong_keys(w, _WORKERS, f"workers[{i}]")
            if problem:
                return problem
    for key in CHILD_ENDS:
        end = doc.get(key)
        if end is not None:
            problem = (
                _wrong_keys(end, _END, key) if isinstance(end, dict) else f"{key}: want an object"
            )
            if problem:
                return problem
    return ""


def _wrong_keys(data: Doc, shape: Shape, where: str) -> str:
    for key, kinds in shape.items():
        if not isinstance(data.get(key, ...), kinds):
            return f"{where}.{key}: missing, or not what it should be"
    return ""
