"""The one escaping rule for Slack, and Markdown (what the Answerer writes) to mrkdwn.

Everything that reaches Slack from a document, a model or a user passes through here,
whatever the field (text, mrkdwn, `markdown_text` and its streamed chunks, Block Kit):
- `escape`: `&`, `<`, `>` as entities (https://docs.slack.dev/messaging/formatting-message-text
  #escaping), so no `<!channel>`, `<!here>`, `<!subteam^…>`, `<@U…>` or `<url|label>` can be
  formed from outside text; the bare words `@channel`, `@here`, `@everyone` get a word joiner
  after the `@`, so no client or `link_names` setting turns them into a broadcast;
- `safe_url`: a link target is an absolute http(s) URL with a host and nothing that could
  close or split Slack's `<url|label>` (no `<`, `>`, `|`, quotes, spaces, control characters),
  returned with `&` escaped; anything else is not linked;
- `link(url, label)`: `<url|label>` when the URL passes, otherwise the label as text;
- `mention(user_id)`: the one way our own code mentions someone (the asker), built from an id
  Slack gave us, never from text;
- `safe_markdown`: the rule for `markdown_text` (streamed answers): escaped, and Markdown links
  whose target fails `safe_url` reduced to their label.

Slack's mrkdwn differs from Markdown: `*bold*`, `_italic_`, `~strike~`, `<url|label>` links, no
headings and no tables. Headings become bold lines, lists get bullets, tables become an
aligned monospace block (the one table form every Slack client renders).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SECTION_LIMIT = 3000  # characters in one section block's text
_FENCE = re.compile(r"^\s*```")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_BARE_URL = re.compile(r"(?<![<|(])\bhttps?://[^\s<>()]+[^\s<>().,;:!?'\"]")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_URL_UNSAFE = re.compile(r"[<>|\"'`\\\s\x00-\x1f\x7f-\x9f]")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|[0-9a-f:.]+")  # name or IP
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,20}")  # Slack user ids: U or W, then letters and digits
MAX_URL = 2000


def escape(text: str) -> str:
    """Outside text as Slack text: control characters as entities, broadcasts broken."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + _WORD_JOINER, text)


def safe_url(url: str) -> str | None:
    """`url` ready for `<url|label>` if it is an absolute http(s) URL that cannot break out
    of the link syntax, else None."""
    if not url or len(url) > MAX_URL or _URL_UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # the port raises ValueError when malformed
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or not _HOST.fullmatch(host):
        return None
    if parts.username is not None:  # https://trusted.example@evil.example/ reads as trusted
        return None
    return url.replace("&", "&amp;")


def link(url: str | None, label: str) -> str:
    """A mrkdwn link to `url` labelled `label` (escaped), or the label alone."""
    target = safe_url(url or "")
    text = escape(label.replace("|", "/"))
    return f"<{target}|{text}>" if target else text


def mention(user_id: str) -> str:
    """`<@U…>` for a user id Slack gave us; anything that is not an id is escaped text."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else escape(user_id)


def safe_markdown(text: str) -> str:
    """Outside text for `markdown_text`: escaped; links only to `safe_url` targets."""

    def keep(m: re.Match[str]) -> str:
        return f"[{m.group(1)}]({m.group(2)})" if safe_url(m.group(2)) else m.group(1)

    return escape(_LINK.sub(keep, text))


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

    def linked(m: re.Match[str]) -> str:
        target = safe_url(m.group(2))
        return keep(f"<{target}|{_label(m.group(1))}>") if target else keep(_label(m.group(1)))

    def bare(m: re.Match[str]) -> str:
        target = safe_url(m.group(0))
        return keep(f"<{target}>") if target else m.group(0)

    text = _LINK.sub(linked, text)
    text = _BARE_URL.sub(bare, text)
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
