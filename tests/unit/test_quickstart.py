"""The README's quick start works on a fresh Debian only if its one install line brings what
both commands need: the same packages .ci/run installs, and every package the noxfile's tests
session checks for before it runs anything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# nox and the clone itself need these; no test command checks for them
BOOTSTRAP = {"git", "python3-venv"}


def readme_install_line() -> set[str]:
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start") :]
    block = quick[quick.index("```sh") : quick.index("```", quick.index("```sh") + 5)]
    (line,) = [ln for ln in block.splitlines() if "apt-get install" in ln]
    words = line.split("apt-get install", 1)[1].split("#", 1)[0].split()
    return {w for w in words if not w.startswith("-")}


def ci_packages() -> set[str]:
    text = (ROOT / ".ci" / "run").read_text()
    found = re.search(r"^packages=\(([^)]*)\)$", text, re.M)
    assert found, ".ci/run has no packages=(...) line"
    return set(found.group(1).split())


def noxfile_packages() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    packages: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in {"UNIT_TOOLS", "E2E_TOOLS"} for t in node.targets
        ):
            packages |= set(ast.literal_eval(node.value).values())
    assert packages, "noxfile.py names no UNIT_TOOLS/E2E_TOOLS"
    return packages


def test_one_install_line_serves_both_commands() -> None:
    readme = readme_install_line()
    assert readme == ci_packages()
    assert noxfile_packages() | BOOTSTRAP == readme


def test_the_quick_start_starts_from_the_clone() -> None:
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start") :]
    block = quick[quick.index("```sh") :].splitlines()
    assert block[1].startswith("git clone ") and "&& cd " in block[1]
