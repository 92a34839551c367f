"""Markdown clean-up shared by every format: one heading syntax (ATX), tidy blank lines."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX_H1 = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$")
_ANCHOR_SUFFIX = re.compile(r"\s*\{#[^}\s]+\}\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
# Lines that cannot be a setext heading's text: lists, quotes, tables, headings, rules.
_NOT_HEADING_TEXT = re.compile(r"^\s{0,3}([-*+>|#]|\d+[.)]\s)|^\s{4,}")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(---|\.\.\.)[ \t]*(\n|\Z)", re.S)
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.M)


def tidy(text: str) -> str:
    """Unix newlines, no trailing spaces, at most one blank line in a row, no outer blanks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def split_front_matter(text: str) -> tuple[str, str | None]:
    """Remove a leading YAML front-matter block; return (body, its title if any)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, None
    title_match = _FRONT_MATTER_TITLE.search(match.group(1))
    title = title_match.group(1).strip("'\"") if title_match else None
    return text[match.end() :], title or None


def setext_to_atx(text: str) -> str:
    """`Title` over `=====` -> `# Title` (and `---` -> `##`): the splitter only knows `#`."""
    lines = text.split("\n")
    out: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        underline = None if in_fence else _SETEXT.match(line)
        previous = out[-1] if out else ""
        is_paragraph_line = (
            previous.strip()
            and not _NOT_HEADING_TEXT.match(previous)
            and (len(out) < 2 or not out[-2].strip())  # a one-line paragraph only
        )
        if underline and is_paragraph_line:
            level = "#" if underline.group(1).startswith("=") else "##"
            out[-1] = f"{level} {previous.strip()}"
            continue
        out.append(line)
    return "\n".join(out)


def first_h1(text: str) -> str | None:
    """The text of the first `# Heading` outside code fences, without an `{#anchor}`."""
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX_H1.match(line)
        if match:
            title = _ANCHOR_SUFFIX.sub("", match.group(1)).strip()
            if title:
                return title
    return None
