"""The one redaction rule for every path that turns a response, error or log line into text.

Three layers, always all:
- values we know are secret (API keys, webhook secrets, bearer tokens): registered once by
  whoever holds them (`register_secrets`: the HTTP core, settings) or passed per call, and
  replaced wherever they appear, in any field or free text;
- values we were never told about but that sit under a credential-looking key
  (`"session_token": "…"`, `'secret': '…'`, `api_key=…`): blanked by key name, in JSON,
  Python-repr and `key=value` forms alike, so a token the server minted and echoed back in an
  unexpected shape is still hidden;
- values shaped like credentials (`whsec_…`, `xoxb-…`, `sk-…`, JWTs) wherever they stand.

`redacted_json(payload)` is how a parsed response becomes text (structure first, then the text
rule); `redact(text)` covers text we only have as text. Redact before truncating: a cut can
split a secret so that the rest no longer matches.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
_MIN_SECRET_LEN = 4  # never "redact" an empty or trivially short string (it would mangle text)
_MAX_REGISTERED = 512  # per-session bearer tokens come and go; keep the newest
_MIN_REGISTERED_LEN = 8  # a registered value is replaced everywhere: never a common word

# Key names whose values are credentials: api_key, X-Api-Key, session_token, livekit_client_
# token, access_token, secret, webhook_secret, client_secret, password, Authorization, cookie.
_SECRET_KEY = re.compile(
    r"api[-_]?key|apikey|token|secret|passw(?:or)?d|authori[sz]ation|credential|private[-_]?key"
    r"|cookie",
    re.IGNORECASE,
)
# "key": "value" and 'key': 'value' (JSON and Python repr), any mix of quote styles.
_QUOTED_PAIR = re.compile(
    r"""(?P<head>(?P<q>["'])(?P<key>[^"'\\]{1,80})(?P=q)\s*:\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)
# key=value (query strings, keyword reprs, headers written as text): up to a separator.
_ASSIGNMENT = re.compile(
    r"""(?P<head>\b(?P<key>[A-Za-z][\w-]{0,80})\s*[=:]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:Bearer\s+)?[^\s&,;)'"}\]]+)"""
)

# Values shaped like credentials wherever they stand, even in free text with no key: HeyGen
# webhook secrets, Slack tokens, OpenAI-style keys, JWTs (LiveKit and session tokens).
_TOKEN_SHAPES = re.compile(
    r"\bwhsec_[\w-]{8,}|\bxox[abposre]-[\w-]{8,}|\bxapp-[\w-]{8,}|\bsk-[\w-]{16,}"
    r"|\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"
)

_registered: dict[str, None] = {}  # insertion-ordered set


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember values that must never appear in any error, log line or message."""
    for value in values:
        if value and len(value) >= _MIN_REGISTERED_LEN:
            _registered.pop(value, None)
            _registered[value] = None
    while len(_registered) > _MAX_REGISTERED:
        _registered.pop(next(iter(_registered)))


def is_secret_key(name: str) -> bool:
    """A field or header name whose value is a credential."""
    return bool(_SECRET_KEY.search(name))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every known secret replaced and credential-looking fields blanked."""
    known = {s for s in (*secrets, *_registered) if s and len(s) >= _MIN_SECRET_LEN}
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _TOKEN_SHAPES.sub(REDACTED, text)
    text = _QUOTED_PAIR.sub(_blank_quoted, text)
    return _ASSIGNMENT.sub(_blank_assignment, text)


def redacted_json(payload: Any, secrets: Iterable[str | None] = (), *, limit: int = 2000) -> str:
    """A parsed response as JSON text, credential fields blanked, secrets replaced, then cut
    to `limit` characters (in that order, so a cut never exposes part of a secret)."""
    try:
        text = json.dumps(_blank_fields(payload), ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # circular or exotic: the text rule still applies
        text = str(payload)
    return redact(text, secrets)[:limit]


def _blank_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and is_secret_key(key) and isinstance(item, str)
            else _blank_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_blank_fields(item) for item in value]
    return value


def _blank_quoted(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]):
        return match[0]
    quote = match["value"][0]
    return f"{match['head']}{quote}{REDACTED}{quote}"


def _blank_assignment(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]) or match["value"].strip("'\"") == REDACTED:
        return match[0]
    return f"{match['head']}{REDACTED}"


# A log line longer than this is cut before the rule runs: logging is synchronous, so on the
# event loop the regexes must only ever see a bounded text (a flood of megabyte bodies once
# stalled every ack). 16 KB is far more than any line we write ourselves.
LOG_LINE_LIMIT = 16 * 1024
_CUT_MARGIN = 1024  # scanned past the cut, so a secret straddling it is still recognised


def redact_bounded(
    text: str, secrets: Iterable[str | None] = (), limit: int = LOG_LINE_LIMIT
) -> str:
    """`redact(text)` for text of any size in bounded time: a longer text is scanned only up
    to `limit` (+ a margin), cut at `limit` after redaction, then back to a word boundary (a
    credential split by the cut is dropped whole), and says how much was left out."""
    if len(text) <= limit:
        return redact(text, secrets)
    head = redact(text[: limit + _CUT_MARGIN], secrets)[:limit]
    head = head[: max(head.rfind(" "), head.rfind("\n"), 0)]
    return f"{head} …[{len(text) - len(head):,} characters not logged]"


class RedactingFilter(logging.Filter):
    """A logging filter that applies `redact` to every record's final message and traceback
    (install it on the handlers of a process that logs responses:
    `handler.addFilter(RedactingFilter())`); `secrets` are redacted besides the registered ones.
    Messages and tracebacks are bounded first (`redact_bounded`)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_bounded(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact_bounded(trace, self.secrets), None
        return True
