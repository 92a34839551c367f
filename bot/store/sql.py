"""`SqlStore`: the `Store` on SQLite (embedded default) or PostgreSQL (SQLAlchemy 2 async).

One code path for both databases. Every claim is a single atomic statement or a short
transaction whose outcome the database decides: `INSERT … ON CONFLICT DO NOTHING` (the
dialect insert constructs), conditional `UPDATE … WHERE lease expired`, and job claims with
`SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite ignores the clause and instead
serialises writers: every SQLite transaction begins with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.store import migrate
from bot.store.base import (
    AnswerRecord,
    Feedback,
    LeaseLost,
    LiveLink,
    LiveSessionRecord,
    SpeechItem,
    StoreError,
    VideoJobRecord,
    VideoJobState,
)
from bot.store.schema import (
    FINISHED_JOB_STATES,
    answers,
    audit_log,
    bindings,
    claims,
    feedback,
    live_links,
    live_sessions,
    messages,
    speech_items,
    usage,
    video_jobs,
)
from bot.store.sealing import Sealer
from bot.store.subscription import (
    ChannelSubscription,
    PgSubscription,
    PollingSubscription,
    encode_payload,
)

# SQLite waits this long for another process's write lock before giving up.
SQLITE_BUSY_SECONDS = 30.0
# SQLite keeps replica messages this long (listeners poll far more often than that).
MESSAGE_KEEP_SECONDS = 600.0
_READ_ONLY = "avatarbot_read_only"  # execution option: a transaction that only reads

_JOB_FIXED = {"id", "dedupe_key", "created_at", "updated_at", "lease_owner", "lease_until"}
_JOB_CHANGEABLE = set(VideoJobRecord.model_fields) - _JOB_FIXED - {"attempts"}
_LIVE_CHANGEABLE = {
    "backend",
    "session_id",
    "session",
    "state",
    "lease_until",
    "started_at",
    "last_activity_at",
    "viewer_seen_at",
}


def normalise_url(url: str) -> URL:
    """`postgresql://`/`postgres://` -> asyncpg, `sqlite://` -> aiosqlite; others unchanged."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq's sslmode (in URLs copied from hosting providers) is asyncpg's `ssl`
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
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


