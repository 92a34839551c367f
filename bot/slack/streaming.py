"""Writing one answer into a thread as it is produced.

First choice: Slack's text streaming (`chat.startStream/appendStream/stopStream` through
slack_sdk's `chat_stream`, https://docs.slack.dev/messaging/sending-and-scheduling-messages#text-streaming),
with the recipient user and team set as channels require; the finished message gets the
sources, buttons and feedback blocks on `stopStream`. Where streaming is refused (older
workspaces, some tokens) the writer posts the first text and edits it with `chat.update`,
at most once per `update_interval` seconds, then writes the complete blocks.

The text comes from a model quoting documents: every streamed chunk goes through the one
escaping rule (`bot.slack.mrkdwn.safe_markdown`). A chunk is sent up to its last whitespace and
the rest held for the next one, so a Markdown link or a `@channel` is never split across two
chunks where the rule could not see it whole. The finished message carries the answer's
metadata, and the fallback post is made at most once (`bot.slack.posting`). A stream that
breaks midway is stopped and edited into the whole answer; one whose `chat.startStream`
response was lost is found in the thread and adopted, so an answer is always one message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import Block, fallback_text
from bot.slack.mrkdwn import safe_markdown
from bot.slack.posting import (
    CONNECTION_ERRORS,
    answer_metadata,
    error_code,
    lost_response,
    post_answer_once,
    stop_stream,
)

log = logging.getLogger(__name__)

HOLD_LIMIT = 400  # a chunk with no whitespace this long is sent anyway (and still escaped)


_LINK_FROM_HERE = re.compile(r"\[[^\]\n]*\]\([^)\s]*\)")


def _ready(text: str) -> tuple[str, str]:
    """(what can be sent now, what to hold): cut after the last whitespace, or before a
    Markdown link that is not complete yet (its label may hold spaces)."""
    if len(text) > HOLD_LIMIT:
        return text, ""
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
    bracket = text.rfind("[", 0, cut)
    if bracket != -1:
        whole = _LINK_FROM_HERE.match(text, bracket)
        if whole is None or whole.end() > cut:
            cut = bracket
    return text[:cut], text[cut:]


StreamFound = Callable[[str], Awaitable[None]]
OrphanLookup = Callable[[], Awaitable[str | None]]


class ThreadWriter:
    """`on_stream(ts)` records the stream's ts as soon as `chat.startStream` answers (a
    restart finishes that message); `find_orphan()` looks for the stream whose start's
    response was lost (`bot.slack.posting.find_stream_orphan`), which is then adopted."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        user: str | None,
        team: str | None,
        answer_id: str,
        update_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_stream: StreamFound | None = None,
        find_orphan: OrphanLookup | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        self.team = team
        self.answer_id = answer_id
        self.update_interval = update_interval
        self._clock = clock
        self._on_stream = on_stream
        self._find_orphan = find_orphan
        self._stream: AsyncChatStream | None = None
        self._streaming = True  # until Slack refuses
        self._text = ""
        self._ts: str | None = None  # the fallback message
        self._last_update = 0.0
        self._held = ""  # streamed text not sent yet (see _ready)
        self._buffered = False  # text in the SDK's buffer, not sent yet
        self.stream_ts: str | None = None  # the streamed message, once known
        self._recording: asyncio.Future[None] | None = None  # on_stream's write

    async def _noticed(self, ts: str | None) -> None:
        if ts and self.stream_ts is None:
            self.stream_ts = ts
            if self._on_stream is not None:
                # Written beside the stream, not in front of its next words: a crash before
                # the write is covered by the orphan lookup.
                self._recording = asyncio.ensure_future(self._on_stream(ts))

    async def _recorded(self) -> None:
        if self._recording is not None:
            try:
                await self._recording
            except Exception as exc:
                log.warning("the stream's ts was not recorded: %s", type(exc).__name__)

    async def append(self, text: str) -> None:
        self._text += text
        if self._streaming:
            ready, self._held = _ready(self._held + text)
            if not ready or await self._stream_out(ready):
                return
        await self._post_or_update()

    async def flush(self) -> None:
        """Send all the text written so far, now (it is complete: nothing is held back)."""
        if self._streaming:
            held, self._held = self._held, ""
            if await self._stream_out(held, now=True):
                return
        await self._post_or_update(force=True)

    async def _stream_out(self, text: str, *, now: bool = False) -> bool:
        """Stream `text` (escaped), buffered by the SDK unless `now`. False when streaming
        failed and the message is to be posted or edited instead."""
        if now and not text and not self._buffered and self._stream is not None:
            return True  # all sent already
        try:
            if self._stream is None:
                self._stream = await self.client.chat_stream(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    recipient_user_id=self.user,
                    recipient_team_id=self.team,
                    buffer_size=200,
                )
            # `chunks` given, the SDK sends its buffer at once (starting the stream if need be)
            sent = await self._stream.append(
                markdown_text=safe_markdown(text) if text else None,
                chunks=[] if now else None,
            )
            self._buffered = sent is None and (self._buffered or bool(text))
            await self._noticed(self._stream.ts)
            return True
        except (SlackApiError, *CONNECTION_ERRORS) as exc:
            self._streaming = False
            if self._stream is not None and self._stream.ts:
                # The stream broke midway (appendStream is never repeated: a repeat
                # doubles text): it is stopped (a lost append leaves it streaming, and
                # a streaming message cannot be edited) and edited from here on.
                log.info("appendStream failed (%s): editing the message instead", error_code(exc))
                await self._noticed(self._stream.ts)
                await stop_stream(
                    self.client,
                    channel=self.channel,
                    ts=self._stream.ts,
                    answer_id=self.answer_id,
                )
                self._ts = self._stream.ts
            elif await self._adopt(exc):
                log.info("startStream's response was lost: editing the stream it began")
            else:
                # Refused: startStream is never repeated (a repeat is a second stream);
                # the answer is posted instead.
                log.info(
                    "streaming unavailable (%s): posting and updating instead", error_code(exc)
                )
            return False

    async def _adopt(self, exc: BaseException) -> bool:
        """After a lost `chat.startStream` response: the stream it began, if Slack shows one,
        becomes this answer's message (stopped with its metadata, then edited)."""
        if not lost_response(exc) or self._find_orphan is None:
            return False
        orphan = await self._find_orphan()
        if orphan is None:
            return False
        await self._noticed(orphan)
        await stop_stream(self.client, channel=self.channel, ts=orphan, answer_id=self.answer_id)
        self._ts = orphan
        return True

    async def abandon(self) -> None:
        """The answer failed before it was finished: an open stream is stopped, so the
        partial text is not left streaming beside the failure notice."""
        await self._recorded()
        if self._streaming and self._stream is not None and self._stream.ts:
            self._streaming = False
            await stop_stream(self.client, channel=self.channel, ts=self._stream.ts)

    async def _post_or_update(self, *, force: bool = False) -> None:
        text = fallback_text(self._text) or "…"
        if self._ts is None:
            self._ts = await post_answer_once(
                self.client,
                channel=self.channel,
                thread_ts=self.thread_ts,
                answer_id=self.answer_id,
                text=text,
            )
            self._last_update = self._clock()
        elif force or self._clock() - self._last_update >= self.update_interval:
            await self.client.chat_update(channel=self.channel, ts=self._ts, text=text)
            self._last_update = self._clock()

    async def finish(self, markdown: str, *, tail: Sequence[Block], full: Sequence[Block]) -> str:
        """End the message: `tail` blocks under streamed text, or `full` blocks (text
        included) on the fallback path. Returns the message ts."""
        text = fallback_text(markdown)
        await self._recorded()
        if self._streaming and self._stream is not None:
            try:
                resp = await self._stream.stop(
                    markdown_text=safe_markdown(self._held) if self._held else None,
                    blocks=list(tail),
                    metadata=answer_metadata(self.answer_id),
                )
                return str(resp.get("ts") or self._stream.ts)
            except (SlackApiError, *CONNECTION_ERRORS) as exc:
                await self._noticed(self._stream.ts)
                await self._recorded()
                if self._stream.ts:
                    # The stream expired server-side: its message can still be edited.
                    log.info("stopStream failed (%s): finishing with chat.update", error_code(exc))
                    await self.client.chat_update(
                        channel=self.channel,
                        ts=self._stream.ts,
                        text=text,
                        blocks=list(full),
                        metadata=answer_metadata(self.answer_id),
                    )
                    return self._stream.ts
                if not await self._adopt(exc):
                    log.info("streaming refused (%s): posting instead", error_code(exc))
                await self._recorded()
        if self._ts is None:
            return await post_answer_once(
                self.client,
                channel=self.channel,
                thread_ts=self.thread_ts,
                answer_id=self.answer_id,
                text=text,
                blocks=list(full),
            )
        await self.client.chat_update(
            channel=self.channel,
            ts=self._ts,
            text=text,
            blocks=list(full),
            metadata=answer_metadata(self.answer_id),
        )
        return self._ts
