"""`VideoWorker`: takes video requests, claims jobs under a lease and runs them.

    worker = VideoWorker(settings, store, renderer, http, sink, budgets, owner=replica_id)
    worker.start()                          # claim loop (VIDEO_WORKERS jobs at a time)
    job_id = await worker.request(request, target)
    worker.hint(job_id)                     # a webhook said it may be done: look now
    await worker.stop()                     # leases released; another replica resumes

What one job does (states, delivery, exactly once) is `bot.avatar.video.job.VideoJob`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import aiohttp

from bot.avatar.budgets import Budgets
from bot.avatar.delivery import DeliverySink, VideoRequest
from bot.avatar.video.job import VideoJob
from bot.config import Settings
from bot.heygen.video import VideoRenderer
from bot.store.base import LeaseLost, Store, VideoJobRecord

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
IDLE_CLAIM_SECONDS = 5.0
RETRY_SECONDS = 5.0  # how often an idle worker looks for jobs left by a dead replica


class VideoWorker:
    log = log

    def __init__(
        self,
        settings: Settings,
        store: Store,
        renderer: Callable[[], VideoRenderer],
        http: Callable[[], aiohttp.ClientSession],
        sink: DeliverySink,
        budgets: Budgets,
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.renderer = renderer
        self.http = http
        self.sink = sink
        self.budgets = budgets
        self.owner = owner
        self.clock = clock
        self.folder = settings.data_dir / "videos"
        self._hints: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(settings.video_workers)
        self.delivered_at: dict[str, float] = {}  # job id -> when the sink got it (bench)

    # --- requests -------------------------------------------------------------------------

    async def request(self, request: VideoRequest, target: dict) -> str:
        now = self.clock()
        job = VideoJobRecord(
            id=uuid.uuid4().hex,
            dedupe_key=request.dedupe_key,
            question=request.question,
            script=request.script,
            answer_id=request.answer_id,
            target=dict(target),
            requested_by=request.requested_by,
            team=request.team,
            created_at=now,
            updated_at=now,
        )
        await self.budgets.take_video(request.team, request.requested_by)
        stored, created = await self.store.create_video_job(job)
        if not created:
            await self.budgets.give_back_video(request.team, request.requested_by)
            return stored.id
        self._wake.set()
        return stored.id

    def hint(self, job_id: str) -> None:
        """A webhook said this job's video may be done: confirm it now instead of later."""
        if job_id in self._running:
            self.hint_event(job_id).set()

    def hint_event(self, job_id: str) -> asyncio.Event:
        return self._hints.setdefault(job_id, asyncio.Event())

    # --- the claim loop -------------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._claim_loop(), name="video-jobs")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None
        for job_id in list(self._running):
            with contextlib.suppress(Exception):
                await self.store.release_video_job(job_id, self.owner)
        self._running.clear()

    async def _claim_loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                job = await self.store.claim_video_job(self.owner, LEASE_SECONDS)
            except Exception as exc:
                self._slots.release()
                log.warning("could not claim video jobs: %s", exc)
                job = None
            else:
                if job is None:
                    self._slots.release()
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_CLAIM_SECONDS)
                continue
            task = asyncio.create_task(self._run(job), name=f"video-job-{job.id}")
            self._running[job.id] = task

    async def _run(self, record: VideoJobRecord) -> None:
        renew = asyncio.create_task(self._keep_lease(record.id))
        try:
            await VideoJob(record, self).advance()
        except LeaseLost:
            log.info("video job %s was taken over by another replica", record.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("video job %s stopped unexpectedly; it will be resumed", record.id)
            await asyncio.sleep(RETRY_SECONDS)  # not a hot loop on a persistent failure
        finally:
            renew.cancel()
            self._running.pop(record.id, None)
            self._hints.pop(record.id, None)
            with contextlib.suppress(Exception):
                await self.store.release_video_job(record.id, self.owner)
            self._slots.release()
            self._wake.set()

    async def _keep_lease(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await self.store.renew_video_job(job_id, self.owner, LEASE_SECONDS)
