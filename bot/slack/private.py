"""Private answers: `/ask QUESTION` answers only the asker (ephemeral), with "Share in
channel" to post it for everyone. For questions people would not ask in public.

The answer is saved like any other (the Share button finds it by id; feedback works), and
`knowledge.visibility` applies as in the channel. Only the asker can share it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.asking import EMPTY_QUESTION, TOO_LONG, AskService, answer_record
from bot.slack.failures import failure
from bot.slack.limits import RATE_LIMITED
from bot.slack.places import asking_in
from bot.slack.services import SlackServices
from knowledge.answering.answer import Source

# The slash command's response_url (bolt's `respond`): reaches the asker even where the bot
# is not a member (chat.postEphemeral then answers `not_in_channel`).
Respond = Callable[..., Awaitable[Any]]

ASK_USAGE = "Usage: `/ask your question` — I answer only you; you can then share it."
GONE = "I no longer have that answer (answers expire); ask the question again."


class PrivateAnswers:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

    async def _tell(
        self,
        channel: str,
        user: str,
        text: str,
        shown: list[dict[str, Any]] | None = None,
        respond: Respond | None = None,
    ) -> None:
        shown = shown or blocks.notice_blocks(text)
        try:
            await self.s.client.chat_postEphemeral(
                channel=channel, user=user, text=text, blocks=shown
            )
        except SlackApiError:
            if respond is None:
                raise
            await respond(text=text, blocks=shown, response_type="ephemeral")

    async def ask(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        team: str | None,
        respond: Respond | None = None,
    ) -> str | None:
        """Answer `text` to `user` alone; returns the answer id."""
        question = await AskService(self.s).clean(text)
        limit = self.s.settings.slack_max_question_chars
        if not question:
            await self._tell(channel, user, EMPTY_QUESTION, respond=respond)
            return None
        if len(question) > limit:
            too_long = TOO_LONG.format(length=len(question), limit=limit)
            await self._tell(channel, user, too_long, respond=respond)
            return None
        if not self.s.limiter.allow(user):
            limited = RATE_LIMITED.format(limit=self.s.limiter.per_minute)
            await self._tell(channel, user, limited, respond=respond)
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
            await self._tell(
                channel,
                user,
                blocks.fallback_text(answer.text),
                blocks.private_answer_blocks(answer, answer_id),
                respond=respond,
            )
            return answer_id
        except Exception as exc:
            f = failure(exc, "answering privately")
            await self._tell(channel, user, f.text, respond=respond)
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
