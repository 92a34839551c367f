"""Failures in user words for the Slack surface: `bot.failures` says them, this logs them here.

A person sees the sentence and a short error id; the same id is in the `bot.slack` log line
with the technical detail. A network error inside the Slack client is "Slack could not be
reached", inside a HeyGen client "HeyGen could not be reached" (see `bot.failures`).
"""

from __future__ import annotations

import logging

from bot.failures import Failure, FailureKind, new_error_id, report

# Re-exported: listeners import the Slack surface's failure words from here.
__all__ = ["Failure", "FailureKind", "failure", "new_error_id"]

log = logging.getLogger("bot.slack")


def failure(exc: BaseException, doing: str) -> Failure:
    """Turn `exc` into user words and log it once with the same id (`doing`: what failed)."""
    return report(exc, doing, log)