class SqlStore:
    """The `Store` on one SQLAlchemy async engine. Start it before use; close it after."""

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

    async def __aenter__(self) -> SqlStore:
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
        try:
            async with self._engine.connect() as conn:
                if read_only:
                    await conn.execution_options(**{_READ_ONLY: True})
                async with conn.begin():
                    yield conn
        except StoreError:
            raise
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise self._error(exc) from exc

    def _read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A transaction that only reads (SQLite: does not take the write lock)."""
        return self._tx(read_only=True)

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT (both have on_conflict_do_nothing / on_conflict_do_update)."""
        return (postgresql.insert if self._pg else sqlite.insert)(table)

    # --- one-shot claims ---------------------------------------------------------------

    async def claim_once(self, namespace: str, key: str, ttl_seconds: float) -> bool:
        now = self._clock()
        async with self._tx() as c:
            inserted = await c.execute(
                self._insert(claims)
                .values(namespace=namespace, key=key, expires_at=now + ttl_seconds)
                .on_conflict_do_nothing()
            )
            if inserted.rowcount == 1:
                return True
            # An expired claim is taken over by exactly one caller: the WHERE is re-checked
            # under the row lock, so a second racer finds it unexpired and updates nothing.
            renewed = await c.execute(
                sa.update(claims)
                .where(
                    claims.c.namespace == namespace,
                    claims.c.key == key,
                    claims.c.expires_at <= now,
                )
                .values(expires_at=now + ttl_seconds)
            )
            return renewed.rowcount == 1

    # --- answers, feedback ---------------------------------------------------------------

    async def save_answer(self, answer: AnswerRecord) -> None:
        values = answer.model_dump()
        values["created_at"] = answer.created_at or self._clock()
        stmt = self._insert(answers).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[answers.c.id],
            set_={k: stmt.excluded[k] for k in values if k != "id"},
        )
        async with self._tx() as c:
            await c.execute(stmt)

    async def get_answer(self, answer_id: str) -> AnswerRecord | None:
        async with self._read() as c:
            row = (await c.execute(sa.select(answers).where(answers.c.id == answer_id))).first()
        return AnswerRecord.model_validate(row._asdict()) if row else None

    async def set_answer_message(self, answer_id: str, message_ts: str) -> None:
        async with self._tx() as c:
            result = await c.execute(
                sa.update(answers).where(answers.c.id == answer_id).values(message_ts=message_ts)
            )
        if result.rowcount == 0:
            raise StoreError(f"No answer {answer_id!r} in the state store.")

    async def thread_answers(self, channel: str, thread_ts: str) -> list[AnswerRecord]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(answers)
                .where(answers.c.channel == channel, answers.c.thread_ts == thread_ts)
                .order_by(answers.c.created_at, answers.c.id)
            )
        return [AnswerRecord.model_validate(r._asdict()) for r in rows]

    async def record_feedback(
        self, answer_id: str, user: str, value: Feedback, comment: str | None = None
    ) -> None:
        stmt = self._insert(feedback).values(
            answer_id=answer_id,
            user=user,
            value=Feedback(value).value,
            comment=comment,
            created_at=self._clock(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[feedback.c.answer_id, feedback.c.user],
            set_={k: stmt.excluded[k] for k in ("value", "comment", "created_at")},
        )
        async with self._tx() as c:
            await c.execute(stmt)

    async def feedback_counts(self, answer_id: str) -> dict[Feedback, int]:
        counts = dict.fromkeys(Feedback, 0)
        async with self._read() as c:
            rows = await c.execute(
                sa.select(feedback.c.value, sa.func.count())
                .where(feedback.c.answer_id == answer_id)
                .group_by(feedback.c.value)
            )
            for value, n in rows:
                counts[Feedback(value)] = int(n)
        return counts

    # --- channel -> datasource bindings ----------------------------------------------------

    async def bind(self, channel: str, datasource: str, by: str) -> None:
        async with self._tx() as c:
            await c.execute(
                self._insert(bindings)
                .values(
                    channel=channel, datasource=datasource, created_by=by, created_at=self._clock()
                )
                .on_conflict_do_nothing()
            )

    async def unbind(self, channel: str, datasource: str | None = None) -> int:
        stmt = sa.delete(bindings).where(bindings.c.channel == channel)
        if datasource is not None:
            stmt = stmt.where(bindings.c.datasource == datasource)
        async with self._tx() as c:
            return (await c.execute(stmt)).rowcount

    async def bindings(self, channel: str) -> list[str]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(bindings.c.datasource)
                .where(bindings.c.channel == channel)
                .order_by(bindings.c.created_at, bindings.c.datasource)
            )
            return [r[0] for r in rows]

    # --- video jobs ------------------------------------------------------------------------

    async def create_video_job(self, job: VideoJobRecord) -> tuple[VideoJobRecord, bool]:
        now = self._clock()
        values = job.model_dump()
        values["state"] = VideoJobState(job.state).value
        values["created_at"] = job.created_at or now
        values["updated_at"] = job.updated_at or now
        # The partial unique index (one unfinished job per dedupe_key) decides the race.
        for _ in range(5):
            async with self._tx() as c:
                inserted = await c.execute(
                    self._insert(video_jobs).values(**values).on_conflict_do_nothing()
                )
                if inserted.rowcount == 1:
                    return VideoJobRecord.model_validate(values), True
                row = (
                    await c.execute(
                        sa.select(video_jobs).where(
                            video_jobs.c.dedupe_key == job.dedupe_key,
                            video_jobs.c.state.notin_(FINISHED_JOB_STATES),
                        )
                    )
                ).first()
                if row is None:  # same id inserted before (a retry of this very call)
                    row = (
                        await c.execute(sa.select(video_jobs).where(video_jobs.c.id == job.id))
                    ).first()
                if row is not None:
                    return VideoJobRecord.model_validate(row._asdict()), False
            # the conflicting job finished between our insert and our read: try again
        raise StoreError(f"Could not create video job {job.id!r}: it keeps conflicting.")

    async def _one_job(self, where: Any) -> VideoJobRecord | None:
        async with self._read() as c:
            row = (
                await c.execute(
                    sa.select(video_jobs).where(where).order_by(video_jobs.c.created_at.desc())
                )
            ).first()
        return VideoJobRecord.model_validate(row._asdict()) if row else None

    async def get_video_job(self, job_id: str) -> VideoJobRecord | None:
        return await self._one_job(video_jobs.c.id == job_id)

    async def find_video_job(self, heygen_video_id: str) -> VideoJobRecord | None:
        return await self._one_job(video_jobs.c.heygen_video_id == heygen_video_id)

    async def claim_video_job(
        self, owner: str, lease_seconds: float, job_id: str | None = None
    ) -> VideoJobRecord | None:
        now = self._clock()
        claimable = sa.and_(
            video_jobs.c.state.notin_(FINISHED_JOB_STATES), video_jobs.c.lease_until <= now
        )
        pick = sa.select(video_jobs.c.id).where(claimable)
        if job_id is not None:
            pick = pick.where(video_jobs.c.id == job_id)
        # SKIP LOCKED: concurrent claimers on PostgreSQL each get a different job instead of
        # queueing behind the same row (SQLite has one writer at a time anyway).
        pick = pick.order_by(video_jobs.c.created_at, video_jobs.c.id).limit(1)
        pick = pick.with_for_update(skip_locked=True)
        async with self._tx() as c:
            picked = (await c.execute(pick)).scalar()
            if picked is None:
                return None
            row = (
                await c.execute(
                    sa.update(video_jobs)
                    .where(video_jobs.c.id == picked, claimable)
                    .values(
                        lease_owner=owner,
                        lease_until=now + lease_seconds,
                        attempts=video_jobs.c.attempts + 1,
                        updated_at=now,
                    )
                    .returning(*video_jobs.c)
                )
            ).first()
        return VideoJobRecord.model_validate(row._asdict()) if row else None

    async def update_video_job(self, job_id: str, owner: str, **changes: Any) -> VideoJobRecord:
        unknown = set(changes) - _JOB_CHANGEABLE
        if unknown:
            raise TypeError(f"video job fields that cannot be changed: {sorted(unknown)}")
        if "state" in changes:
            changes["state"] = VideoJobState(changes["state"]).value
        changes["updated_at"] = self._clock()
        row = await self._update_leased(
            video_jobs.c.id, job_id, video_jobs.c.lease_owner, owner, changes
        )
        if row is None:
            if await self.get_video_job(job_id) is None:
                raise StoreError(f"No video job {job_id!r} in the state store.")
            raise LeaseLost(f"{owner} no longer holds the lease on video job {job_id!r}.")
        return VideoJobRecord.model_validate(row._asdict())

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

    async def renew_video_job(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        now = self._clock()
        async with self._tx() as c:
            result = await c.execute(
                sa.update(video_jobs)
                .where(
                    video_jobs.c.id == job_id,
                    video_jobs.c.lease_owner == owner,
                    video_jobs.c.state.notin_(FINISHED_JOB_STATES),
                )
                .values(lease_until=now + lease_seconds, updated_at=now)
            )
            return result.rowcount == 1

    async def release_video_job(self, job_id: str, owner: str) -> None:
        async with self._tx() as c:
            await c.execute(
                sa.update(video_jobs)
                .where(video_jobs.c.id == job_id, video_jobs.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=0.0, updated_at=self._clock())
            )

    async def unfinished_video_jobs(self) -> list[VideoJobRecord]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(video_jobs)
                .where(video_jobs.c.state.notin_(FINISHED_JOB_STATES))
                .order_by(video_jobs.c.created_at, video_jobs.c.id)
            )
            return [VideoJobRecord.model_validate(r._asdict()) for r in rows]

    # --- live sessions -----------------------------------------------------------------------

    def _live(self, row: Any) -> LiveSessionRecord:
        data = row._asdict()
        data["session"] = self._sealer.open(data.pop("session_sealed"))
        return LiveSessionRecord.model_validate(data)

    async def claim_live_scope(
        self, scope: str, backend: str, owner: str, lease_seconds: float
    ) -> tuple[LiveSessionRecord, bool]:
        now = self._clock()
        fresh = {
            "backend": backend,
            "session_id": None,
            "session_sealed": None,
            "state": "starting",
            "started_at": now,
            "last_activity_at": now,
            "viewer_seen_at": 0.0,
        }
        lease = {"owner": owner, "lease_until": now + lease_seconds}
        async with self._tx() as c:
            inserted = await c.execute(
                self._insert(live_sessions)
                .values(scope=scope, **fresh, **lease)
                .on_conflict_do_nothing()
            )
            won = inserted.rowcount == 1
            if not won:
                taken = await c.execute(
                    sa.update(live_sessions)
                    .where(
                        live_sessions.c.scope == scope,
                        sa.or_(
                            live_sessions.c.owner.is_(None),
                            live_sessions.c.owner == owner,
                            live_sessions.c.lease_until <= now,
                        ),
                    )
                    .values(**lease)
                )
                won = taken.rowcount == 1
                if won:
                    # A closed session cannot be reused: the new holder starts afresh.
                    await c.execute(
                        sa.update(live_sessions)
                        .where(live_sessions.c.scope == scope, live_sessions.c.state == "closed")
                        .values(**fresh)
                    )
            row = (
                await c.execute(sa.select(live_sessions).where(live_sessions.c.scope == scope))
            ).one()
        return self._live(row), won

    async def get_live_session(self, scope: str) -> LiveSessionRecord | None:
        async with self._read() as c:
            row = (
                await c.execute(sa.select(live_sessions).where(live_sessions.c.scope == scope))
            ).first()
        return self._live(row) if row else None

    async def update_live_session(
        self, scope: str, owner: str, **changes: Any
    ) -> LiveSessionRecord:
        unknown = set(changes) - _LIVE_CHANGEABLE
        if unknown:
            raise TypeError(f"live session fields that cannot be changed: {sorted(unknown)}")
        if "session" in changes:
            changes["session_sealed"] = self._sealer.seal(changes.pop("session"))
        row = await self._update_leased(
            live_sessions.c.scope, scope, live_sessions.c.owner, owner, changes
        )
        if row is None:
            raise LeaseLost(f"{owner} does not hold the live session lease of {scope!r}.")
        return self._live(row)

    async def mark_viewer_seen(self, scope: str) -> None:
        """A viewer page reported itself connected (any replica may say so; no lease)."""
        async with self._tx() as c:
            await c.execute(
                sa.update(live_sessions)
                .where(live_sessions.c.scope == scope)
                .values(viewer_seen_at=self._clock())
            )

    async def live_sessions(
        self, states: Sequence[str] = ("starting", "live")
    ) -> list[LiveSessionRecord]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(live_sessions)
                .where(live_sessions.c.state.in_(list(states)))
                .order_by(live_sessions.c.started_at, live_sessions.c.scope)
            )
            return [self._live(r) for r in rows]

    # --- viewer links ------------------------------------------------------------------------

    async def live_link(self, scope: str, ttl_seconds: float) -> LiveLink:
        for _ in range(5):
            now = self._clock()
            async with self._tx() as c:
                row = (
                    await c.execute(sa.select(live_links).where(live_links.c.current_for == scope))
                ).first()
                if row is not None and row.expires_at > now:
                    return LiveLink(**_link_fields(row))
                if row is not None:
                    await c.execute(
                        sa.update(live_links)
                        .where(live_links.c.token == row.token)
                        .values(current_for=None)
                    )
                link = LiveLink(
                    token=secrets.token_urlsafe(24),  # 192 bits
                    scope=scope,
                    created_at=now,
                    expires_at=now + ttl_seconds,
                )
                inserted = await c.execute(
                    self._insert(live_links)
                    .values(**link.model_dump(), current_for=scope)
                    .on_conflict_do_nothing()
                )
                if inserted.rowcount == 1:
                    return link
            # another replica made the scope's link first: read theirs
        raise StoreError(f"Could not make a viewer link for {scope!r}.")

    async def resolve_live_link(self, token: str) -> LiveLink | None:
        async with self._read() as c:
            row = (
                await c.execute(sa.select(live_links).where(live_links.c.token == token))
            ).first()
        return LiveLink(**_link_fields(row)) if row else None

    # --- speech queue --------------------------------------------------------------------------

    async def enqueue_speech(
        self, scope: str, answer_id: str, sentences: Sequence[str]
    ) -> list[SpeechItem]:
        now = self._clock()
        items: list[SpeechItem] = []
        async with self._tx() as c:
            last = await c.scalar(
                sa.select(sa.func.max(speech_items.c.seq)).where(
                    speech_items.c.answer_id == answer_id
                )
            )
            seq = -1 if last is None else last
            for text in sentences:
                seq += 1
                values = {
                    "scope": scope,
                    "answer_id": answer_id,
                    "seq": seq,
                    "text": text,
                    "created_at": now,
                }
                new_id = await c.scalar(
                    sa.insert(speech_items).values(**values).returning(speech_items.c.id)
                )
                items.append(SpeechItem(id=new_id, **values))
        return items

    async def _speech(self, where: Any, order: Any) -> list[SpeechItem]:
        async with self._read() as c:
            rows = await c.execute(sa.select(speech_items).where(where).order_by(order))
            return [SpeechItem.model_validate(r._asdict()) for r in rows]

    async def pending_speech(self, scope: str) -> list[SpeechItem]:
        return await self._speech(
            sa.and_(speech_items.c.scope == scope, speech_items.c.published_at.is_(None)),
            speech_items.c.id,
        )

    async def claim_speech(self, item_id: int, publisher: str) -> bool:
        async with self._tx() as c:
            result = await c.execute(
                sa.update(speech_items)
                .where(speech_items.c.id == item_id, speech_items.c.published_at.is_(None))
                .values(published_at=self._clock(), publisher=publisher)
            )
            return result.rowcount == 1

    async def drop_pending_speech(self, scope: str, except_answer: str | None = None) -> int:
        stmt = sa.delete(speech_items).where(
            speech_items.c.scope == scope, speech_items.c.published_at.is_(None)
        )
        if except_answer is not None:
            stmt = stmt.where(speech_items.c.answer_id != except_answer)
        async with self._tx() as c:
            return (await c.execute(stmt)).rowcount

    async def answer_speech(self, answer_id: str) -> list[SpeechItem]:
        return await self._speech(speech_items.c.answer_id == answer_id, speech_items.c.seq)

    # --- messages between replicas ---------------------------------------------------------------

    async def notify(self, channel: str, payload: dict[str, Any]) -> None:
        text = encode_payload(channel, payload)
        now = self._clock()
        async with self._tx() as c:
            if self._pg:
                await c.execute(sa.select(sa.func.pg_notify(channel, text)))
            else:
                await c.execute(
                    sa.insert(messages).values(channel=channel, payload=payload, created_at=now)
                )
                await c.execute(
                    sa.delete(messages).where(messages.c.created_at < now - MESSAGE_KEEP_SECONDS)
                )

    def listen(self, channel: str) -> ChannelSubscription:
        if self._engine is None:
            raise StoreError("The state store is not started.")
        if self._pg:
            return PgSubscription(self._engine, channel)
        return PollingSubscription(self._read, channel, self._poll_interval)

    # --- usage counters ---------------------------------------------------------------------

    async def add_usage(self, kind: str, key: str, day: str, amount: float) -> float:
        stmt = self._insert(usage).values(kind=kind, key=key, day=day, amount=amount)
        stmt = stmt.on_conflict_do_update(
            index_elements=[usage.c.kind, usage.c.key, usage.c.day],
            set_={"amount": usage.c.amount + stmt.excluded.amount},
        ).returning(usage.c.amount)
        async with self._tx() as c:
            return float(await c.scalar(stmt))

    async def usage(self, kind: str, key: str, day: str) -> float:
        async with self._read() as c:
            value = await c.scalar(
                sa.select(usage.c.amount).where(
                    usage.c.kind == kind, usage.c.key == key, usage.c.day == day
                )
            )
        return float(value or 0.0)

    # --- audit log ---------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        async with self._tx() as c:
            await c.execute(
                sa.insert(audit_log).values(
                    at=self._clock(), actor=actor, action=action, detail=detail
                )
            )

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
            )
            return [r._asdict() for r in rows]

    # --- retention ---------------------------------------------------------------------------

    async def purge(self, older_than: float) -> int:
        now = self._clock()
        old_answers = sa.select(answers.c.id).where(answers.c.created_at < older_than)
        statements = [
            sa.delete(feedback).where(
                sa.or_(feedback.c.created_at < older_than, feedback.c.answer_id.in_(old_answers))
            ),
            sa.delete(answers).where(answers.c.created_at < older_than),
            sa.delete(speech_items).where(speech_items.c.created_at < older_than),
            sa.delete(claims).where(claims.c.expires_at <= now),
            sa.delete(live_links).where(live_links.c.expires_at < older_than),
            sa.delete(video_jobs).where(
                video_jobs.c.state.in_(FINISHED_JOB_STATES), video_jobs.c.updated_at < older_than
            ),
            sa.delete(live_sessions).where(
                live_sessions.c.state == "closed", live_sessions.c.last_activity_at < older_than
            ),
            sa.delete(messages).where(messages.c.created_at < older_than),
        ]
        removed = 0
        async with self._tx() as c:
            for stmt in statements:
                removed += (await c.execute(stmt)).rowcount
        return removed


def _link_fields(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in ("token", "scope", "created_at", "expires_at")}
