"""After a restart: answers a crash left saved but not delivered, each finished in its one
message (`bot.slack.posting` says why and how).

    await Resumer(AskService(services)).resume(before=started)
"""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.asking import AskService, Question, answer_record
from bot.slack.failures import failure
from bot.slack.posting import (
    error_code,
    find_answer_message,
    finish_message,
    post_answer_once,
)
from bot.store.base import AnswerRecord
from knowledge.answering.answer import Answer, AnswerDone, AnswerStatus, Source
from knowledge.visibility import Asking

log = logging.getLogger(__name__)

RESUME_WITHIN_SECONDS = 3600.0  # older unposted answers are left alone (the asker moved on)


def record_answer(record: AnswerRecord) -> Answer:
    """The answer as saved, ready to render again."""
    return Answer(
        question=record.question,
        standalone_question=record.question,
        text=record.text,
        sources=[Source.model_validate(src) for src in record.sources],
        grounded=record.grounded,
        spoken=record.spoken,
        status=AnswerStatus.ANSWERED,
    )


class Resumer:
    def __init__(self, asker: AskService) -> None:
        self.asker = asker
        self.s = asker.s

    async def resume(self, before: float, within_seconds: float = RESUME_WITHIN_SECONDS) -> int:
        """After a restart: answers saved (the intent) before `before` (this process's start)
        whose message was never recorded. One still pending (cut off while answering) is
        answered again; then its message is found and finished, never posted beside it: the
        one carrying its metadata, else its recorded stream, else the stream a lost
        `chat.startStream` response left (`find_stream_orphan`); only when there is none is
        it posted. Answers younger than SLACK_RESUME_AFTER_SECONDS are left for a later
        pass: another replica may still be writing them. Returns how many were delivered."""
        delivered = 0
        now = time.time()
        until = min(before, now - self.s.settings.slack_resume_after_seconds)
        for record in await self.s.store.unposted_answers(now - within_seconds):
            if not record.thread_ts or record.created_at >= until:
                continue
            try:
                answer = await self._answer_again(record) if record.pending else None
                ts = await self._deliver(record, answer or record_answer(record))
                await self.s.store.set_answer_message(record.id, ts)
                delivered += 1
            except Exception as exc:  # one answer's failure never stops the start
                f = failure(exc, "resuming an answer after a restart")
                log.warning("answer %s not resumed (error id %s)", record.id, f.error_id)
        return delivered

    async def _answer_again(self, record: AnswerRecord) -> Answer:
        """The answer a crash cut off, produced again from its saved question and saved."""
        assert record.thread_ts is not None
        q = Question(
            text=record.question,
            channel=record.channel,
            user=record.asker or "",
            ts=record.question_ts or record.thread_ts,
            thread_ts=record.thread_ts,
            team=record.team,
        )
        earlier = q.ts != record.thread_ts  # a follow-up: the thread before it is history
        history = await self.asker.history(q, before_question=True) if earlier else []
        asking = Asking(place=record.channel, bound=tuple(record.datasources))
        answer: Answer | None = None
        async for event in self.s.answerer.stream(
            record.question, history, asking.datasources, asking=asking
        ):
            if isinstance(event, AnswerDone):
                answer = event.answer
        assert answer is not None
        kept = record.model_dump(
            exclude={
                "id",
                "question",
                "channel",
                "pending",
                "text",
                "spoken",
                "grounded",
                "sources",
            }
        )
        await self.s.store.save_answer(
            answer_record(answer, record.id, record.question, channel=record.channel, **kept)
        )
        return answer

    async def _deliver(self, record: AnswerRecord, answer: Answer) -> str:
        """The answer's one message, finished (or posted when Slack shows none); its ts."""
        assert record.thread_ts is not None
        where = dict(channel=record.channel, thread_ts=record.thread_ts, answer_id=record.id)
        answered = answer.status is AnswerStatus.ANSWERED
        fields = dict(
            text=blocks.fallback_text(answer.text),
            blocks=blocks.answer_blocks(
                answer, record.id, video_enabled=self.s.video_enabled and answered
            ),
        )
        ts = await find_answer_message(self.s.client, **where)
        if ts is not None:  # posted, maybe unfinished (a first draft): completing it is idempotent
            await self.s.client.chat_update(channel=record.channel, ts=ts, **fields)
            return ts
        ts = record.stream_ts or await self.asker.stream_orphan(record)
        if ts is not None:
            try:
                await finish_message(
                    self.s.client, channel=record.channel, ts=ts, answer_id=record.id, **fields
                )
                return ts
            except SlackApiError as exc:
                if error_code(exc) != "message_not_found":
                    raise
                log.info("answer %s: its unfinished message was deleted; posting", record.id)
        return await post_answer_once(self.s.client, **where, **fields)
