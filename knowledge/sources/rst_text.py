"""reStructuredText -> markdown headings, so rst documents get section paths like markdown.

Only the structure the chunker needs is converted: section titles (underlined, or over- and
underlined) become `#` headings, with levels in the order the adornment styles first appear,
as docutils assigns them. Inline ``literals`` become `code`. Everything else is kept as is.
"""

from __future__ import annotations

import re

# rst allows any of these punctuation characters as section adornment.
_ADORNMENT = re.compile(r"""^([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])\1{2,}\s*$""")


def rst_to_markdown(text: str) -> str:
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []  # (char, has overline), in order of first use
    out: list[str] = []
    i = 0
    while i < len(lines):
        heading = _heading_at(lines, i)
        if heading is None:
            out.append(lines[i])
            i += 1
            continue
        title, style, consumed = heading
        if style not in styles:
            styles.append(style)
        level = min(styles.index(style) + 1, 6)
        if out and out[-1].strip():
            out.append("")
        out.extend([f"{'#' * level} {title}", ""])
        i += consumed
    return re.sub(r"``([^`\n]+)``", r"`\1`", "\n".join(out))


def _heading_at(lines: list[str], i: int) -> tuple[str, tuple[str, bool], int] | None:
    """(title, style, lines consumed) if a section title starts at line i."""
    line = lines[i]
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    over = _ADORNMENT.match(line)
    if over and i + 2 < len(lines):
        # Over- and underlined title: the title may be indented (inset) by convention.
        title = lines[i + 1].strip()
        under = _ADORNMENT.match(lines[i + 2])
        if title and under and under.group(1) == over.group(1):
            return title, (over.group(1), True), 3
    under = _ADORNMENT.match(nxt)
    title = line.rstrip()
    previous_blank = i == 0 or not lines[i - 1].strip()
    if (
        under
        and title
        and not title[0].isspace()
        and not _ADORNMENT.match(title)
        and previous_blank
        and len(nxt.rstrip()) >= len(title)
    ):
        return title, (under.group(1), False), 2
    return None
