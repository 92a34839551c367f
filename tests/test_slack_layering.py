"""Imports point down: `bot.avatar`, `bot.web`, `bot.store` and `bot.heygen` never import the
Slack surface (delivery reaches Slack through the DeliverySink it implements)."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"


def test_lower_layers_never_import_slack_or_serve() -> None:
    offenders = []
    for package in ("avatar", "web", "store", "heygen"):
        for path in (BOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(BOT)}: {n}"
                    for n in names
                    if n.startswith(("bot.slack", "bot.serve", "slack_bolt", "slack_sdk"))
                ]
    assert offenders == []
