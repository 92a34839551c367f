"""Slash commands: `/ask-video`, `/ask` and `/knowledge` (acknowledged at once, work after)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.slack.admin import KnowledgeAdmin
from bot.slack.failures import failure
from bot.slack.private import ASK_USAGE, PrivateAnswers
from bot.slack.services import SlackServices
from bot.slack.videos import VideoService

ASK_VIDEO_USAGE = "Usage: `/ask-video your question` — I answer it in a short avatar video."


def register(app: AsyncApp, services: SlackServices, admin: KnowledgeAdmin) -> None:
    videos = VideoService(services)
    private = PrivateAnswers(services)

    @app.command("/ask-video")
    async def ask_video(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = (command.get("text") or "").strip()
        if not text:
            await ack(ASK_VIDEO_USAGE)
            return
        await ack()  # the checks come first; every reply until the answer is private
        async with services.work.track():
            try:
                await videos.ask_video(
                    text,
                    user=command["user_id"],
                    channel=command["channel_id"],
                    team=command.get("team_id"),
                    respond=respond,
                )
            except Exception as exc:  # e.g. not_in_channel: tell the person, not only the log
                await respond(text=failure(exc, "/ask-video").text, response_type="ephemeral")

    @app.command("/knowledge")
    async def knowledge(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def reply(text: str) -> None:
            await respond(text=text, response_type="ephemeral")

        async with services.work.track():
            await admin.run(
                command.get("text") or "",
                user=command["user_id"],
                channel=command["channel_id"],
                reply=reply,
            )

    @app.command("/ask")
    async def ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = (command.get("text") or "").strip()
        if not text:
            await ack(ASK_USAGE)
            return
        await ack()
        async with services.work.track():
            await private.ask(
                text,
                user=command["user_id"],
                channel=command["channel_id"],
                team=command.get("team_id"),
                respond=respond,
            )
