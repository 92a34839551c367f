"""Buttons and forms: feedback, "Make a video", "Watch live" (a link; only acknowledged),
"Share in channel", the datasource choice for dropped files, App Home's admin buttons and
their modals (`views.open` -> `view_submission`)."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.slack import blocks
from bot.slack.admin import DATASOURCE_NAME, KnowledgeAdmin
from bot.slack.failures import failure
from bot.slack.file_drops import Choice, FileDrops
from bot.slack.home import HomeService, form_value
from bot.slack.private import PrivateAnswers
from bot.slack.services import SlackServices
from bot.slack.videos import VideoService
from bot.store.base import Feedback

FEEDBACK_REFUSED = "That feedback button isn't one of mine, so I didn't record it."
FEEDBACK_UNKNOWN = (
    "I couldn't find that answer any more (answers expire after a while), so I didn't "
    "record the feedback."
)


def register(app: AsyncApp, services: SlackServices, admin: KnowledgeAdmin) -> None:
    videos = VideoService(services)
    drops = FileDrops(services, admin)
    home = HomeService(services, admin)
    private = PrivateAnswers(services)

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

    @app.action(blocks.SHARE_ANSWER)
    async def share(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user, channel = body["user"]["id"], (body.get("channel") or {}).get("id", "")
        async with services.work.track():
            try:
                await private.share(str(action.get("value", "")), user=user, channel=channel)
            except Exception as exc:
                await services.client.chat_postEphemeral(
                    channel=channel, user=user, text=failure(exc, "sharing an answer").text
                )

    @app.action(re.compile(rf"^{blocks.CHOOSE_DATASOURCE}:\d+$"))
    async def choose_datasource(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id", "")
        message_ts = (body.get("container") or {}).get("message_ts", "")
        async with services.work.track():
            await drops.chosen(
                Choice.decode(str(action.get("value", "{}"))),
                user=body["user"]["id"],
                channel=channel,
                message_ts=message_ts,
            )

    @app.action(blocks.NEW_DATASOURCE)
    async def new_datasource(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id", "")
        message_ts = (body.get("container") or {}).get("message_ts", "")
        metadata = json.dumps(
            {"choice": action.get("value", "{}"), "channel": channel, "ts": message_ts}
        )
        await services.client.views_open(
            trigger_id=body["trigger_id"], view=blocks.new_datasource_modal(metadata)
        )

    @app.view(blocks.NEW_DATASOURCE_VIEW)
    async def new_datasource_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        name = str(form_value(view["state"]["values"], "name")).strip()
        if not DATASOURCE_NAME.match(name):
            await ack(
                response_action="errors",
                errors={
                    "name": "Letters, digits, - _ . (at most 40), starting with a letter or digit."
                },
            )
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        template = Choice.decode(meta.get("choice") or "{}")
        choice = Choice(name, template.files, template.place, template.thread_ts)
        async with services.work.track():
            await drops.chosen(
                choice, user=body["user"]["id"], channel=meta["channel"], message_ts=meta["ts"]
            )

    @app.action(re.compile(rf"^({blocks.HOME_ADD}|{blocks.HOME_BIND}|{blocks.HOME_REMOVE})$"))
    async def home_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        if not await services.is_admin(user):
            return  # the buttons are only on admins' Home; a forged click does nothing
        await services.client.views_open(
            trigger_id=body["trigger_id"], view=await home.modal(action["action_id"])
        )

    @app.view(
        re.compile(rf"^({blocks.HOME_ADD_VIEW}|{blocks.HOME_BIND_VIEW}|{blocks.HOME_REMOVE_VIEW})$")
    )
    async def home_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        values = view["state"]["values"]
        # Field checks answer in the ack (Slack shows them in the form); work happens after.
        errors = home.check(view["callback_id"], values)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        async with services.work.track():
            try:
                outcome = await home.submit(view["callback_id"], values, user=user)
            except Exception as exc:
                outcome = failure(exc, "an App Home action").text
            # The outcome goes to the admin's DM with the bot; the Home tab is refreshed.
            await services.client.chat_postMessage(
                channel=user, text=outcome, blocks=[blocks.section(outcome)]
            )
            await home.publish(user)
