"""Every link inside the README and docs/*.md reaches something: an `](#anchor)` a heading of
the same file, a `](file.md#anchor)` that file and one of its headings, a relative path a file
of the repository. Anchors are made as GitHub makes them from a heading's text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of `path`'s headings (fenced code skipped): lower case, punctuation
    dropped but `-` and `_`, spaces as `-`; a repeated one gets `-1`, `-2`, ..."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]  # no https:, mailto:


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        where = (page.parent / file).resolve() if file else page
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (where.suffix != ".md" or anchor not in anchors(where)):
            broken.append(f"{target}: no heading with that anchor")
    return broken


def test_anchors_are_githubs_and_a_broken_link_is_named(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Is my image safe to recover?\n\n## Probing an image: `fips-matrix probe`\n\n"
        "## Exit status, output, interruption\n\n## JUnit\n\n### JUnit\n\n"
        "```sh\n# not a heading\n```\n\n"
        "[a](#is-my-image-safe-to-recover) [b](#probing-an-image-fips-matrix-probe) "
        "[c](#exit-status-output-interruption) [d](#junit-1) [e](page.md#junit) "
        "[f](#not-a-heading) [g](gone.md) [h](page.md#nowhere) [i](https://example.org/#x)\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "#not-a-heading: no heading with that anchor",
        "gone.md: no such file",
        "page.md#nowhere: no heading with that anchor",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_link_of_a_page_reaches_a_file_and_heading(page: Path) -> None:
    assert broken_links(page) == [], page.name
