"""Slack message markup in, plain question text out (pure; no I/O).

Slack sends user text with its own markup (https://docs.slack.dev/messaging/formatting-message-text):
`<@U123>` user mentions, `<#C123|general>` channel links, `<https://x|label>` links,
`<!here>` / `<!subteam^S1|@team>` / `<!date^…|fallback>` special mentions, and `&amp;`
`&lt;` `&gt;` escapes. Retrieval wants words, so every construct becomes its readable part
(or nothing, for the bot's own mention and broadcast words) before a question is searched.

`clean_markup` never raises and never leaves markup: replacements never contain `<` or `>`,
and passes repeat until no construct is left (each pass removes at least one `<`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

# One construct: `<body>` or `<body|label>`, the body a mention (`@`, `#`, `!`) or a URL
# with a scheme; neither part may hold another `<` or `>`. "x<3 and y>2" is not markup.
MARKUP = re.compile(r"<([@#!][^<>|]*|[A-Za-z][A-Za-z0-9+.\-]*:[^<>|]*)(?:\|([^<>]*))?>")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# Slack's broadcast words: they address people, they are not part of the question.
_BROADCASTS = {"here", "channel", "everyone"}


def _plain(text: str) -> str:
    return text.replace("<", "").replace(">", "").strip()


def _replace(match: re.Match[str], users: Mapping[str, str], bot_user_id: str | None) -> str:
    body, label = match.group(1).strip(), match.group(2)
    label = _plain(label) if label is not None else ""
    if body.startswith("@"):
        user = body[1:]
        if bot_user_id and user == bot_user_id:
            return ""
        name = label or users.get(user, "")
        return f"@{_plain(name).lstrip('@')}" if name else ""
    if body.startswith("#"):
        return f"#{label.lstrip('#')}" if label else ""
    if body.startswith("!"):
        word = body[1:].split("^", 1)[0]
        if word in _BROADCASTS:
            return ""
        return label  # subteam handle, date fallback; nothing when Slack gave none
    # A link: the label reads better; the address when there is none.
    return label or _plain(body.removeprefix("mailto:"))


def clean_markup(
    text: str, *, users: Mapping[str, str] | None = None, bot_user_id: str | None = None
) -> str:
    """`text` with Slack markup resolved (`users`: id -> display name) or removed."""
    users = users or {}
    out = text
    # Markup first, then entities: `&lt;@U1&gt;` typed by a person is text, and any construct
    # the unescaping forms is removed by the next passes.
    out = MARKUP.sub(lambda m: _replace(m, users, bot_user_id), out)
    out = html.unescape(out)
    while True:
        again = MARKUP.sub(lambda m: _replace(m, users, bot_user_id), out)
        if again == out:
            break
        out = again
    out = _SPACES.sub(" ", out)
    out = _BLANK_LINES.sub("\n\n", out)
    return "\n".join(line.strip() for line in out.split("\n")).strip()


def mentioned_users(text: str) -> list[str]:
    """User ids mentioned in `text` (to resolve their names before cleaning)."""
    found: list[str] = []
    for m in MARKUP.finditer(text):
        body = m.group(1).strip()
        if body.startswith("@") and m.group(2) is None and body[1:] not in found:
            found.append(body[1:])
    return found


def has_markup(text: str) -> bool:
    return MARKUP.search(text) is not None
