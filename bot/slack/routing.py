"""Which Slack message events the bot acts on (pure: an event in, a decision out).

Answered: a mention (app_mention), any plain message in a DM, and — unless turned off — a
plain message in a thread the bot has answered in. A file shared in a DM, or in a channel
with the bot mentioned, goes to indexing (the admin is asked which datasource).
Ignored: bot messages (the bot's own included), edits, deletions, joins and every other
subtype, and channel messages that mention the bot (their app_mention event answers them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Route(StrEnum):
    ANSWER = "answer"
    FOLLOW_UP = "follow_up"  # answer if the bot answered in this thread
    FILES = "files"
    IGNORE = "ignore"


_ANSWERABLE_SUBTYPES = {None, "thread_broadcast"}


def route_message(event: dict[str, Any], bot_user_id: str | None) -> Route:
    subtype = event.get("subtype")
    if event.get("bot_id") or event.get("bot_profile") or subtype == "bot_message":
        return Route.IGNORE
    if not event.get("user") or (bot_user_id and event.get("user") == bot_user_id):
        return Route.IGNORE
    is_dm = event.get("channel_type") == "im"
    if subtype == "file_share":
        # In a DM, or shared in a channel with the bot mentioned (its app_mention, which
        # carries the same files, leaves the files to this event).
        mentioned = bool(bot_user_id) and f"<@{bot_user_id}>" in (event.get("text") or "")
        return Route.FILES if is_dm or mentioned else Route.IGNORE
    if subtype not in _ANSWERABLE_SUBTYPES or event.get("edited"):
        return Route.IGNORE
    if is_dm:
        return Route.ANSWER
    if bot_user_id and f"<@{bot_user_id}>" in (event.get("text") or ""):
        return Route.IGNORE  # the app_mention event for the same message answers it
    if event.get("thread_ts") and event.get("thread_ts") != event.get("ts"):
        return Route.FOLLOW_UP
    return Route.IGNORE


def route_mention(event: dict[str, Any], bot_user_id: str | None) -> Route:
    if event.get("bot_id") or event.get("edited") or event.get("subtype"):
        return Route.IGNORE
    if event.get("files"):
        return Route.IGNORE  # a file share: its message event offers to index the files
    if not event.get("user") or (bot_user_id and event.get("user") == bot_user_id):
        return Route.IGNORE
    return Route.ANSWER
