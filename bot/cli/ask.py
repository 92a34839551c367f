"""`avatarbot ask QUESTION [--datasource NAME] [--json]`: answer from the knowledge base.

Prints the answer as it streams, then the numbered sources; `--json` prints one object with
`answer, sources, grounded, spoken` (plus `status` and `error`). The avatar is the Slack
bot's job: with no avatar key set, one dim line says so and names the variables that turn it
on, the first time only (a marker in the data dir), not after every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli.output import console, fail, failures, settings
from bot.config import Settings, is_set
from knowledge.answering.answer import Answer, Answerer, AnswerStatus, TextDelta
from knowledge.index import KnowledgeBase

EMPTY_KB = (
    "The knowledge base is empty. Load the bundled sample with "
    "`avatarbot knowledge add knowledge/sample` (or run `make demo`), then ask again."
)


AVATAR_NOTE = (
    "avatar skipped: set LIVEAVATAR_API_KEY (live avatar) or HEYGEN_API_KEY "
    "(answer videos) to have an avatar say the answer in Slack"
)
NOTE_MARKER = ".avatar-note-shown"


def avatar_note(s: Settings) -> str | None:
    """The avatar line, when it tells something new: no avatar key set, not said before."""
    if is_set(s.liveavatar_api_key) or is_set(s.heygen_api_key):
        return None  # the Slack bot has its avatar; a text-only CLI is no news
    marker = s.data_dir / NOTE_MARKER
    if marker.exists():
        return None
    with contextlib.suppress(OSError):  # a read-only data dir: say it each time, not never
        marker.touch()
    return AVATAR_NOTE


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    datasource: Annotated[
        list[str] | None,
        typer.Option("--datasource", "-d", help="Search only this datasource (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Answer a question from the knowledge base, with cited sources."""
    if not question.strip():
        fail("the question is empty")
    s = settings()
    with failures():
        kb = KnowledgeBase(s.knowledge_config())
        if kb.is_empty():
            fail(EMPTY_KB)
        answerer = Answerer.from_config(kb, s.answer_config())
        answer = asyncio.run(_answer(answerer, question, datasource, stream=not as_json))
    if as_json:
        print(json.dumps(_as_json(answer), ensure_ascii=False, indent=2))
    else:
        _print_sources(answer)
        note = avatar_note(s)
        if note:
            console.print(f"[dim]{escape(note)}[/]", highlight=False, soft_wrap=True)
    if answer.status is AnswerStatus.LLM_FAILED:
        raise typer.Exit(1)


async def _answer(
    answerer: Answerer, question: str, datasources: list[str] | None, *, stream: bool
) -> Answer:
    async for event in answerer.stream(question, datasources=datasources):
        if isinstance(event, TextDelta):
            if stream:
                console.out(event.text, end="", highlight=False)
                console.file.flush()
        else:
            if stream:
                console.out("")
            return event.answer
    raise AssertionError("the answer stream ended without an answer")  # pragma: no cover


def _print_sources(answer: Answer) -> None:
    if not answer.sources:
        return
    console.print("\n[bold]Sources[/]")
    for src in answer.sources:
        where = escape(src.title) + (f" — {escape(src.section)}" if src.section else "")
        line = f"  [{src.number}] {where}  [dim]{escape(src.link or src.source)}[/]"
        console.print(line, highlight=False, soft_wrap=True)


def _as_json(answer: Answer) -> dict[str, object]:
    return {
        "answer": answer.text,
        "sources": [s.model_dump() for s in answer.sources],
        "grounded": answer.grounded,
        "spoken": answer.spoken,
        "status": answer.status.value,
        "error": answer.error,
    }
