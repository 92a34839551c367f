"""State-store fixtures (loaded by tests/conftest.py for every test module).

- `store`: a started SqlStore on SQLite in tmp_path, real clock. What the Slack and avatar
  tests use.
- `any_store`: the same tests on SQLite AND a real PostgreSQL server (one per test session,
  a fresh database per test), with `store_clock` (a FakeClock tests advance: leases expire
  without sleeping).
- `postgres`: the session's PostgreSQL server (skips when it cannot start, FAILS under CI=true).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from bot.store.sealing import Sealer
from bot.store.sql import SqlStore, sqlite_url
from tests.fakes.clock import FakeClock
from tests.postgres_server import PostgresServer, PostgresUnavailable

BACKENDS = ["sqlite", "postgresql"]
_databases = itertools.count()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server: PostgresServer | None = None
    try:
        server = PostgresServer()
        server.start()
    except PostgresUnavailable as exc:
        if server is not None:
            server.stop()  # remove what initdb left
        if in_ci():
            pytest.fail(f"PostgreSQL could not be started in CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


async def fresh_postgres_database(server: PostgresServer) -> str:
    """A new empty database on the server; returns its URL."""
    name = f"t{os.getpid()}_{next(_databases)}"
    conn = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user=server.user, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


@pytest.fixture
def store_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def store_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, store_key: str) -> AsyncIterator[SqlStore]:
    """A started SQLite SqlStore in tmp_path (real clock)."""
    async with SqlStore(
        sqlite_url(tmp_path / "state.db"), sealer=Sealer([store_key.encode()])
    ) as s:
        yield s


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of each backend."""
    if request.param == "sqlite":
        return str(sqlite_url(tmp_path / "state.db"))
    server: PostgresServer = request.getfixturevalue("postgres")
    return asyncio.run(fresh_postgres_database(server))


@pytest.fixture
async def any_store(
    store_url: str, store_key: str, store_clock: FakeClock
) -> AsyncIterator[SqlStore]:
    """A started SqlStore on each backend, reading `store_clock`."""
    async with SqlStore(
        store_url, sealer=Sealer([store_key.encode()]), clock=store_clock, poll_interval=0.02
    ) as s:
        yield s
