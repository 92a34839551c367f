"""The assistant pane (`agent_view`): greeting, suggested prompts, thread title, context.

- `assistant_thread_started`: a greeting in the thread, carrying the channel the person is
  looking at as message metadata (Slack keeps it, so every replica can read it back), and
  up to four suggested prompts built from the titles of the documents that channel answers
  from (its bound datasources, else the workspace-wide ones) — never a fixed list.
- `assistant_thread_context_changed`: the greeting's metadata follows the person.
- a question in the thread: answered with the context channel's bindings
  (`places.asking_in`); the first one becomes the thread's title.

https://docs.slack.dev/reference/events/assistant_thread_started
https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts (agent apps
must not send `thread_ts`: the call then silently fails)
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.home import distinct_titles, suggested_question
from bot.slack.places import asking_in
from bot.slack.services import SlackServices
from knowledge.visibility import visible

log = logging.getLogger(__name__)

CONTEXT_EVENT = "assistant_thread_context"
MAX_PROMPTS = 4  # Slack shows up to four
TITLE_CHARS = 80


def prompts_from_titles(titles: list[str]) -> list[dict[str, str]]:
    """Suggested prompts: one per distinct document title."""
    return [
        {"title": t[:75], "message": suggested_question(t)}
        for t in distinct_titles(titles, MAX_PROMPTS)
    ]


class AssistantPane:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

    async def started(self, thread: dict[str, Any]) -> None:
        channel, ts = thread["channel_id"], thread["thread_ts"]
        context = thread.get("context") or {}
        await self.s.client.chat_postMessage(
            channel=channel,
            thread_ts=ts,
            text=blocks.ASSISTANT_GREETING,
            metadata={"event_type": CONTEXT_EVENT, "event_payload": _context(context)},
        )
        await self.suggest(channel, context.get("channel_id"))

    async def suggest(self, channel: str, context_channel: str | None) -> None:
        asking = await asking_in(self.s.store, channel, context_channel=context_channel)
        docs = sorted(await self.s.kb.alist_documents(), key=lambda d: -d.added_at)
        titles = [d.title for d in docs if visible(d.datasource, d.place, asking)]
        prompts = prompts_from_titles(titles)
        if not prompts:
            return
        try:
            await self.s.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, title="Try asking", prompts=prompts
            )
        except SlackApiError as exc:  # prompts are a nicety; questions still get answers
            log.info("setSuggestedPrompts refused: %s", exc.response.get("error"))

    async def context_changed(self, thread: dict[str, Any]) -> None:
        channel, ts = thread["channel_id"], thread["thread_ts"]
        greeting = await self._greeting(channel, ts)
        payload = _context(thread.get("context") or {})
        if greeting is None:
            await self.s.client.chat_postMessage(
                channel=channel,
                thread_ts=ts,
                text=blocks.ASSISTANT_GREETING,
                metadata={"event_type": CONTEXT_EVENT, "event_payload": payload},
            )
        else:
            await self.s.client.chat_update(
                channel=channel,
                ts=greeting["ts"],
                text=greeting.get("text") or blocks.ASSISTANT_GREETING,
                metadata={"event_type": CONTEXT_EVENT, "event_payload": payload},
            )
        await self.suggest(channel, payload.get("channel_id"))

    async def context(self, channel: str, thread_ts: str) -> dict[str, str] | None:
        """The thread's context (`channel_id`: where the person is looking), or None when
        this is not an assistant thread."""
        try:
            greeting = await self._greeting(channel, thread_ts)
        except SlackApiError as exc:  # the question is still answered, without the context
            log.warning("reading the assistant thread failed: %s", exc.response.get("error"))
            return None
        if greeting is None:
            return None
        return dict(greeting["metadata"].get("event_payload") or {})

    async def set_title(self, channel: str, thread_ts: str, question: str) -> None:
        title = " ".join(question.split())
        if len(title) > TITLE_CHARS:
            title = title[: TITLE_CHARS - 1] + "…"
        try:
            await self.s.client.assistant_threads_setTitle(
                channel_id=channel, thread_ts=thread_ts, title=title
            )
        except SlackApiError as exc:  # a title is a nicety; the answer still comes
            log.info("setTitle refused: %s", exc.response.get("error"))

    async def _greeting(self, channel: str, thread_ts: str) -> dict[str, Any] | None:
        resp = await self.s.client.conversations_replies(
            channel=channel, ts=thread_ts, include_all_metadata=True, limit=20
        )
        for m in resp.get("messages") or []:
            meta = m.get("metadata") or {}
            if meta.get("event_type") == CONTEXT_EVENT and (
                m.get("bot_id") or m.get("user") == self.s.bot_user_id
            ):
                return dict(m)
        return None


def _context(context: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in context.items() if k in ("channel_id", "team_id") and v}
