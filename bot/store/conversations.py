"""Event-id claims, answers, feedback, channel bindings and the channels whose threads are
knowledge (part of `SqlStore`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.base import (
    AnswerRecord,
    Feedback,
    KnowledgeChannel,
    StoreError,
)
from bot.store.engine import SqlEngine
from bot.store.schema import (
    answers,
    bindings,
    channel_settings,
    claims,
    feedback,
    knowledge_channels,
)


class ConversationTables(SqlEngine):
    """One-shot claims, answers, feedback, channel bindings."""

    # --- one-shot claims ---------------------------------------------------------------

    async def claim_once(self, namespace: str, key: str, ttl_seconds: float) -> bool:
        now = self._clock()

        async def claim(c: AsyncConnection) -> bool:
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

        return await self._together(claim)

    # --- answers, feedback ---------------------------------------------------------------

    async def save_answer(self, answer: AnswerRecord) -> None:
        values = answer.model_dump()
        values["created_at"] = answer.created_at or self._clock()
        upsert = self._answer_upsert(tuple(values))

        async def save(c: AsyncConnection) -> None:
            await c.execute(upsert, values)

        await self._together(save)

    def _answer_upsert(self, columns: tuple[str, ...]) -> sa.Executable:
        """One upsert statement per column set, its values bound at execution: built and
        compiled once, not per answer (two saves per answer under a burst)."""
        stmt = self._statements.get(("answer upsert", columns))
        if stmt is None:
            insert = self._insert(answers)
            stmt = self._statements[("answer upsert", columns)] = insert.on_conflict_do_update(
                index_elements=[answers.c.id],
                set_={k: insert.excluded[k] for k in columns if k != "id"},
            )
        return stmt

    async def get_answer(self, answer_id: str) -> AnswerRecord | None:
        async with self._read() as c:
            row = (await c.execute(sa.select(answers).where(answers.c.id == answer_id))).first()
        return AnswerRecord.model_validate(row._asdict()) if row else None

    async def set_answer_message(self, answer_id: str, message_ts: str) -> None:
        async def record(c: AsyncConnection) -> int:
            update = sa.update(answers).where(answers.c.id == answer_id)
            return (await c.execute(update.values(message_ts=message_ts))).rowcount

        if await self._together(record) == 0:
            raise StoreError(f"No answer {answer_id!r} in the state store.")

    async def set_answer_stream(self, answer_id: str, stream_ts: str) -> None:
        async def record(c: AsyncConnection) -> None:
            update = sa.update(answers).where(answers.c.id == answer_id)
            await c.execute(update.values(stream_ts=stream_ts))

        await self._together(record)

    async def drop_answer(self, answer_id: str) -> None:
        async with self._tx() as c:
            await c.execute(sa.delete(answers).where(answers.c.id == answer_id))

    async def thread_answers(self, channel: str, thread_ts: str) -> list[AnswerRecord]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(answers)
                .where(answers.c.channel == channel, answers.c.thread_ts == thread_ts)
                .order_by(answers.c.created_at, answers.c.id)
            )
        return [AnswerRecord.model_validate(r._asdict()) for r in rows]

    async def unposted_answers(self, since: float) -> list[AnswerRecord]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(answers)
                .where(answers.c.message_ts.is_(None), answers.c.created_at >= since)
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

    async def rated_answers(self, limit: int = 500) -> list[tuple[AnswerRecord, int, int]]:
        good = sa.func.sum(sa.case((feedback.c.value == Feedback.GOOD.value, 1), else_=0))
        bad = sa.func.sum(sa.case((feedback.c.value == Feedback.BAD.value, 1), else_=0))
        votes = (
            sa.select(
                feedback.c.answer_id,
                good.label("good"),
                bad.label("bad"),
                sa.func.max(feedback.c.created_at).label("rated_at"),
            )
            .group_by(feedback.c.answer_id)
            .subquery()
        )
        async with self._read() as c:
            rows = await c.execute(
                sa.select(answers, votes.c.good, votes.c.bad)
                .join(votes, votes.c.answer_id == answers.c.id)
                .order_by(votes.c.rated_at.desc())
                .limit(limit)
            )
            out = []
            for r in rows:
                row = r._asdict()
                g, b = int(row.pop("good") or 0), int(row.pop("bad") or 0)
                out.append((AnswerRecord.model_validate(row), g, b))
        return out

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

    async def all_bindings(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self._read() as c:
            rows = await c.execute(
                sa.select(bindings.c.datasource, bindings.c.channel).order_by(
                    bindings.c.datasource, bindings.c.created_at, bindings.c.channel
                )
            )
            for datasource, channel in rows:
                out.setdefault(datasource, []).append(channel)
        return out

    async def bindings(self, channel: str) -> list[str]:
        async def read() -> list[str]:
            async with self._read() as c:
                rows = await c.execute(
                    sa.select(bindings.c.datasource)
                    .where(bindings.c.channel == channel)
                    .order_by(bindings.c.created_at, bindings.c.datasource)
                )
                return [r[0] for r in rows]

        return list(await self._shared(("bindings", channel), read))

    # --- channels whose Slack threads are knowledge -----------------------------------------

    async def follow_channel(self, channel: KnowledgeChannel) -> None:
        values = {**channel.model_dump(), "added_at": channel.added_at or self._clock()}
        async with self._tx() as c:
            await c.execute(
                self._insert(knowledge_channels)
                .values(**values)
                .on_conflict_do_update(index_elements=["channel"], set_=values)
            )

    async def unfollow_channel(self, channel: str) -> bool:
        stmt = sa.delete(knowledge_channels).where(knowledge_channels.c.channel == channel)
        async with self._tx() as c:
            return (await c.execute(stmt)).rowcount > 0

    async def followed_channels(self) -> list[KnowledgeChannel]:
        async with self._read() as c:
            rows = await c.execute(
                sa.select(knowledge_channels).order_by(knowledge_channels.c.added_at)
            )
            return [KnowledgeChannel(**r._mapping) for r in rows]

    # --- per-channel settings ----------------------------------------------------------

    async def set_private_answers(self, channel: str, on: bool, by: str) -> None:
        stmt = self._insert(channel_settings).values(
            channel=channel, private_answers=on, updated_by=by, updated_at=self._clock()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[channel_settings.c.channel],
            set_={k: stmt.excluded[k] for k in ("private_answers", "updated_by", "updated_at")},
        )
        async with self._tx() as c:
            await c.execute(stmt)

    async def private_answers(self, channel: str) -> bool:
        async def read() -> bool:
            async with self._read() as c:
                row = (
                    await c.execute(
                        sa.select(channel_settings.c.private_answers).where(
                            channel_settings.c.channel == channel
                        )
                    )
                ).first()
            return bool(row and row[0])

        return await self._shared(("private answers", channel), read)
