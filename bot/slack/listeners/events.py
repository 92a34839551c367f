"""Events: mentions, DMs, thread follow-ups, files sent in a DM, App Home, assistant pane."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.admin import KnowledgeAdmin
from bot.slack.asking import AskService, Question
from bot.slack.assistant import AssistantPane
from bot.slack.file_drops import FileDrops
from bot.slack.home import HomeService
from bot.slack.private import PrivateAnswers
from bot.slack.routing import Route, route_mention, route_message
from bot.slack.services import SlackServices

CLAIMS = "slack-message"
log = logging.getLogger(__name__)


def register(app: AsyncApp, services: SlackServices, admin: KnowledgeAdmin) -> None:
    asker = AskService(services)
    channels = admin.channels
    drops = FileDrops(services, admin)
    home = HomeService(services, admin)
    pane = AssistantPane(services)
    private = PrivateAnswers(services)

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
            if not await claimed(event):
                return
            q = question(event, body)
            if await services.store.private_answers(q.channel):
                await private.ask(q.text, user=q.user, channel=q.channel, team=q.team)
            else:
                await asker.answer(q)

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
            q = question(event, body)
            if route is Route.FILES:
                await drops.received(
                    list(event.get("files") or []),
                    user=q.user,
                    channel=q.channel,
                    channel_type=event.get("channel_type"),
                    thread_ts=q.thread_ts,
                )
                return
            if event.get("channel_type") == "im" and q.thread_ts:
                # The assistant pane's threads: the channel in view lends its bindings, and
                # the first question names the thread.
                context = await pane.context(q.channel, q.thread_ts)
                if context is not None:
                    q = replace(q, context_channel=context.get("channel_id"))
                    if not await services.store.thread_answers(q.channel, q.thread_ts):
                        await pane.set_title(q.channel, q.thread_ts, await asker.clean(q.text))
            await asker.answer(q)

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        async with services.work.track():
            await home.publish(event["user"])

    @app.event("assistant_thread_started")
    async def on_thread_started(event: dict[str, Any]) -> None:
        async with services.work.track():
            await pane.started(event["assistant_thread"])

    @app.event("assistant_thread_context_changed")
    async def on_context_changed(event: dict[str, Any]) -> None:
        async with services.work.track():
            await pane.context_changed(event["assistant_thread"])
