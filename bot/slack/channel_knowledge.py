"""Slack threads as a knowledge source: `/knowledge add #channel` (admins, opt-in per channel).

- A *resolved* thread is a question (the thread's first message) with at least one reply
  from a person; it becomes one document: the question, then the replies, in order. The bot's
  own messages are left out (its answers come from the knowledge base already). The source key
  is `slack:<channel>/<thread ts>`; the link people open is the thread's permalink
  (`chat.getPermalink`).
- Adding a channel reads its history (`conversations.history`, then `conversations.replies`
  per thread), at most SLACK_SOURCE_MAX_THREADS threads, paced to
  SLACK_HISTORY_CALLS_PER_MINUTE: Tier 3 (50+/min) for internal apps; apps distributed
  outside the Marketplace get 1 a minute since 2025 (https://api.slack.com/apis/rate-limits),
  so set it to 1 there. slack_sdk retries 429s after their Retry-After.
- After that the channel is followed through the Events API (`message.channels`,
  `message.groups`): a new reply, an edit or a deletion re-reads that one thread; a deleted
  question (or a thread left with no replies) removes its document.
- A private channel's threads answer only in that channel (see the visibility rule).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack.markup import clean_markup
from bot.slack.services import SlackServices
from bot.store import KnowledgeChannel
from knowledge.index import AddReport
from knowledge.models import Document, Origin, OriginKind

log = logging.getLogger(__name__)

CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|([^>]*))?>$|^#([\w.\-]+)$")
TITLE_CHARS = 100
PAGE = 200  # messages per history/replies call (Slack allows up to 999 for internal apps)
FOLLOW_CACHE_SECONDS = 30.0
# The methods Slack rate-limits hard for reading history (the others are Tier 2-4 and rare).
PACED = frozenset({"conversations_history", "conversations_replies"})


class ChannelSourceError(Exception):
    """What went wrong, in words for the admin."""


@dataclass
class ChannelReport:
    channel: str
    name: str
    threads: int = 0  # resolved threads read
    report: AddReport = field(default_factory=AddReport)
    removed: list[str] = field(default_factory=list)
    truncated: bool = False


def thread_source(channel: str, thread_ts: str) -> str:
    return f"slack:{channel}/{thread_ts}"


def thread_document(
    channel: str, messages: list[dict[str, Any]], *, permalink: str, private: bool = False
) -> Document | None:
    """One resolved thread as a document, or None when it has no reply from a person."""
    people = [m for m in messages if not m.get("bot_id") and m.get("subtype") is None]
    if not people or people[0].get("ts") != messages[0].get("ts"):
        return None  # the question itself is gone or was the bot's
    question, replies = people[0], people[1:]
    if not replies:
        return None
    ask = clean_markup(question.get("text") or "")
    title = (ask.splitlines() or ["Slack thread"])[0][:TITLE_CHARS] or "Slack thread"
    parts = [f"# {title}", f"Question: {ask}"]
    parts += [f"Answer: {clean_markup(r.get('text') or '')}" for r in replies]
    text = "\n\n".join(parts)
    return Document(
        source=thread_source(channel, str(question["ts"])),
        title=title,
        text=text,
        format="md",
        url=permalink or None,
        place=channel if private else "",  # a private channel's threads answer only there
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        origin=Origin(kind=OriginKind.SLACK, root=channel),
    )


class ChannelKnowledge:
    def __init__(self, services: SlackServices) -> None:
        self.s = services
        self._pace = asyncio.Lock()
        self._last_call = 0.0
        self._followed: dict[str, KnowledgeChannel] = {}
        self._followed_at = 0.0

    # --- /knowledge add #channel -----------------------------------------------------------

    async def resolve(self, ref: str) -> tuple[str, str]:
        """(channel id, name) from `<#C123|name>` or `#name`; ChannelSourceError otherwise."""
        m = CHANNEL_REF.match(ref.strip())
        if not m:
            raise ChannelSourceError("Name the channel as #channel (pick it from the list).")
        if m.group(1):
            return m.group(1), m.group(2) or m.group(1)
        wanted = m.group(3).lower()
        async for page in self._pages(
            "conversations_list", "channels", types="public_channel,private_channel"
        ):
            for ch in page:
                if str(ch.get("name", "")).lower() == wanted:
                    return str(ch["id"]), str(ch["name"])
        raise ChannelSourceError(
            f"I can't see a channel called #{wanted}: invite me to it first (`/invite @avatarbot`)."
        )

    async def add(self, channel: str, *, name: str, datasource: str, user: str) -> ChannelReport:
        """Follow a channel (from `resolve`) and index its resolved threads."""
        info = await self._call("conversations_info", channel=channel)
        ch = info.get("channel") or {}
        private = bool(ch.get("is_private") or ch.get("is_group") or ch.get("is_im"))
        await self.s.store.follow_channel(
            KnowledgeChannel(channel=channel, datasource=datasource, private=private, added_by=user)
        )
        self._followed_at = 0.0
        return await self.read_channel(channel, name=str(ch.get("name") or name))

    async def read_channel(self, channel: str, *, name: str = "") -> ChannelReport:
        """Index every resolved thread of a followed channel (at most the configured number)."""
        followed = await self.followed(channel)
        if followed is None:
            raise ChannelSourceError("That channel is not a knowledge source.")
        limit = self.s.settings.slack_source_max_threads
        result = ChannelReport(channel=channel, name=name or channel)
        docs: list[Document] = []
        async for page in self._pages("conversations_history", "messages", channel=channel):
            for msg in page:
                if not msg.get("reply_count") or msg.get("bot_id"):
                    continue
                if result.threads >= limit:
                    result.truncated = True
                    break
                result.threads += 1
                doc = await self._thread(channel, str(msg["ts"]), private=followed.private)
                if doc is not None:
                    docs.append(doc)
            if result.truncated:
                break
        if docs:
            result.report = await self.s.kb.aadd(docs, datasource=followed.datasource)
        return result

    # --- following the channel (Events API) ------------------------------------------------

    async def on_message(self, event: dict[str, Any]) -> bool:
        """Re-read the thread a message event touches, in a followed channel. True if it did."""
        channel = str(event.get("channel") or "")
        if not channel or await self.followed(channel) is None:
            return False
        subtype = event.get("subtype")
        inner = event.get("message") or event.get("previous_message") or {}
        thread_ts = event.get("thread_ts") or inner.get("thread_ts")
        if subtype == "message_deleted" and not thread_ts:
            thread_ts = event.get("deleted_ts")  # a question without replies, or its parent
        if not thread_ts:
            return False  # a new top-level message: not a thread yet
        await self.refresh_thread(channel, str(thread_ts))
        return True

    async def refresh_thread(self, channel: str, thread_ts: str) -> None:
        followed = await self.followed(channel)
        if followed is None:
            return
        doc = await self._thread(channel, thread_ts, private=followed.private)
        if doc is None:
            await self.s.kb.aremove([thread_source(channel, thread_ts)])
        else:
            await self.s.kb.aadd([doc], datasource=followed.datasource)

    async def followed(self, channel: str) -> KnowledgeChannel | None:
        """The followed channel, from a short-lived cache (every message event asks)."""
        if time.monotonic() - self._followed_at > FOLLOW_CACHE_SECONDS:
            self._followed = {c.channel: c for c in await self.s.store.followed_channels()}
            self._followed_at = time.monotonic()
        return self._followed.get(channel)

    async def unfollow(self, channel: str) -> None:
        await self.s.store.unfollow_channel(channel)
        self._followed_at = 0.0  # this process stops following at once

    async def followed_channels(self) -> list[KnowledgeChannel]:
        return await self.s.store.followed_channels()

    # --- Slack Web API ----------------------------------------------------------------------

    async def _thread(self, channel: str, thread_ts: str, *, private: bool) -> Document | None:
        messages: list[dict[str, Any]] = []
        try:
            async for page in self._pages(
                "conversations_replies", "messages", channel=channel, ts=thread_ts
            ):
                messages += page
        except ChannelSourceError as exc:
            if "thread_not_found" in str(exc) or "message_not_found" in str(exc):
                return None
            raise
        if not messages:
            return None
        link = await self._call("chat_getPermalink", channel=channel, message_ts=thread_ts)
        permalink = str(link.get("permalink") or "")
        return thread_document(channel, messages, permalink=permalink, private=private)

    async def _pages(self, method: str, key: str, **args: Any) -> AsyncIterator[list[Any]]:
        cursor = ""
        while True:
            got = await self._call(method, limit=PAGE, cursor=cursor, **args)
            yield list(got.get(key) or [])
            cursor = str((got.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    async def _call(self, method: str, **args: Any) -> dict[str, Any]:
        if method in PACED:
            await self._wait_turn()
        args = {k: v for k, v in args.items() if v != ""}
        try:
            resp = await getattr(self.s.client, method)(**args)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "error"))
            if error == "not_in_channel":
                raise ChannelSourceError(
                    "I'm not in that channel: invite me (`/invite @avatarbot`), then try again."
                ) from exc
            if error == "channel_not_found":
                raise ChannelSourceError(
                    "I can't see that channel: invite me to it first (`/invite @avatarbot`)."
                ) from exc
            raise ChannelSourceError(f"Slack refused {method}: {error}") from exc
        return dict(resp.data) if hasattr(resp, "data") else dict(resp)

    async def _wait_turn(self) -> None:
        gap = 60.0 / self.s.settings.slack_history_calls_per_minute
        async with self._pace:
            wait = self._last_call + gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_call = time.monotonic()
