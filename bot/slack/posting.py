"""Answer messages posted exactly once, across dropped connections and crashes.

Slack's Web API has no idempotency key: a `chat.postMessage` that Slack processed but whose
response was lost (connection dropped, 5xx after the write) posts twice when repeated, and a
repeated `chat.startStream` leaves an orphan stream. So:

- the Web API client repeats a request after a connection error or a 5xx only for methods
  where a repeat cannot add a message (`retry_handlers`: reads, `chat.update`, status calls);
- each answer message carries message metadata naming the answer
  (https://docs.slack.dev/messaging/message-metadata: `event_type` + `event_payload`), on
  `chat.postMessage` and on `chat.stopStream` alike;
- the answer record is saved before anything reaches the thread (the intent, `pending` until
  its text is final), the stream's `ts` as soon as `chat.startStream` answers, and the
  message's `ts` once it is finished; before an answer post is repeated (a failed attempt, or
  a restart that finds an answer saved but its message not recorded) the thread is read with
  `conversations.replies` (`include_all_metadata`) for a message carrying that answer id, and
  only when there is none is it posted again;
- a stream cut off before `chat.stopStream` (a crash, a lost response) is finished, never
  posted beside: its recorded `ts`, or, when the start's response was lost, the stream found
  in the thread (`find_stream_orphan`: startStream takes no metadata), is stopped with the
  answer's metadata and updated to the whole answer (`finish_message`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

ANSWER_EVENT = "avatarbot_answer"
NOTICE_EVENT = "avatarbot_notice"
# Methods that create something on each call: never repeated blindly after a lost response.
NOT_IDEMPOTENT = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.scheduleMessage",
        "chat.meMessage",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "files.completeUploadExternal",
        "files.upload",
        "reactions.add",
        "views.open",
        "views.push",
        "conversations.create",
    }
)
# A lost response: Slack may or may not have acted on the request.
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, asyncio.TimeoutError)
POST_ATTEMPTS = 3


def _method(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1]


class _IdempotentOnly(AsyncRetryHandler):
    """Wraps a retry handler so it only repeats methods in which a repeat adds nothing."""

    def __init__(self, inner: AsyncRetryHandler) -> None:
        super().__init__(inner.max_retry_count, inner.interval_calculator)
        self.inner = inner

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _method(request) in NOT_IDEMPOTENT:
            return False
        return await self.inner._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def retry_handlers() -> list[AsyncRetryHandler]:
    """429s are always repeated (Slack did nothing; https://docs.slack.dev/apis/web-api/
    rate-limits); connection errors and 5xx only for idempotent methods."""
    return [
        _IdempotentOnly(AsyncConnectionErrorRetryHandler(max_retry_count=2)),
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        _IdempotentOnly(AsyncServerErrorRetryHandler(max_retry_count=2)),
    ]


def answer_metadata(answer_id: str) -> dict[str, Any]:
    return {"event_type": ANSWER_EVENT, "event_payload": {"answer_id": answer_id}}


def notice_metadata() -> dict[str, Any]:
    """On the bot's notices in an answer's thread, so `find_stream_orphan` never takes one
    for a stream (an unfinished stream is the bot's one message there without metadata)."""
    return {"event_type": NOTICE_EVENT, "event_payload": {}}


def lost_response(exc: BaseException) -> bool:
    """The request may have been processed: a connection error or a 5xx."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    return isinstance(exc, SlackApiError) and getattr(exc.response, "status_code", 200) >= 500


async def _thread_messages(
    client: AsyncWebClient, *, channel: str, thread_ts: str
) -> AsyncIterator[dict[str, Any]]:
    """The thread's messages with their metadata, oldest first."""
    cursor: str | None = None
    for _ in range(20):  # 20 pages of 200: far more than any thread we answer in
        resp = await client.conversations_replies(
            channel=channel, ts=thread_ts, include_all_metadata=True, limit=200, cursor=cursor
        )
        for msg in resp.get("messages") or []:
            yield msg
        cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
        if not resp.get("has_more") or not cursor:
            return


async def find_answer_message(
    client: AsyncWebClient, *, channel: str, thread_ts: str, answer_id: str
) -> str | None:
    """The ts of the message in the thread that carries `answer_id`, if one was posted."""
    async for msg in _thread_messages(client, channel=channel, thread_ts=thread_ts):
        meta = msg.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") == ANSWER_EVENT and payload.get("answer_id") == answer_id:
            return str(msg["ts"])
    return None


async def find_stream_orphan(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str,
    after_ts: str,
    bot_user: str,
    taken: Collection[str] = (),
) -> str | None:
    """The stream a lost `chat.startStream` response left: the first message of ours in the
    thread after the question (`after_ts`, Slack's clock) carrying no metadata and not
    another answer's (`taken`). `chat.startStream` takes no metadata
    (https://docs.slack.dev/reference/methods/chat.startStream), so a stream is only
    recognisable this way until it is stopped with its answer id."""
    async for msg in _thread_messages(client, channel=channel, thread_ts=thread_ts):
        ts = str(msg.get("ts") or "")
        if (
            msg.get("user") == bot_user
            and not msg.get("metadata")
            and ts not in taken
            and float(ts or 0) > float(after_ts)
        ):
            return ts
    return None


async def stop_stream(
    client: AsyncWebClient, *, channel: str, ts: str, answer_id: str | None = None
) -> bool:
    """End the stream `ts` if it is still open (with the answer's metadata, when given);
    False when Slack refused. A stream Slack already ended (it expires a few minutes after
    its last append: https://github.com/slackapi/python-slack-sdk/issues/1859) answers
    `message_not_in_streaming_state`; `chat.update` is then the only way to finish it
    (slack_sdk's `AsyncChatStream.ts` exists for that: python-slack-sdk PR #1880)."""
    meta = answer_metadata(answer_id) if answer_id else None
    try:
        await client.chat_stopStream(channel=channel, ts=ts, metadata=meta)
        return True
    except (SlackApiError, *CONNECTION_ERRORS) as exc:
        log.info("stopStream of %s refused (%s)", ts, error_code(exc))
        return False


async def finish_message(
    client: AsyncWebClient, *, channel: str, ts: str, answer_id: str, **fields: Any
) -> None:
    """Make the message `ts` (a stream a crash or a lost response left open) the finished
    answer `answer_id`: its stream stopped, then its text and blocks replaced."""
    await stop_stream(client, channel=channel, ts=ts, answer_id=answer_id)
    await client.chat_update(channel=channel, ts=ts, metadata=answer_metadata(answer_id), **fields)


def error_code(exc: BaseException) -> Any:
    """Slack's error string, or the exception's type for a connection error."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return exc.response.get("error")
    return type(exc).__name__


async def post_answer_once(
    client: AsyncWebClient, *, channel: str, thread_ts: str, answer_id: str, **fields: Any
) -> str:
    """`chat.postMessage` of the answer `answer_id` into its thread, at most once: a lost
    response is followed by a look for the message before any repeat. Returns its ts."""
    last: BaseException | None = None
    for _ in range(POST_ATTEMPTS):
        if last is not None:
            found = await find_answer_message(
                client, channel=channel, thread_ts=thread_ts, answer_id=answer_id
            )
            if found:
                log.info("answer %s was posted before its response was lost", answer_id)
                return found
        try:
            resp = await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                metadata=answer_metadata(answer_id),
                **fields,
            )
            return str(resp["ts"])
        except Exception as exc:
            if not lost_response(exc):
                raise
            last = exc
    assert last is not None
    raise last
