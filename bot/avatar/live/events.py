"""Events between replicas about live scopes, fanned out to this process's listeners.

Anything a viewer page or another replica must learn (a new sentence to speak, a new
session behind a link, a viewer that connected) is published with `store.notify` on one
channel, so nothing correct depends on which replica holds a page's SSE connection. Local
listeners get an event at once; the copy that comes back through `store.listen` is dropped
by its origin, so each listener sees each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from bot.store.base import Store, StoreError

log = logging.getLogger(__name__)

CHANNEL = "avatar-live"

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class BusEvent(StrEnum):
    """The `kind` of an event on the bus; the page hears the ones in `PAGE_EVENTS` as SSE."""

    ANSWER = "answer"  # a new answer in the scope (`answer_id`)
    SPEECH = "speech"  # sentences queued (`items`)
    INTERRUPT = "interrupt"  # older answers' queued sentences dropped (`keep_answer`)
    SESSION = "session"  # a new vendor session behind the scope (`session_id`)
    ENDED = "ended"  # the scope's session closed (`reason`)
    VIEWER = "viewer"  # a viewer page is connected (`at`); replicas only


PAGE_EVENTS = frozenset({BusEvent.SPEECH, BusEvent.INTERRUPT, BusEvent.SESSION, BusEvent.ENDED})


class EventBus:
    """Publishes `BusEvent`s to this process's listeners and, through the store, to every
    other replica's."""

    def __init__(self, store: Store, origin: str) -> None:
        self.store = store
        self.origin = origin
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None

    def on_event(self, handler: Handler) -> None:
        """`handler` runs for every event (local or remote), in the listener's task."""
        self._handlers.append(handler)

    def subscribe(self, scope: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._queues[scope].add(queue)
        return queue

    def unsubscribe(self, scope: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues[scope].discard(queue)
        if not self._queues[scope]:
            del self._queues[scope]

    def local_subscribers(self, scope: str) -> int:
        return len(self._queues.get(scope, ()))

    async def publish(self, scope: str, kind: BusEvent, **data: Any) -> None:
        event = {"scope": scope, "kind": kind.value, "origin": self.origin, **data}
        event.setdefault("eid", uuid.uuid4().hex)
        await self._dispatch(event)
        try:
            await self.store.notify(CHANNEL, event)
        except StoreError as exc:  # local listeners already have it; others will resync
            log.warning("live event %s for other replicas not sent: %s", kind, exc)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        for queue in list(self._queues.get(event.get("scope", ""), ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page loses events, not us
                queue.put_nowait(event)
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception:  # one bad handler must not stop the bus
                log.exception("live event handler failed for %s", event.get("kind"))

    async def _listen(self) -> None:
        while True:
            try:
                async for event in self.store.listen(CHANNEL):
                    if event.get("origin") != self.origin:
                        await self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database blinked: listen again shortly
                log.warning("live event listener restarting: %s", exc)
                await asyncio.sleep(1.0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="avatar-live-bus")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
