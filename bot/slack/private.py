"""Private answers: `/ask QUESTION` answers only the asker (ephemeral), with "Share in
channel" to post it for everyone. For questions people would not ask in public.

The answer is saved like any other (the Share button finds it by id; feedback works), and
`knowledge.visibility` applies as in the channel. Only the asker can share it.
"""

from __future__ import annotations

import secrets

from bot.slack import blocks
from bot.slack.asking import EMPTY_QUESTION, TOO_LONG, AskService, answer_record
from bot.slack.failures import failure
from bot.slack.limits import RATE_LIMITED
from bot.slack.places import asking_in
from bot.slack.services import SlackServices
from knowledge.answering.answer import Source

ASK_USAGE = "Usage: `/ask your question` — I answer only you; you can then share it."
GONE = "I no longer have that answer (answers expire); ask the question again."


class PrivateAnswers:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

    async def _tell(self, channel: str, user: str, text: str) -> None:
        await self.s.client.chat_postEphemeral(
            channel=channel, user=user, text=text, blocks=blocks.notice_blocks(text)
        )

    async def ask(self, text: str, *, user: str, channel: str, team: str | None) -> str | None:
        """Answer `text` to `user` alone; returns the answer id."""
        question = await AskService(self.s).clean(text)
        limit = self.s.settings.slack_max_question_chars
        if not question:
            await self._tell(channel, user, EMPTY_QUESTION)
            return None
        if len(question) > limit:
            await self._tell(channel, user, TOO_LONG.format(length=len(question), limit=limit))
            return None
        if not self.s.limiter.allow(user):
            await self._tell(channel, user, RATE_LIMITED.format(limit=self.s.limiter.per_minute))
            return None
        try:
            asking = await asking_in(self.s.store, channel)
            async with self.s.gate.slot():
                answer = await self.s.answerer.answer(
                    question, datasources=asking.datasources, asking=asking
                )
            answer_id = secrets.token_urlsafe(12)
            await self.s.store.save_answer(
                answer_record(
                    answer,
                    answer_id,
                    question,
                    channel=channel,
                    asker=user,
                    team=team,
                    datasources=list(asking.bound),
                )
            )
            await self.s.client.chat_postEphemeral(
                channel=channel,
                user=user,
                text=blocks.fallback_text(answer.text),
                blocks=blocks.private_answer_blocks(answer, answer_id),
            )
            return answer_id
        except Exception as exc:
            f = failure(exc, "answering privately")
            await self._tell(channel, user, f.text)
            return None

    async def share(self, answer_id: str, *, user: str, channel: str) -> None:
        record = await self.s.store.get_answer(answer_id)
        if record is None:
            await self._tell(channel, user, GONE)
            return
        if record.asker != user:
            await self._tell(channel, user, "Only the person who asked can share this answer.")
            return
        sources = [Source.model_validate(s) for s in record.sources]
        resp = await self.s.client.chat_postMessage(
            channel=record.channel,
            text=blocks.fallback_text(record.text),
            blocks=blocks.shared_answer_blocks(record.text, sources, user),
        )
        await self.s.store.set_answer_message(answer_id, resp["ts"])
