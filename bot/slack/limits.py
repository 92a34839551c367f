"""Per-user rate limit and a global cap on answers in progress (per process).

Both protect the language model, the knowledge base and Slack's rate limits from a burst;
people over a limit get a friendly sentence instead of silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

RATE_LIMITED = (
    "You're asking faster than I can answer: please wait a minute and ask again. "
    "(Limit: {limit} questions a minute.)"
)
BUSY = "I'm answering a lot of questions right now: please ask again in a few seconds."


class UserRateLimiter:
    """At most `per_minute` questions per user in any 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, user: str) -> bool:
        now = self._clock()
        window = self._seen.setdefault(user, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self._seen) > 10_000:  # forget idle users so memory stays flat
            for key in [k for k, v in self._seen.items() if not v or now - v[-1] >= 60.0]:
                del self._seen[key]
        return True


class Busy(Exception):
    """The global cap on answers in progress is reached."""


class ConcurrencyGate:
    """At most `limit` answers being started; up to `queue` more wait for a slot in order
    (a burst is answered, not refused), and only a question beyond those is Busy.

    First words first: an answer gives its slot back once its text is in the thread
    (`Slot.release`), and its last steps (sources and buttons, its records) wait until no
    answer is being started or waits to be (`after_starts`), so under a burst every asker
    sees words early instead of all of them seeing complete answers late."""

    def __init__(self, limit: int, queue: int = 0) -> None:
        self.limit = limit
        self.queue = queue
        self.active = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(limit)
        self._idle = asyncio.Event()  # nothing being started, nothing waiting
        self._idle.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        if self.active >= self.limit and self.waiting >= self.queue:
            raise Busy()
        self.waiting += 1
        self._idle.clear()
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            slot.release()

    def _release(self) -> None:
        self.active -= 1
        self._slots.release()
        if not self.active and not self.waiting:
            self._idle.set()

    async def after_starts(self, limit: float) -> None:
        """Return once no answer is being started or waits to be, or after `limit` s."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self._idle.wait()


class Slot:
    """One answer's slot; given back once, early or at the end."""

    def __init__(self, gate: ConcurrencyGate) -> None:
        self._gate: ConcurrencyGate | None = gate

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release()
