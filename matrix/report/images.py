"""What each existing image holds, as the portable probe's discovery found it (the cell's
fingerprint): the lines `fips-matrix probe` prints after the tables."""

from __future__ import annotations

from collections.abc import Sequence

from matrix.model.vocabulary import Outcome
from matrix.results.records import CellResult


def describe(results: Sequence[CellResult]) -> list[str]:
    """What each image holds, as discovery found it: the lines after the tables."""
    lines = []
    for result in results:
        fp = result.fingerprint if isinstance(result.fingerprint, dict) else {}
        found = fp.get("discovery")
        image = fp.get("image", {}).get("tag") or fp.get("base_image", {}).get("ref") or "?"
        if not isinstance(found, dict):
            lines.append(f"{result.platform}: {result.outcome}: {result.reason}")
            continue
        libc = found.get("libc") or {}
        head = f"{result.platform} ({image}): {libc.get('name', '?')} {libc.get('version', '?')}"
        lines.append(head + (f"; {result.outcome}" if result.outcome != Outcome.OK else ""))
        for what, key in (("libcrypto", "libcrypto"), ("fips.so", "module")):
            choice = found.get(key)
            if isinstance(choice, dict):
                version = f" ({choice['version']})" if choice.get("version") else ""
                lines.append(f"  {what}: {choice.get('path')}{version}: {choice.get('why')}")
            else:
                lines.append(f"  {what}: none found")
        mac = found.get("module_mac") or {}
        if mac.get("from") == "image":
            lines.append(f"  module-mac: the image's own, from {mac.get('config')}")
        listed = found.get("configs")
        listed = listed if isinstance(listed, list) else []
        configs = [str(c.get("path")) for c in listed if isinstance(c, dict)]
        lines.append(f"  configuration: {', '.join(configs) or 'none found'}")
        # what discovery could not do (directories past its cap, a pair it could not tell)
        problems = found.get("problems")
        for problem in problems if isinstance(problems, list) else []:
            if isinstance(problem, str) and result.outcome == Outcome.OK:
                lines.append(f"  discovery: {problem}")
        if fp.get("second_witness"):
            lines.append(f"  second witness: {fp['second_witness']}")
    return lines
