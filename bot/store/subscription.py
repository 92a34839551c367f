"""Messages between replicas: `Store.notify` / `Store.listen`.

PostgreSQL: LISTEN/NOTIFY on a connection held for the subscription's lifetime. SQLite: rows
in the `messages` table, polled (every process on one machine shares the file). Either way a
subscription sees only messages sent after it started: `async with store.listen(ch) as sub`
guarantees it is listening when the block begins; plain `async for` starts on first use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.base import StoreError
from bot.store.schema import messages

# Payloads above PostgreSQL's NOTIFY limit (8000 bytes) are refused on both databases alike.
MAX_PAYLOAD_BYTES = 7900


def encode_payload(channel: str, payload: dict[str, Any]) -> str:
    text = json.dumps(payload, separators=(",", ":"))
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise StoreError(
            f"Message on {channel!r} is {len(text.encode())} bytes; at most "
            f"{MAX_PAYLOAD_BYTES} fit (send an id and keep the data in the store)."
        )
    return text


_closing: set[asyncio.Task[None]] = set()  # closes started by __del__, kept until done


class ChannelSubscription:
    """An async iterator of payloads on one channel; also an async context manager."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._started = False
        self._closed = False

    async def __aenter__(self) -> ChannelSubscription:
        await self._ensure_started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> ChannelSubscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._closed:
            raise StopAsyncIteration
        await self._ensure_started()
        return await self._next()

    async def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            await self._start()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._started:
                await self._stop()

    def __del__(self) -> None:
        # A bare `async for` abandoned (its task cancelled) never calls aclose(): give the
        # connection back when the subscription is collected, on the loop that is running.
        if self._started and not self._closed:
            self._closed = True
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            task = loop.create_task(self._stop())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def _start(self) -> None:
        raise NotImplementedError

    async def _next(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError


class PgSubscription(ChannelSubscription):
    """LISTEN on a pooled connection taken out for as long as the subscription lives."""

    def __init__(self, engine: AsyncEngine, channel: str) -> None:
        super().__init__(channel)
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        # The driver holds these callbacks: they reach the queue, never `self`, so an
        # abandoned subscription can still be collected (and closed by __del__).
        queue = self._queue

        def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            queue.put_nowait(json.loads(payload))

        def on_lost(_conn: object) -> None:
            queue.put_nowait(None)

        self._on_notify, self._on_lost = on_notify, on_lost

    async def _start(self) -> None:
        try:
            self._conn = await self._engine.connect()
            raw = await self._conn.get_raw_connection()
            self._driver = raw.driver_connection
            await self._driver.add_listener(self.channel, self._on_notify)
            self._driver.add_termination_listener(self._on_lost)
        except Exception as exc:
            await self._stop()
            raise StoreError(f"Cannot listen on {self.channel!r}: {exc}") from exc

    async def _next(self) -> dict[str, Any]:
        item = await self._queue.get()
        if item is None:
            raise StoreError(f"The database connection listening on {self.channel!r} closed.")
        return item

    async def _stop(self) -> None:
        driver, conn = self._driver, self._conn
        self._driver = self._conn = None
        if driver is not None and not driver.is_closed():
            try:
                driver.remove_termination_listener(self._on_lost)
                await driver.remove_listener(self.channel, self._on_notify)
            except Exception:  # the connection is going back or away regardless
                pass
        if conn is not None:
            await conn.close()


class PollingSubscription(ChannelSubscription):
    """Reads new rows of the `messages` table every `interval` seconds (SQLite)."""

    def __init__(
        self,
        connect: Callable[[], Any],
        channel: str,
        interval: float,
    ) -> None:
        super().__init__(channel)
        self._connect = connect  # () -> async context manager yielding a connection
        self._interval = interval
        self._last_id = 0
        self._buffer: list[dict[str, Any]] = []

    async def _start(self) -> None:
        async with self._connect() as conn:
            last = await conn.scalar(sa.select(sa.func.max(messages.c.id)))
        self._last_id = last or 0

    async def _next(self) -> dict[str, Any]:
        while not self._buffer:
            async with self._connect() as conn:
                rows = (
                    await conn.execute(
                        sa.select(messages.c.id, messages.c.payload)
                        .where(messages.c.channel == self.channel, messages.c.id > self._last_id)
                        .order_by(messages.c.id)
                        .limit(100)
                    )
                ).all()
            if rows:
                self._last_id = rows[-1].id
                self._buffer.extend(r.payload for r in rows)
            else:
                await asyncio.sleep(self._interval)
        return self._buffer.pop(0)

    async def _stop(self) -> None:
        self._buffer.clear()
