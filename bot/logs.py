"""Logging for `avatarbot serve`: text or JSON lines (LOG_FORMAT), secrets never printed.

A filter on the root handler applies the one redaction rule (`bot.redaction.redact`: every
configured secret, credential-shaped values, credential fields) to the message and to
tracebacks, whichever library logged it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from bot.redaction import RedactingFilter


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus error_id/kind if set."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("error_id", "kind"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_text:
            out["traceback"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def configure(
    fmt: str, level: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Settings' secrets are already registered with `bot.redaction` when Settings is built;
    `secrets` adds any others."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(
        JsonLines()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
