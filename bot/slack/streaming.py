"""Writing one answer into a thread as it is produced.

First choice: Slack's text streaming (`chat.startStream/appendStream/stopStream` through
slack_sdk's `chat_stream`, https://docs.slack.dev/messaging/sending-and-scheduling-messages#text-streaming),
with the recipient user and team set as channels require; the finished message gets the
sources, buttons and feedback blocks on `stopStream`. Where streaming is refused (older
workspaces, some tokens) the writer posts the first text and edits it with `chat.update`,
at most once per `update_interval` seconds, then writes the complete blocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import Block, fallback_text

log = logging.getLogger(__name__)


class ThreadWriter:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        user: str | None,
        team: str | None,
        update_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        self.team = team
        self.update_interval = update_interval
        self._clock = clock
        self._stream: AsyncChatStream | None = None
        self._streaming = True  # until Slack refuses
        self._text = ""
        self._ts: str | None = None  # the fallback message
        self._last_update = 0.0

    async def append(self, text: str) -> None:
        self._text += text
        if self._streaming:
            try:
                if self._stream is None:
                    self._stream = await self.client.chat_stream(
                        channel=self.channel,
                        thread_ts=self.thread_ts,
                        recipient_user_id=self.user,
                        recipient_team_id=self.team,
                        buffer_size=200,
                    )
                await self._stream.append(markdown_text=text)
                return
            except SlackApiError as exc:
                if self._stream is not None and self._stream.ts:
                    raise  # the stream broke midway: the caller finishes with an update
                log.info("streaming refused (%s): posting and updating instead", _code(exc))
                self._streaming = False
        await self._post_or_update()

    async def _post_or_update(self, *, force: bool = False) -> None:
        text = fallback_text(self._text) or "…"
        if self._ts is None:
            resp = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=text
            )
            self._ts = resp["ts"]
            self._last_update = self._clock()
        elif force or self._clock() - self._last_update >= self.update_interval:
            await self.client.chat_update(channel=self.channel, ts=self._ts, text=text)
            self._last_update = self._clock()

    async def finish(self, markdown: str, *, tail: Sequence[Block], full: Sequence[Block]) -> str:
        """End the message: `tail` blocks under streamed text, or `full` blocks (text
        included) on the fallback path. Returns the message ts."""
        text = fallback_text(markdown)
        if self._streaming and self._stream is not None:
            try:
                resp = await self._stream.stop(blocks=list(tail))
                return str(resp.get("ts") or self._stream.ts)
            except SlackApiError as exc:
                if self._stream.ts:
                    # The stream expired server-side: its message can still be edited.
                    log.info("stopStream failed (%s): finishing with chat.update", _code(exc))
                    await self.client.chat_update(
                        channel=self.channel, ts=self._stream.ts, text=text, blocks=list(full)
                    )
                    return self._stream.ts
                log.info("streaming refused (%s): posting instead", _code(exc))
        if self._ts is None:
            resp = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=text, blocks=list(full)
            )
            return str(resp["ts"])
        await self.client.chat_update(
            channel=self.channel, ts=self._ts, text=text, blocks=list(full)
        )
        return self._ts


def _code(exc: SlackApiError) -> Any:
    return exc.response.get("error") if exc.response is not None else "?"
