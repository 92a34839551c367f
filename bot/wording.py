"""Counts in words people read: "1 chunk", "3 chunks", "1 URL" (the CLI and Slack say them)."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for exactly one; `plural` for irregular nouns."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
