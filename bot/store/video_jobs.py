"""Video jobs: one unfinished job per question, leases, states (part of `SqlStore`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.store.base import (
    LeaseLost,
    StoreError,
    VideoJobRecord,
    VideoJobState,
)
from bot.store.engine import SqlEngine
from bot.store.schema import (
    FINISHED_JOB_STATES,
    video_jobs,
)

_JOB_FIXED = {"id", "dedupe_key", "created_at", "updated_at", "lease_owner", "lease_until"}
_JOB_CHANGEABLE = set(VideoJobRecord.model_fields) - _JOB_FIXED - {"attempts"}


class VideoJobTables(SqlEngine):
    """Video jobs (`Store` methods `*_video_job*`)."""

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
