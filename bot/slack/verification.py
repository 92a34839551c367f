"""Slack request signatures, checked before anything else looks at a request.

https://docs.slack.dev/authentication/verifying-requests-from-slack: `X-Slack-Signature` is
`v0=` + hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` under the signing
secret; requests older than five minutes are replays.

This runs in front of bolt (whose own check stays on behind it) because bolt parses the body
before verifying it (a malformed body was a 500 with a traceback) and logs every rejected body
at INFO (a flood of unsigned megabytes became regex work for the log filter on the event
loop). Here the headers are checked first, cheaply, without reading the body; the body is
read and hashed only when the headers are well formed and fresh, off the loop when it is
large, and compared in constant time. Nothing about a refused request is logged but its size.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

REPLAY_WINDOW_SECONDS = 60 * 5
# hashlib releases the GIL for large inputs: hash big bodies in a thread, small ones inline.
_HASH_OFF_LOOP_BYTES = 64 * 1024
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def headers_plausible(
    headers: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> bool:
    """The signature headers are present, ASCII, well formed and fresh (no body needed)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    return abs(clock() - int(timestamp)) <= REPLAY_WINDOW_SECONDS


def _expected(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


async def signature_valid(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when `body` was signed with `secret` (call after `headers_plausible`)."""
    if not secret:
        return False
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    if len(body) > _HASH_OFF_LOOP_BYTES:
        expected = await asyncio.to_thread(_expected, secret.encode(), timestamp, body)
    else:
        expected = _expected(secret.encode(), timestamp, body)
    return hmac.compare_digest(expected, headers.get("X-Slack-Signature", ""))
