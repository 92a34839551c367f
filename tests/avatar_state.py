"""A started SQLite SqlStore sharing one FakeClock with the avatar service and the fakes,
so leases, idle timeouts and render deadlines pass without sleeping."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography.fernet import Fernet

from bot.store.sealing import Sealer
from bot.store.sql import SqlStore, sqlite_url
from tests.fakes.clock import FakeClock

KEY = Fernet.generate_key()


def state_clock() -> FakeClock:
    return FakeClock(start=float(int(time.time())))


@asynccontextmanager
async def sql_state(path: Path, clock: FakeClock) -> AsyncIterator[SqlStore]:
    async with SqlStore(
        sqlite_url(path), sealer=Sealer([KEY]), clock=clock, poll_interval=0.02
    ) as store:
        yield store
