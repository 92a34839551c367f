"""A question asked in Slack -> a cited answer in its thread (the text flow, plus live).

    await AskService(services).answer(question)

The answer goes to the thread of the message (or the thread it was asked in), streamed, with
the thread's earlier turns as history and the channel's bound datasources. Every failure ends
in a sentence in the thread with an error id; nothing is swallowed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.avatar.delivery import AvatarError, LiveScope
from bot.metrics import ANSWER_SECONDS, ANSWERS
from bot.slack import blocks
from bot.slack.failures import failure
from bot.slack.limits import BUSY, RATE_LIMITED, Busy, Slot
from bot.slack.markup import clean_markup, mentioned_users
from bot.slack.mrkdwn import escape
from bot.slack.places import asking_in
from bot.slack.posting import find_stream_orphan, lost_response, notice_metadata
from bot.slack.services import SlackServices
from bot.slack.streaming import ThreadWriter
from bot.store.base import AnswerRecord
from knowledge.answering.answer import Answer, AnswerDone, AnswerStatus, TextDelta
from knowledge.answering.llm import LLMError, Turn
from knowledge.answering.spoken import spoken_sentences

log = logging.getLogger(__name__)

EMPTY_QUESTION = (
    "Ask me a question about the documents I know, e.g. "
    "`@avatarbot how do I add documents?` — in a DM you can skip the mention."
)
TOO_LONG = (
    "That message is {length:,} characters long; I can take questions of up to {limit:,}. "
    "Please ask the question itself, and share long documents with an admin to index."
)
HISTORY_TURNS = 10
HISTORY_TURN_CHARS = 2000
FINISH_WAIT_SECONDS = 5.0  # an answer's sources and buttons wait at most this long for a burst


@dataclass(frozen=True)
class Question:
    text: str  # as Slack sent it (markup included)
    channel: str
    user: str
    ts: str  # the message holding the question
    thread_ts: str | None = None
    team: str | None = None
    context_channel: str | None = None  # assistant pane: the channel the person looks at

    @property
    def reply_thread(self) -> str:
        return self.thread_ts or self.ts


def answer_record(
    answer: Answer, answer_id: str, question: str, *, channel: str, **fields: Any
) -> AnswerRecord:
    """What the store keeps of an answer (buttons, feedback, sharing find it by id)."""
    return AnswerRecord(
        id=answer_id,
        question=question,
        text=answer.text,
        spoken=answer.spoken,
        sources=[src.model_dump() for src in answer.sources],
        grounded=answer.grounded,
        channel=channel,
        **{"created_at": time.time(), **fields},
    )


class AskService:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

    async def clean(self, text: str) -> str:
        """The question as words, mentions resolved to names (`users.info`, cached)."""
        users = {
            u: await self.s.user_name(u)
            for u in mentioned_users(text)[:10]
            if u != self.s.bot_user_id
        }
        return clean_markup(text, users=users, bot_user_id=self.s.bot_user_id)

    async def say(self, q: Question, text: str, *, error_id: str | None = None) -> None:
        await self.s.client.chat_postMessage(
            channel=q.channel,
            thread_ts=q.reply_thread,
            text=escape(text),
            blocks=blocks.notice_blocks(text, error_id=error_id),
            metadata=notice_metadata(),
        )

    def refusal(self, question: str, user: str) -> str | None:
        """Why a cleaned `question` is not answered (empty, too long, over the user's rate),
        or None; an accepted question counts against the rate."""
        limit = self.s.settings.slack_max_question_chars
        if not question:
            return EMPTY_QUESTION
        if len(question) > limit:
            return TOO_LONG.format(length=len(question), limit=limit)
        if not self.s.limiter.allow(user):
            return RATE_LIMITED.format(limit=self.s.limiter.per_minute)
        return None

    async def answer(self, q: Question, *, admitted: str | None = None) -> str | None:
        """Answer `q` in its thread; returns the answer id, or None when refused, failed or
        nothing was found. `admitted`: the cleaned question, already checked by `refusal`."""
        question = admitted
        if question is None:
            # Every check before any lookup: a flood costs Slack no `users.info` calls. Names
            # only lengthen a mention ("@Ada" for "<@U1>"), so the length is checked without.
            refusal = self.refusal(clean_markup(q.text, bot_user_id=self.s.bot_user_id), q.user)
            if refusal is not None:
                await self.say(q, refusal)
                return None
            question = await self.clean(q.text)
        try:
            async with self.s.gate.slot() as slot:
                return await self._answer(q, question, slot)
        except Busy:
            await self.say(q, BUSY)
            return None
        except Exception as exc:
            f = failure(exc, "answering a question")
            await self.say(q, f.sentence, error_id=f.error_id)
            return None

    async def _answer(self, q: Question, question: str, slot: Slot) -> str:
        started = time.monotonic()
        # "Working…" is shown while the answer is looked up, not before.
        status = asyncio.ensure_future(self._set_status(q, blocks.WORKING_STATUS))
        history = await self.history(q) if q.thread_ts else []
        asking = await asking_in(self.s.store, q.channel, context_channel=q.context_channel)
        datasources = asking.datasources
        answer_id = secrets.token_urlsafe(12)
        notes: list[str] = []
        scope = LiveScope(
            team=q.team,
            channel=q.channel,
            thread_ts=q.reply_thread,
            user=q.user,
            answer_id=answer_id,
        )
        live_url = await self._live_link(scope, notes)
        # The avatar starts speaking as soon as the first sentence is complete, while the
        # rest of the answer is still being written. Each piece is held back until the next
        # event: a non-answer ("I couldn't find anything…") is one piece followed by the end,
        # and is never spoken.
        speech: asyncio.Queue[str | None] = asyncio.Queue()
        speaking: asyncio.Future[None] | None = None
        held: str | None = None

        def say(piece: str) -> None:
            nonlocal speaking
            if speaking is None and live_url:
                speaking = asyncio.ensure_future(self._speak(q, scope, answer_id, speech))
            speech.put_nowait(piece)

        # The intent, saved before anything reaches the thread: a restart after a crash
        # finishes this answer's message (or posts it) instead of leaving a partial stream.
        intent = AnswerRecord(
            id=answer_id,
            question=question,
            text="",
            spoken="",
            channel=q.channel,
            thread_ts=q.reply_thread,
            asker=q.user,
            team=q.team,
            datasources=list(datasources or []),
            created_at=time.time(),
            question_ts=q.ts,
            pending=True,
        )
        # Written while the answer is looked up; awaited before its first words are sent.
        saving = asyncio.ensure_future(self.s.store.save_answer(intent))
        writer = ThreadWriter(
            self.s.client,
            channel=q.channel,
            thread_ts=q.reply_thread,
            user=q.user,
            team=q.team,
            answer_id=answer_id,
            on_stream=lambda ts: self.s.store.set_answer_stream(answer_id, ts),
            find_orphan=lambda: self.stream_orphan(intent),
        )
        answer: Answer | None = None
        try:
            async for event in self.s.answerer.stream(
                question, history, datasources, asking=asking
            ):
                if isinstance(event, TextDelta):
                    first = held is None
                    if held is not None:
                        say(held)
                    held = event.text
                    await status  # the status and the intent first, then the words
                    await saving
                    await writer.append(event.text)
                    if first and self.s.gate.waiting:
                        await writer.flush()  # others wait: the first words go out now
                elif isinstance(event, AnswerDone):
                    answer = event.answer
            await saving
        except Exception as exc:
            await asyncio.gather(saving, return_exceptions=True)
            await self._given_up(writer, exc)
            raise
        finally:
            await status
            answered = answer is not None and answer.status is AnswerStatus.ANSWERED
            if held is not None and answered:
                say(held)
            speech.put_nowait(None)
        assert answer is not None
        # The words are in the thread: the next question may start, and the rest of this
        # one (blocks, records) waits while others are queued for their first words.
        slot.release()
        if self.s.gate.waiting or self.s.gate.active:
            await writer.flush()  # all of the text now; the sources and buttons after
            await self.s.gate.after_starts(FINISH_WAIT_SECONDS)
        if answer.status is AnswerStatus.LLM_FAILED:
            f = failure(LLMError(answer.error or "it failed"), "the language model")
            notes.append(f"Error id {f.error_id}")
        # No avatar buttons on a non-answer: nothing to watch or render.
        kw = dict(
            live_url=live_url if answered else None,
            video_enabled=self.s.video_enabled and answered,
            notes=notes,
        )
        # Saved before the buttons appear: pressing one always finds its answer.
        await self.s.store.save_answer(
            answer_record(
                answer,
                answer_id,
                question,
                channel=q.channel,
                thread_ts=q.reply_thread,
                asker=q.user,
                team=q.team,
                datasources=list(datasources or []),
                created_at=intent.created_at,
                question_ts=q.ts,
                stream_ts=writer.stream_ts,
            )
        )
        try:
            ts = await writer.finish(
                answer.text,
                tail=blocks.answer_blocks(answer, answer_id, include_text=False, **kw),
                full=blocks.answer_blocks(answer, answer_id, **kw),
            )
        except Exception as exc:
            await self._given_up(writer, exc)
            raise
        await self.s.store.set_answer_message(answer_id, ts)
        ANSWERS.labels(answer.status.value).inc()
        ANSWER_SECONDS.observe(time.monotonic() - started)
        if speaking is not None:
            await speaking
        return answer_id if answered else None

    async def _given_up(self, writer: ThreadWriter, exc: BaseException) -> None:
        """The answer failed (`answer` tells the thread). Refused outright, it is dropped with
        its open stream stopped, so no restart posts it after the person was told; a lost
        response (Slack may have acted) is left to the restart, which looks before posting."""
        if lost_response(exc):
            return
        await writer.abandon()
        await self.s.store.drop_answer(writer.answer_id)

    async def stream_orphan(self, record: AnswerRecord) -> str | None:
        """The stream of `record` whose `chat.startStream` response was lost, if Slack shows
        one: ours, after the question, without metadata, and no other answer's message."""
        if not self.s.bot_user_id or not record.question_ts or not record.thread_ts:
            return None
        taken = {
            ts
            for other in await self.s.store.thread_answers(record.channel, record.thread_ts)
            if other.id != record.id
            for ts in (other.message_ts, other.stream_ts)
            if ts
        }
        return await find_stream_orphan(
            self.s.client,
            channel=record.channel,
            thread_ts=record.thread_ts,
            after_ts=record.question_ts,
            bot_user=self.s.bot_user_id,
            taken=taken,
        )

    async def _set_status(self, q: Question, status: str) -> None:
        # The working state is a nicety: a workspace without agent features refuses it.
        try:
            await self.s.client.assistant_threads_setStatus(
                channel_id=q.channel,
                thread_ts=q.reply_thread,
                status=status,
                loading_messages=blocks.LOADING_MESSAGES,
            )
        except Exception as exc:
            log.debug("setStatus refused: %s", type(exc).__name__)

    async def _live_link(self, scope: LiveScope, notes: list[str]) -> str | None:
        if not self.s.live_enabled or self.s.avatar is None:
            return None
        try:
            return await self.s.avatar.live_link(scope)
        except AvatarError as exc:
            notes.append(f"Live avatar: {failure(exc, 'the live link').text}")
            return None

    async def _speak(
        self, q: Question, scope: LiveScope, answer_id: str, text: asyncio.Queue[str | None]
    ) -> None:
        assert self.s.avatar is not None

        async def chunks() -> AsyncIterator[str]:
            while (piece := await text.get()) is not None:
                yield piece

        spoken = spoken_sentences(chunks(), self.s.settings.spoken_max_seconds)
        try:
            await self.s.avatar.speak(scope, answer_id, spoken)
        except Exception as exc:  # the text answer stands whatever happens to its speech
            f = failure(exc, "speaking the answer live")
            await self.say(q, f.sentence, error_id=f.error_id)

    async def history(self, q: Question, *, before_question: bool = False) -> list[Turn]:
        """The thread's earlier turns, oldest first (the current message left out; with
        `before_question`, everything after it too: a resumed answer's own partial text)."""
        assert q.thread_ts is not None
        resp = await self.s.client.conversations_replies(
            channel=q.channel, ts=q.thread_ts, limit=50
        )
        turns: list[Turn] = []
        for m in resp.get("messages") or []:
            if m.get("ts") == q.ts or not m.get("text"):
                continue
            if before_question and float(m.get("ts") or 0) > float(q.ts):
                continue
            mine = bool(m.get("bot_id")) or m.get("user") == self.s.bot_user_id
            text = clean_markup(m["text"], bot_user_id=self.s.bot_user_id)
            if text:
                turns.append(("assistant" if mine else "user", text[:HISTORY_TURN_CHARS]))
        return turns[-HISTORY_TURNS:]
