"""The README's generated prose is wrapped for a screen (matrix/report/wrap.py) so that Markdown
renders it as before: the same words in the same blocks, tables and code left whole."""

from __future__ import annotations

from markdown_it import MarkdownIt

from matrix.report.wrap import wrap_markdown

WORDS = " ".join(f"word{i}" for i in range(60))


def html(lines: list[str]) -> str:
    return MarkdownIt("commonmark").enable("table").render("\n".join(lines))


def test_prose_bullets_and_quotes_wrap_and_render_the_same() -> None:
    text = [WORDS, "", f"- {WORDS}", f"- `code span` {WORDS}", "", f"> Note: {WORDS}."]
    wrapped = wrap_markdown(text, width=40)
    assert all(len(line) <= 40 for line in wrapped)
    assert len(wrapped) > len(text)
    assert html(wrapped).split() == html(text).split()  # the same words in the same blocks
    bullet = next(i for i, line in enumerate(wrapped) if line.startswith("- word0"))
    assert wrapped[bullet + 1].startswith("  word")  # a continuation, not a new item


def test_tables_code_and_short_lines_stay_as_they_are() -> None:
    table = "| a | b |\n|---|---|\n| " + "x" * 80 + " | y |"
    fence = ["```text", "z" * 120, "```"]
    lines = ["short", table, *fence, "w" * 150]
    assert wrap_markdown(lines, width=40) == ["short", *table.split("\n"), *fence, "w" * 150]


def test_no_line_is_made_to_open_a_list_heading_or_quote() -> None:
    # "- ", "1." or "#" at the start of a wrapped line would render as a new block
    for opener in ("-", "+", "*", "1.", "2)", "#", ">", "|"):
        text = f"x {'a' * 35} {opener} b c d"  # the opener would start line two
        wrapped = wrap_markdown([f"- {text}"], width=40)
        assert all(not line.strip().startswith(f"{opener} ") for line in wrapped[1:]), wrapped
        assert html(wrapped).split() == html([f"- {text}"]).split()
