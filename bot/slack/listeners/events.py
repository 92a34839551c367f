"""Events: mentions, DMs, thread follow-ups, files sent in a DM."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.admin import KnowledgeAdmin
from bot.slack.asking import AskService, Question
from bot.slack.routing import Route, route_mention, route_message
from bot.slack.services import SlackServices

CLAIMS = "slack-message"
log = logging.getLogger(__name__)


def register(app: AsyncApp, services: SlackServices) -> None:
    asker = AskService(services)
    admin = KnowledgeAdmin(services)
    channels = admin.channels

    async def claimed(event: dict[str, Any]) -> bool:
        # One answer per message: Slack retries, the app_mention + message pair for the same
        # message, and other replicas all race for the same key; the store picks one winner.
        key = f"{event.get('channel')}:{event.get('ts')}"
        ttl = services.settings.slack_event_ttl_hours * 3600
        return await services.store.claim_once(CLAIMS, key, ttl)

    async def follow_thread(event: dict[str, Any], body: dict[str, Any]) -> None:
        """A reply, edit or deletion in a channel whose threads are knowledge: re-read it."""
        key = str(body.get("event_id") or f"{event.get('channel')}:{event.get('event_ts')}")
        if await channels.followed(str(event.get("channel") or "")) is None:
            return
        if not await services.store.claim_once("knowledge-thread", key, 24 * 3600):
            return
        async with services.work.track():
            try:
                await channels.on_message(event)
            except Exception as exc:  # the thread is read again on its next event or sync
                log.warning("could not re-read a knowledge thread: %s", type(exc).__name__)

    def question(event: dict[str, Any], body: dict[str, Any]) -> Question:
        return Question(
            text=event.get("text") or "",
            channel=event["channel"],
            user=event["user"],
            ts=event["ts"],
            thread_ts=event.get("thread_ts"),
            team=event.get("team") or body.get("team_id"),
        )

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any]) -> None:
        if route_mention(event, services.bot_user_id) is Route.IGNORE:
            return
        async with services.work.track():
            if await claimed(event):
                await asker.answer(question(event, body))

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("channel_type") in ("channel", "group"):
            await follow_thread(event, body)
        route = route_message(event, services.bot_user_id)
        if route is Route.IGNORE:
            return
        async with services.work.track():
            if route is Route.FOLLOW_UP and (
                not services.settings.slack_thread_followups
                or not await services.store.thread_answers(event["channel"], event["thread_ts"])
            ):
                return
            if not await claimed(event):
                return
            if route is Route.FILES:
                q = question(event, body)
                await admin.index_files(
                    list(event.get("files") or []), user=q.user, reply=lambda t: asker.say(q, t)
                )
            else:
                await asker.answer(question(event, body))
