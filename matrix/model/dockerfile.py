"""A small Dockerfile reader for the contract's checks (matrix/model/contract.py): logical
instructions (continuation lines joined, comments dropped) grouped into stages, each
instruction with the line it starts on, so that a broken rule is named at file:line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

INSTALL_LINE = re.compile(r"^(?:ROOT=\S+\s+)?(fips-matrix-build\.sh install)(?:\s*&&.*)?$")


@dataclass(frozen=True)
class Instruction:
    line: int  # its first physical line
    keyword: str  # upper case
    args: str  # continuation lines joined with single spaces

    def text(self) -> str:
        """The instruction with its whitespace collapsed, for comparisons."""
        return " ".join([self.keyword, *self.args.split()])


@dataclass(frozen=True)
class Stage:
    name: str  # lower case, as Docker compares stage names
    base: str
    instructions: tuple[Instruction, ...]
    line: int = 1  # its FROM's

    def find(self, keyword: str, pattern: str = "") -> list[int]:
        """Indexes of the instructions with that keyword whose arguments match pattern."""
        return [
            i
            for i, ins in enumerate(self.instructions)
            if ins.keyword == keyword and re.search(pattern, " ".join(ins.args.split()))
        ]


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    preamble: tuple[Instruction, ...]  # before the first FROM
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


class Unreadable(ValueError):
    """The file cannot be read as a Dockerfile; `line` says where."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: backslash continuations joined, comment and blank lines dropped
    (Docker drops them inside a continuation too)."""
    result: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            logical = " ".join(p for p in parts if p)
            keyword, _, args = logical.partition(" ")
            result.append(Instruction(start, keyword.upper(), args.strip()))
            parts = []
    if parts:
        raise Unreadable(start, "the file ends inside a continued instruction")
    return result


def parse(path: Path) -> Dockerfile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreadable(1, f"cannot read it: {exc}") from exc
    preamble: list[Instruction] = []
    heads: list[tuple[str, str, int]] = []
    bodies: list[list[Instruction]] = []
    for ins in instructions(text):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            heads.append((name.lower(), words[0] if words else "", ins.line))
            bodies.append([])
        elif bodies:
            bodies[-1].append(ins)
        else:
            preamble.append(ins)
    stages = tuple(
        Stage(name, base, tuple(body), line)
        for (name, base, line), body in zip(heads, bodies, strict=True)
    )
    return Dockerfile(path, tuple(preamble), stages)


def leading_flags(args: str) -> list[str]:
    """The --flag names an instruction starts with (`COPY --from=link ...` gives --from)."""
    flags = []
    for word in args.split():
        if not word.startswith("--"):
            break
        flags.append(word.split("=", 1)[0])
    return flags


def env_keys(args: str) -> list[str]:
    """The variables an ENV instruction sets (`ENV K=V ...` or the old `ENV K V`)."""
    if "=" not in args.split()[0]:
        return [args.split()[0]]
    return re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", args)


def normalised(stage: Stage) -> list[str]:
    """A compile or link stage as compared across Dockerfiles: the install line may put the
    files under a ROOT of its own and run commands after the install (musl copies its loader
    there); everything else must be written the same."""
    result = []
    for ins in stage.instructions:
        text = ins.text()
        if ins.keyword == "RUN":
            match = INSTALL_LINE.match(" ".join(ins.args.split()))
            if match:
                text = f"RUN {match.group(1)}"
        result.append(text)
    return result
