"""Buttons on answers: feedback, "Make a video", "Watch live" (a link; only acknowledged)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.slack import blocks
from bot.slack.failures import failure
from bot.slack.services import SlackServices
from bot.slack.videos import VideoService
from bot.store.base import Feedback

FEEDBACK_REFUSED = "That feedback button isn't one of mine, so I didn't record it."
FEEDBACK_UNKNOWN = (
    "I couldn't find that answer any more (answers expire after a while), so I didn't "
    "record the feedback."
)


def register(app: AsyncApp, services: SlackServices) -> None:
    videos = VideoService(services)

    @app.action(blocks.FEEDBACK)
    async def feedback(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        parsed = blocks.feedback_value(action.get("value"))
        try:
            if parsed is None:
                text = FEEDBACK_REFUSED
            elif await services.store.get_answer(parsed[1]) is None:
                text = FEEDBACK_UNKNOWN
            else:
                await services.store.record_feedback(parsed[1], user, Feedback(parsed[0]))
                text = "Thanks for the feedback!"
        except Exception as exc:
            text = failure(exc, "recording feedback").text
        if channel:
            await services.client.chat_postEphemeral(channel=channel, user=user, text=text)

    @app.action(blocks.MAKE_VIDEO)
    async def make_video(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user, channel = body["user"]["id"], (body.get("channel") or {}).get("id", "")
        async with services.work.track():
            try:
                await videos.for_answer(str(action.get("value", "")), user=user, channel=channel)
            except Exception as exc:
                await services.client.chat_postEphemeral(
                    channel=channel, user=user, text=failure(exc, "making a video").text
                )

    @app.action(blocks.WATCH_LIVE)
    async def watch_live(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the URL; the ack only keeps it quiet
