"""Serve's logging: JSON lines carry the error id users see; secrets never get through."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.slack.failures import failure
from bot.store.base import StoreError

SECRET = "xoxb-1111-2222-abcdefSECRET"


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    logs.configure("json", "INFO", [SECRET, "sk-live-signing-9876"], stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_hold_the_error_id_and_no_secret(configured: io.StringIO) -> None:
    f = failure(StoreError(f"cannot connect with {SECRET}"), "saving an answer")
    logging.getLogger("slack_sdk").info("POST with Authorization: Bearer %s", SECRET)
    logging.getLogger("x").warning("app token xapp-1-A0-123456-abcdef and sk-live-signing-9876")
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    err = configured.getvalue()
    assert SECRET not in err and "sk-live-signing-9876" not in err and "xapp-1-A0" not in err
    records = [json.loads(line) for line in err.splitlines()]
    first = records[0]
    assert first["error_id"] == f.error_id and first["kind"] == "store"
    assert first["level"] == "error" and f.error_id in first["message"]
    assert "[REDACTED]" in records[1]["message"]
    assert "traceback" in records[-1] and "[REDACTED]" in records[-1]["traceback"]
