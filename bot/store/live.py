"""Live sessions, viewer links and the speech queue (part of `SqlStore`)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from bot.store.base import (
    DROPPED,
    AnswerRecord,
    LeaseLost,
    LiveLink,
    ScopeAnswer,
    ScopeRecord,
    ScopeState,
    SpeechItem,
    StoreError,
)
from bot.store.engine import SqlEngine
from bot.store.schema import (
    answers,
    live_links,
    live_sessions,
    speech_items,
)

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


class ScopeTables(SqlEngine):
    """Live sessions, viewer links, the speech queue."""

    # --- live sessions -----------------------------------------------------------------------

    def _live(self, row: Any) -> ScopeRecord:
        data = row._asdict()
        data["session"] = self._sealer.open(data.pop("session_sealed"))
        return ScopeRecord.model_validate(data)

    async def claim_live_scope(
        self, scope: str, backend: str, owner: str, lease_seconds: float
    ) -> tuple[ScopeRecord, bool]:
        now = self._clock()
        fresh = {
            "backend": backend,
            "session_id": None,
            "session_sealed": None,
            "state": ScopeState.STARTING,
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
                        .where(
                            live_sessions.c.scope == scope,
                            live_sessions.c.state == ScopeState.CLOSED,
                        )
                        .values(**fresh)
                    )
            row = (
                await c.execute(sa.select(live_sessions).where(live_sessions.c.scope == scope))
            ).one()
        return self._live(row), won

    async def get_live_session(self, scope: str) -> ScopeRecord | None:
        async with self._read() as c:
            row = (
                await c.execute(sa.select(live_sessions).where(live_sessions.c.scope == scope))
            ).first()
        return self._live(row) if row else None

    async def update_live_session(self, scope: str, owner: str, **changes: Any) -> ScopeRecord:
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
        self, states: Sequence[str] = (ScopeState.STARTING, ScopeState.LIVE)
    ) -> list[ScopeRecord]:
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
        # Marked, not deleted: the interrupted answer stays in the scope's transcript and can
        # be replayed; marked rows are out of the queue and can never be claimed.
        stmt = (
            sa.update(speech_items)
            .where(speech_items.c.scope == scope, speech_items.c.published_at.is_(None))
            .values(published_at=self._clock(), publisher=DROPPED)
        )
        if except_answer is not None:
            stmt = stmt.where(speech_items.c.answer_id != except_answer)
        async with self._tx() as c:
            return (await c.execute(stmt)).rowcount

    async def answer_speech(self, answer_id: str) -> list[SpeechItem]:
        return await self._speech(speech_items.c.answer_id == answer_id, speech_items.c.seq)

    async def scope_answers(self, scope: str, limit: int = 20) -> list[ScopeAnswer]:
        # Newest by the last sentence queued (ids only grow), so a replay moves an answer to
        # the end as the page shows it; ix_speech_scope_answer answers the GROUP BY alone.
        last = sa.func.max(speech_items.c.id).label("last")
        async with self._read() as c:
            recent = (
                await c.execute(
                    sa.select(speech_items.c.answer_id, last)
                    .where(speech_items.c.scope == scope)
                    .group_by(speech_items.c.answer_id)
                    .order_by(last.desc())
                    .limit(limit)
                )
            ).all()
            ids = [r.answer_id for r in reversed(recent)]
            if not ids:
                return []
            records = {
                r.id: AnswerRecord.model_validate(r._asdict())
                for r in await c.execute(sa.select(answers).where(answers.c.id.in_(ids)))
            }
            spoken: dict[str, list[str]] = {a: [] for a in ids}
            for r in await c.execute(
                sa.select(speech_items.c.answer_id, speech_items.c.text)
                .where(speech_items.c.scope == scope, speech_items.c.answer_id.in_(ids))
                .order_by(speech_items.c.answer_id, speech_items.c.seq)
            ):
                if r.text not in spoken[r.answer_id]:  # a replay queues the same sentences
                    spoken[r.answer_id].append(r.text)
        return [ScopeAnswer(answer_id=a, answer=records.get(a), sentences=spoken[a]) for a in ids]


def _link_fields(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in ("token", "scope", "created_at", "expires_at")}
