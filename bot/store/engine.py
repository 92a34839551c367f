"""The engine under `SqlStore`: URLs, SQLite set-up, transactions, error mapping, leases.

Every operation is one short transaction (`_tx`, or `_read` for pure reads); database and
network failures leave as `StoreError` with the password hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.store import migrate
from bot.store.base import StoreError
from bot.store.sealing import Sealer

# SQLite waits this long for another process's write lock before giving up.
SQLITE_BUSY_SECONDS = 30.0
_T = TypeVar("_T")
_READ_ONLY = "avatarbot_read_only"  # execution option: a transaction that only reads


def normalise_url(url: str) -> URL:
    """`postgresql://`/`postgres://` -> asyncpg, `sqlite://` -> aiosqlite; others unchanged."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq's sslmode (in URLs copied from hosting providers) is asyncpg's `ssl`
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise StoreError(f"DATABASE_URL must be a postgresql:// URL, not {parsed.drivername}://")
    return parsed


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(path))


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE (SQLAlchemy's documented aiosqlite recipe)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that reads and then
        # writes fails at once ("database is locked") when another process wrote in between.
        # Pure reads stay deferred: in WAL mode they neither wait for nor block writers.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class SqlEngine:
    """One SQLAlchemy async engine and the transaction helpers every table group uses."""

    def __init__(
        self,
        url: str | URL,
        *,
        sealer: Sealer,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.1,
    ) -> None:
        self.url = normalise_url(url) if isinstance(url, str) else url
        self._sealer = sealer
        self._clock = clock
        self._poll_interval = poll_interval
        self._engine: AsyncEngine | None = None
        self._pg = self.url.get_backend_name() == "postgresql"
        self._statements: dict[Any, Any] = {}  # built once, values bound at execution
        self._writing: asyncio.Lock | None = None  # SQLite: this process's writers in turn
        self._writes: list[tuple[Callable[[AsyncConnection], Awaitable[Any]], Any]] = []
        self._committing = False  # a `_together` transaction is running
        self._wrote = 0  # this process's write transactions, counted (see `_shared`)
        self._reading: dict[Any, tuple[int, asyncio.Future[Any]]] = {}

    def __repr__(self) -> str:
        return f"SqlStore({self.where})"

    @property
    def where(self) -> str:
        """The database, for messages: password hidden."""
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._engine is not None:
            return
        if self._pg:
            # No pre-ping (a round trip per operation): a connection broken by a server
            # restart fails one operation with StoreError and the pool drops it.
            engine = create_async_engine(self.url, pool_reset_on_return=None)
        else:
            if self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(
                self.url,
                connect_args={"timeout": SQLITE_BUSY_SECONDS},
                # every _tx() ends its transaction itself: no extra ROLLBACK on return
                pool_reset_on_return=None,
            )
            _sqlite_pragmas(engine)
        self._engine = engine
        # SQLite lets one writer in at a time; the others sleep in its busy handler with a
        # growing back-off (up to 100 ms a nap), so writes racing inside one process (a
        # burst's claims and answers) waited hundreds of ms for a lock free within a few.
        # They take turns here instead; other processes still meet the busy timeout.
        self._writing = None if self._pg else asyncio.Lock()
        try:
            await migrate.upgrade(engine)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            self._engine = None
            await engine.dispose()
            raise self._error(exc) from exc

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ping(self) -> None:
        async with self._read() as c:
            await c.execute(sa.text("SELECT 1"))

    def _error(self, exc: BaseException) -> StoreError:
        cause = getattr(exc, "orig", None) or exc
        detail = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
        name = type(cause).__name__
        return StoreError(
            f"The state store ({self.where}) failed: {name}" + (f": {detail}" if detail else "")
        )

    @contextlib.asynccontextmanager
    async def _tx(self, read_only: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction; database and network failures become StoreError."""
        if self._engine is None:
            raise StoreError("The state store is not started.")
        turn = self._writing if self._writing is not None and not read_only else None
        try:
            async with turn or contextlib.nullcontext(), self._engine.connect() as conn:
                if read_only:
                    await conn.execution_options(**{_READ_ONLY: True})
                async with conn.begin():
                    yield conn
            if not read_only:
                self._wrote += 1
        except StoreError:
            raise
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._error(exc) from exc

    async def _together(self, write: Callable[[AsyncConnection], Awaitable[_T]]) -> _T:
        """Run `write` in a transaction shared with the writes asked for meanwhile (group
        commit): under a burst, claims and answer records made at the same moment cost one
        BEGIN/COMMIT and one turn at the write lock, not one each. A write that must fail
        returns its verdict and raises after; a failing transaction fails all of its writes."""
        loop = asyncio.get_running_loop()
        mine: asyncio.Future[Any] = loop.create_future()
        self._writes.append((write, mine))
        if not self._committing:
            self._committing = True
            try:
                while self._writes:
                    batch, self._writes = self._writes, []
                    try:
                        async with self._tx() as c:
                            results = [await w(c) for w, _ in batch]
                    except BaseException as exc:  # every write of the batch hears it
                        for _, future in batch:
                            if not future.done():
                                future.set_exception(exc)
                        if not isinstance(exc, Exception):
                            raise
                    else:
                        for (_, future), result in zip(batch, results, strict=True):
                            future.set_result(result)
            finally:
                self._committing = False
        return await mine

    async def _shared(self, key: Any, read: Callable[[], Awaitable[_T]]) -> _T:
        """`read()`, or the same read already running, when it began after this process's
        last write (so a process always reads its own writes): a burst in one channel reads
        its settings once, not once per question."""
        running = self._reading.get(key)
        if running is not None and running[0] == self._wrote:
            return await asyncio.shield(running[1])
        task: asyncio.Future[_T] = asyncio.ensure_future(read())
        self._reading[key] = (self._wrote, task)
        try:
            return await asyncio.shield(task)
        finally:
            if self._reading.get(key, (0, None))[1] is task:
                del self._reading[key]

    def _read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A transaction that only reads (SQLite: does not take the write lock)."""
        return self._tx(read_only=True)

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT (both have on_conflict_do_nothing / on_conflict_do_update)."""
        return (postgresql.insert if self._pg else sqlite.insert)(table)

    async def _update_leased(
        self,
        key: sa.Column[Any],
        key_value: str,
        owner_column: sa.Column[Any],
        owner: str,
        values: dict[str, Any],
    ) -> Any:
        """UPDATE one row only while `owner` holds its unexpired lease; the row, or None."""
        table = key.table
        async with self._tx() as c:
            return (
                await c.execute(
                    sa.update(table)
                    .where(
                        key == key_value,
                        owner_column == owner,
                        table.c.lease_until > self._clock(),
                    )
                    .values(**(values or {owner_column.name: owner}))  # nothing: a lease check
                    .returning(*table.c)
                )
            ).first()
