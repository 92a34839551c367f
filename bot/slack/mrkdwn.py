"""Markdown (what the Answerer writes) to Slack mrkdwn, and splitting under block limits.

Slack's mrkdwn (https://docs.slack.dev/messaging/formatting-message-text) differs from
Markdown: `*bold*`, `_italic_`, `~strike~`, `<url|label>` links, no headings and no tables.
Headings become bold lines, lists get bullets, tables become an aligned monospace block (the
one table form every Slack client renders), and `&`, `<`, `>` are escaped outside links.
"""

from __future__ import annotations

import re

SECTION_LIMIT = 3000  # characters in one section block's text
_FENCE = re.compile(r"^\s*```")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+|mailto:[^)\s]+)\)")
_BARE_URL = re.compile(r"(?<![<|(])\bhttps?://[^\s<>()]+[^\s<>().,;:!?'\"]")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def escape(text: str) -> str:
    """Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """One line of Markdown prose as mrkdwn (code spans kept verbatim, but escaped)."""
    out: list[str] = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_prose(text[pos : m.start()]))
        out.append(escape(m.group(0)))
        pos = m.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


def _prose(text: str) -> str:
    links: list[str] = []

    def keep(mrkdwn: str) -> str:
        links.append(mrkdwn)
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(lambda m: keep(f"<{m.group(2)}|{_label(m.group(1))}>"), text)
    text = _BARE_URL.sub(lambda m: keep(f"<{m.group(0)}>"), text)
    text = escape(text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _BOLD.sub(r"*\2*", text)
    text = _STRIKE.sub(r"~\1~", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def _label(text: str) -> str:
    return escape(text.replace("|", "/")).replace("*", "")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(rows: list[str]) -> list[str]:
    cells = [_cells(r) for r in rows if not _TABLE_RULE.match(r)]
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    sizes = [max(len(r[i]) for r in cells) for i in range(width)]
    lines = ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(r)).rstrip() for r in cells]
    return ["```", *(escape(line) for line in lines), "```"]


def _is_table_start(lines: list[str], i: int) -> bool:
    return (
        "|" in lines[i]
        and i + 1 < len(lines)
        and _TABLE_RULE.match(lines[i + 1]) is not None
        and "|" in lines[i + 1]
    )


def to_mrkdwn(markdown: str) -> str:
    """Convert the answer's Markdown to mrkdwn."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_code = not in_code
            out.append("```")
        elif in_code:
            out.append(escape(line))
        elif _is_table_start(lines, i):
            end = i
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            out.extend(_table(lines[i:end]))
            i = end
            continue
        elif m := _HEADING.match(line):
            out.append(f"*{_inline(m.group(1)).replace('*', '')}*")
        elif m := _BULLET.match(line):
            out.append(f"{m.group(1)}• {_inline(m.group(2))}")
        else:
            out.append(_inline(line))
        i += 1
    if in_code:
        out.append("```")  # an unclosed fence would swallow the sources
    return "\n".join(out).strip()


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at blank lines, then lines, then
    spaces; a code block cut in two is closed and reopened so both halves render."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit - 4]  # room to close a code fence
        cut = max(window.rfind("\n\n"), 0) or max(window.rfind("\n"), 0)
        if cut < limit // 3:
            cut = window.rfind(" ")
        if cut < limit // 3:
            cut = len(window)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head.count("```") % 2:
            head += "\n```"
            rest = "```\n" + rest
        pieces.append(head)
    if rest:
        pieces.append(rest)
    return pieces
