"""`avatarbot ask QUESTION`."""

from __future__ import annotations

import typer


def ask(question: str = typer.Argument(..., help="The question to answer.")) -> None:
    """Answer a question from the knowledge base."""
    raise NotImplementedError
