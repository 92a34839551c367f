"""`SqlStore`: the `Store` on SQLite (embedded default) or PostgreSQL (SQLAlchemy 2 async).

One code path for both databases. Every claim is a single atomic statement or a short
transaction whose outcome the database decides: `INSERT … ON CONFLICT DO NOTHING` (the
dialect insert constructs), conditional `UPDATE … WHERE lease expired`, and job claims with
`SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite ignores the clause and instead
serialises writers: every SQLite transaction begins with BEGIN IMMEDIATE).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.store.base import StoreError
from bot.store.conversations import ConversationTables
from bot.store.engine import SQLITE_BUSY_SECONDS, normalise_url, sqlite_url
from bot.store.live import ScopeTables
from bot.store.schema import (
    FINISHED_JOB_STATES,
    answers,
    audit_log,
    claims,
    feedback,
    live_links,
    live_sessions,
    messages,
    speech_items,
    usage,
    video_jobs,
)
from bot.store.subscription import (
    ChannelSubscription,
    PgSubscription,
    PollingSubscription,
    encode_payload,
)
from bot.store.video_jobs import VideoJobTables

__all__ = ["SQLITE_BUSY_SECONDS", "SqlStore", "normalise_url", "sqlite_url"]

# SQLite keeps replica messages this long (listeners poll far more often than that).
MESSAGE_KEEP_SECONDS = 600.0


class SqlStore(ConversationTables, VideoJobTables, ScopeTables):
    """The `Store` on one SQLAlchemy async engine. Start it before use; close it after.

    Construct with a URL and a `Sealer` (or use `open_store(settings)`); `clock` is read for
    every timestamp and lease (tests pass a fake one).
    """

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
