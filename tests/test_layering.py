"""`knowledge` is a library of its own: it must import and work without `bot`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_knowledge_never_imports_bot() -> None:
    offenders = []
    for path in (ROOT / "knowledge").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n == "bot" or n.startswith("bot.")]
    assert offenders == []


def test_knowledge_imports_without_slack_or_heygen_code() -> None:
    code = (
        "import sys, knowledge, knowledge.models, knowledge.config\n"
        "bad = [m for m in sys.modules if m == 'bot' or m.startswith(('bot.', 'slack_bolt'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_the_public_api_resolves_and_answering_loads_only_when_asked_for() -> None:
    code = (
        "import sys, knowledge\n"
        "assert 'knowledge.answering.answer' not in sys.modules\n"
        "from knowledge import Answerer, Answer, AnswerDone, TextDelta, KnowledgeBase\n"
        "assert Answerer.__module__ == 'knowledge.answering.answer'\n"
        "missing = [n for n in knowledge.__all__ if getattr(knowledge, n, None) is None]\n"
        "assert not missing, missing\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
