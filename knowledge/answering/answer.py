"""The Answerer: a question (plus thread history) in, a streamed, cited answer out.

    async for event in answerer.stream(question, history, datasources):
        match event:
            case TextDelta(text): ...           # show/speak as it arrives
            case AnswerDone(answer): ...        # final text, sources, grounded, spoken

Two ways to write the answer: a LangChain chat model (streamed with `astream`, `[n]`
citations of numbered passages) when one is given, else the extractive composer. Both end in
the same `Answer`. Nothing relevant (best relevance under `min_relevance`), a model that
refuses, or a model that fails all end in an honest answer with `grounded=False` — the
failure is said, with the sources that were found, never raised past the stream and never
hidden.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from langchain_core.language_models.chat_models import BaseChatModel
from pydantic import BaseModel, Field

from knowledge.answering.composer import Composition, Embed, compose, rank_passages
from knowledge.answering.llm import (
    NO_ANSWER,
    LLMError,
    Turn,
    answer_messages,
    create_chat_model,
    describe_failure,
)
from knowledge.answering.llm import standalone_question as rewrite_question
from knowledge.answering.recent_vectors import RecentVectors
from knowledge.answering.sentences import split_sentences
from knowledge.answering.spoken import spoken_variant
from knowledge.config import AnswerConfig
from knowledge.links import is_web_link
from knowledge.models import Hit
from knowledge.visibility import Asking, visible_hits

log = logging.getLogger(__name__)

NOTHING_FOUND = (
    "I couldn't find anything in the knowledge base that answers this. Try rephrasing the "
    "question with the words your documents use, or ask the knowledge-base admins to add a "
    "document that covers it."
)
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
VISIBILITY_DEPTH = 3  # hits asked for per hit kept when private files are filtered out
MODEL_POOL_DEPTH = 2  # the model's passages are chosen from 2 x top_k retrieved


class Retriever(Protocol):
    """What the Answerer needs from a knowledge base (`KnowledgeBase` fits)."""

    async def asearch(
        self, query: str, k: int = 5, datasources: Sequence[str] | None = None
    ) -> list[Hit]: ...


class AnswerStatus(StrEnum):
    ANSWERED = "answered"
    NOTHING_FOUND = "nothing_found"  # no passage reached the relevance threshold
    LLM_REFUSED = "llm_refused"  # the model said the passages do not answer it
    LLM_FAILED = "llm_failed"  # HTTP error, broken stream, timeout


class Source(BaseModel):
    """A cited passage; `number` is the `[n]` used in the answer text."""

    number: int
    title: str
    section: str = ""
    link: str = Field(
        default="",
        description="A URL a person can open (web page + anchor, Slack permalink, the "
        "datasource's base URL for files), or '' (show the title alone). Never a path.",
    )
    source: str = Field(default="", description="The document's source (path, URL, name).")
    datasource: str = ""
    score: float
    relevance: float


class Answer(BaseModel):
    question: str
    standalone_question: str = Field(description="What was searched (rewritten follow-ups).")
    text: str
    sources: list[Source]
    grounded: bool = Field(description="True when the text is built from cited passages.")
    spoken: str = Field(description="Plain speech for the avatar, cut to the time limit.")
    status: AnswerStatus
    error: str | None = Field(default=None, description="Why the language model failed.")


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class AnswerDone:
    answer: Answer


AnswerEvent = TextDelta | AnswerDone


def _source(number: int, hit: Hit) -> Source:
    c = hit.chunk
    return Source(
        number=number,
        title=c.title,
        section=c.section,
        link=c.link if is_web_link(c.link) else "",
        source=c.source,
        datasource=c.datasource,
        score=hit.score,
        relevance=hit.relevance,
    )


def cited_numbers(text: str, limit: int) -> list[int]:
    """The distinct `[n]` numbers in `text` that refer to one of `limit` passages."""
    found: list[int] = []
    for group in _CITATION.findall(text):
        for part in group.split(","):
            n = int(part)
            if 1 <= n <= limit and n not in found:
                found.append(n)
    return sorted(found)


def drop_unknown_citations(text: str, limit: int) -> str:
    """Remove `[n]` marks that point at no passage (a model may invent them)."""

    def keep(m: re.Match[str]) -> str:
        nums = [p.strip() for p in m.group(1).split(",") if 1 <= int(p) <= limit]
        return f" [{', '.join(nums)}]" if nums else ""

    return re.sub(r"\s?" + _CITATION.pattern, keep, text)


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        *,
        chat_model: BaseChatModel | None = None,
        min_relevance: float = 0.2,
        top_k: int = 5,
        spoken_max_seconds: float = 60.0,
        llm_timeout_seconds: float = 60.0,
        embed: Embed | None = None,
    ) -> None:
        self.retriever = retriever
        # The retriever's embedding, to choose sentences (and passages for the model) by
        # meaning as well as by shared words; None: by shared words alone.
        self.embed = embed
        self.chat_model = chat_model
        self.min_relevance = min_relevance
        self.top_k = top_k
        self.spoken_max_seconds = spoken_max_seconds
        self.llm_timeout = llm_timeout_seconds

    @classmethod
    def from_config(cls, retriever: Retriever, config: AnswerConfig) -> Answerer:
        """The Answerer `config` describes; LLMError when its model cannot be created."""
        return cls(
            retriever,
            chat_model=create_chat_model(config.llm) if config.llm else None,
            min_relevance=config.min_relevance,
            spoken_max_seconds=config.spoken_max_seconds,
            embed=_embedding_of(retriever),
        )

    async def warm(self) -> None:
        """Load what the first answer would otherwise wait for: the embedding model, the
        search indexes, the composer. A failure is only logged: the questions that follow
        report it to their askers, in words."""
        try:
            hits = await self.retrieve("how do I get started?")
            if self.chat_model is None:
                await asyncio.to_thread(compose, "how do I get started?", hits, embed=self.embed)
            elif self.embed is not None:
                await asyncio.to_thread(self.embed, ["how do I get started?"])
        except Exception as exc:
            log.warning("warm-up failed (%s): the first question will load it", exc)

    async def retrieve(
        self,
        query: str,
        datasources: Sequence[str] | None = None,
        *,
        depth: int = 1,
        asking: Asking | None = None,
    ) -> list[Hit]:
        """The passages an answer to `query` is written from: the top `depth` x `top_k` hits
        that reach the relevance threshold (and, given `asking`, may answer there)."""
        k = self.top_k * depth
        if asking is None:
            hits = await self.retriever.asearch(query, k=k, datasources=datasources)
        else:
            found = await self.retriever.asearch(query, k=k, datasources=asking.datasources)
            hits = visible_hits(found, asking)
            if len(hits) < len(found):
                # Other conversations' private files took places: look deeper, once.
                deeper = await self.retriever.asearch(
                    query, k=k * VISIBILITY_DEPTH, datasources=asking.datasources
                )
                hits = visible_hits(deeper, asking)[:k]
        return [h for h in hits if h.relevance >= self.min_relevance]

    def _model_passages(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The `top_k` passages the sentence selection ranks best (those holding the most
        relevant sentences), in retrieval order; the rest by retrieval rank if too few."""
        if len(hits) <= self.top_k:
            return hits
        ranked = rank_passages(query, hits, self.embed)
        ranked += [i for i in range(len(hits)) if i not in ranked]
        return [hits[i] for i in sorted(ranked[: self.top_k])]

    async def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        datasources: Sequence[str] | None = None,
        *,
        asking: Asking | None = None,
    ) -> Answer:
        """The whole answer at once (the stream, drained)."""
        async for event in self.stream(question, history, datasources, asking=asking):
            if isinstance(event, AnswerDone):
                return event.answer
        raise AssertionError("stream ended without an answer")  # pragma: no cover

    async def stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        datasources: Sequence[str] | None = None,
        *,
        asking: Asking | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        """`asking` (where the question is asked) applies `knowledge.visibility`; it
        replaces `datasources` (its bound datasources are the filter)."""
        question = question.strip()
        query, rewrite_error = question, None
        if history and self.chat_model is not None:
            try:
                query = await rewrite_question(self.chat_model, question, history, self.llm_timeout)
            except LLMError as exc:
                rewrite_error = exc
                query = _with_last_user_turn(question, history)
        elif history:
            # No model to rewrite with: the previous question keeps the search on topic.
            query = _with_last_user_turn(question, history)
        # The model path reads a deeper pool: the selection picks its passages from it.
        depth = 1 if self.chat_model is None else MODEL_POOL_DEPTH
        relevant = await self.retrieve(query, datasources, depth=depth, asking=asking)
        final = _Finisher(question, query, self.spoken_max_seconds)
        if not relevant:
            yield TextDelta(NOTHING_FOUND)
            yield AnswerDone(await final.done(NOTHING_FOUND, AnswerStatus.NOTHING_FOUND, []))
        elif rewrite_error is not None:
            text = _failure_text(rewrite_error, partial="")
            yield TextDelta(text)
            sources = [_source(i, h) for i, h in enumerate(relevant[: self.top_k], 1)]
            yield AnswerDone(
                await final.done(text, AnswerStatus.LLM_FAILED, sources, error=rewrite_error.reason)
            )
        elif self.chat_model is None:
            async for event in self._extractive(query, relevant, final):
                yield event
        else:
            async for event in self._generate(query, relevant, final):
                yield event

    async def _extractive(
        self, query: str, hits: list[Hit], final: _Finisher
    ) -> AsyncIterator[AnswerEvent]:
        # Scoring and splitting sentences is CPU work: all of it off the loop, in one go.
        composition, sentences = await asyncio.to_thread(self._compose, query, hits)
        if not composition.text:
            yield TextDelta(NOTHING_FOUND)
            yield AnswerDone(await final.done(NOTHING_FOUND, AnswerStatus.NOTHING_FOUND, []))
            return
        # Same contract as the streamed model: the text arrives sentence by sentence.
        for i, sentence in enumerate(sentences):
            yield TextDelta(sentence if i == 0 else " " + sentence)
        sources = [_source(n, hits[i]) for n, i in enumerate(composition.cited, 1)]
        yield AnswerDone(await final.done(composition.text, AnswerStatus.ANSWERED, sources))

    def _compose(self, query: str, hits: list[Hit]) -> tuple[Composition, list[str]]:
        composition = compose(query, hits, embed=self.embed)
        return composition, split_sentences(composition.text) if composition.text else []

    async def _generate(
        self, query: str, hits: list[Hit], final: _Finisher
    ) -> AsyncIterator[AnswerEvent]:
        assert self.chat_model is not None
        hits = await asyncio.to_thread(self._model_passages, query, hits)
        received = ""  # everything the model sent
        start: int | None = None  # where the shown text begins; None while held back
        error: LLMError | None = None
        chunks = self.chat_model.astream(answer_messages(query, hits)).__aiter__()
        try:
            while True:
                try:
                    # Bounds the wait for the first token and every gap after it.
                    async with asyncio.timeout(self.llm_timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                piece = chunk.text if isinstance(chunk.text, str) else ""
                if not piece:
                    continue
                before = len(received)
                received += piece
                if start is None:
                    if NO_ANSWER.startswith(received.strip()):
                        continue  # could still be the NO_ANSWER marker: hold it back
                    start = len(received) - len(received.lstrip())
                    before = start
                yield TextDelta(received[before:])
        except Exception as exc:  # any provider failure ends in words, never a crash
            error = describe_failure(exc)
            log.warning("language model failed: %s", error.reason)
        finally:
            await _aclose(chunks)

        shown = received[start:] if start is not None else ""
        every_source = [_source(i, h) for i, h in enumerate(hits, 1)]
        if error is not None:
            notice = _failure_text(error, partial=shown)
            yield TextDelta(("\n\n" if shown else "") + notice)
            text = (shown.rstrip() + "\n\n" + notice) if shown else notice
            yield AnswerDone(
                await final.done(text, AnswerStatus.LLM_FAILED, every_source, error=error.reason)
            )
            return
        if not shown:
            # The marker, an empty reply or a structured refusal: no answer in the passages.
            if received.strip() == NO_ANSWER:
                text, reason = NOTHING_FOUND, None
            else:
                reason = "the language model returned no answer"
                text = _failure_text(LLMError(reason, refused=True), partial="")
            yield TextDelta(text)
            yield AnswerDone(
                await final.done(text, AnswerStatus.LLM_REFUSED, every_source, error=reason)
            )
            return
        text = drop_unknown_citations(shown.strip(), len(hits))
        numbers = cited_numbers(text, len(hits))
        # A model that cites nothing still answered from these passages, but unverifiably.
        sources = [s for s in every_source if s.number in numbers] or every_source
        yield AnswerDone(
            await final.done(text, AnswerStatus.ANSWERED, sources, grounded=bool(numbers))
        )


@dataclass(frozen=True)
class _Finisher:
    """Builds the final Answer for one question: the parts every path shares."""

    question: str
    query: str
    spoken_max_seconds: float

    def __call__(
        self,
        text: str,
        status: AnswerStatus,
        sources: list[Source],
        *,
        grounded: bool = True,
        error: str | None = None,
    ) -> Answer:
        return Answer(
            question=self.question,
            standalone_question=self.query,
            text=text,
            sources=sources,
            grounded=grounded and status is AnswerStatus.ANSWERED,
            spoken=spoken_variant(text, self.spoken_max_seconds),
            status=status,
            error=error,
        )

    async def done(self, *args: Any, **kw: Any) -> Answer:
        """The Answer, built off the event loop (the spoken variant segments sentences)."""
        return await asyncio.to_thread(self, *args, **kw)


def _embedding_of(retriever: Retriever) -> Embed | None:
    """The retriever's document embedding when it has one (`KnowledgeBase.embedder`)."""
    embedder = getattr(retriever, "embedder", None)
    return RecentVectors(embedder) if embedder is not None else None


def _failure_text(error: LLMError, partial: str) -> str:
    if partial:
        return f"_The answer stopped early: {error.reason}. It may be incomplete._"
    return (
        f"Sorry, I couldn't write an answer: {error.reason}. "
        "The sources below matched your question."
    )


def _with_last_user_turn(question: str, history: Sequence[Turn]) -> str:
    earlier = [text for role, text in history if role == "user" and text.strip() != question]
    return f"{earlier[-1]} {question}" if earlier else question


async def _aclose(iterator: object) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # closing a broken stream may fail again; already reported
            log.debug("closing the model stream failed", exc_info=True)
