"""Video jobs: persisted, resumable HeyGen renders delivered exactly once through the sink.

States (bot.store.base.VideoJobState): pending -> submitted -> rendering -> downloading ->
delivering -> delivered | failed. Every transition is written under the job's lease, so a
restart (or another replica, once the lease lapses) resumes from the last written state:
- a job that crashed between submit and "submitted" is submitted again with the same
  Idempotency-Key (= job id, also HeyGen's callback_id), and v3 answers with the same video
  instead of rendering twice;
- completion comes from the webhook (a hint only: the signature covers just the body, so
  the job is confirmed with GET before anything is trusted) or from polling with backoff;
- past VIDEO_TIMEOUT_SECONDS since the job was created it fails with a plain reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bot.avatar.budgets import Budgets
from bot.avatar.delivery import (
    AvatarError,
    DeliverySink,
    RenderedVideo,
    VideoPhase,
    VideoProgress,
    VideoRequest,
)
from bot.config import Settings
from bot.heygen.errors import HeyGenError
from bot.heygen.video import (
    Orientation,
    RenderRequest,
    VideoJob,
    VideoRenderer,
    VideoStatus,
)
from bot.store.base import LeaseLost, Store, VideoJobRecord, VideoJobState

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
IDLE_CLAIM_SECONDS = 5.0
RETRY_SECONDS = 5.0  # how often an idle worker looks for jobs left by a dead replica


class VideoTooLarge(AvatarError):
    pass


def elapsed_words(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def failure_words(job: VideoJob) -> str:
    reason = job.error_message or "HeyGen gave no reason"
    return f"HeyGen could not render the video: {reason.rstrip('.')}."


class VideoJobs:
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
        self._renderer = renderer
        self._http = http
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
            self._hints.setdefault(job_id, asyncio.Event()).set()

    # --- the worker -----------------------------------------------------------------------

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

    async def _run(self, job: VideoJobRecord) -> None:
        renew = asyncio.create_task(self._keep_lease(job.id))
        try:
            await self._advance(job)
        except LeaseLost:
            log.info("video job %s was taken over by another replica", job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("video job %s stopped unexpectedly; it will be resumed", job.id)
            await asyncio.sleep(RETRY_SECONDS)  # not a hot loop on a persistent failure
        finally:
            renew.cancel()
            self._running.pop(job.id, None)
            self._hints.pop(job.id, None)
            with contextlib.suppress(Exception):
                await self.store.release_video_job(job.id, self.owner)
            self._slots.release()
            self._wake.set()

    async def _keep_lease(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await self.store.renew_video_job(job_id, self.owner, LEASE_SECONDS)

    async def _update(self, job: VideoJobRecord, **changes: object) -> VideoJobRecord:
        return await self.store.update_video_job(job.id, self.owner, **changes)

    def _progress_of(self, job: VideoJobRecord, phase: VideoPhase, message: str) -> VideoProgress:
        return VideoProgress(
            job_id=job.id,
            phase=phase,
            message=message,
            elapsed_seconds=max(0.0, self.clock() - job.created_at),
        )

    async def _progress(
        self, job: VideoJobRecord, phase: VideoPhase, message: str = ""
    ) -> VideoJobRecord:
        try:
            target = await self.sink.video_progress(
                job.target, self._progress_of(job, phase, message)
            )
        except Exception as exc:  # progress is a courtesy; the video still comes
            log.warning("progress for video job %s not shown: %s", job.id, exc)
            return job
        if target is not None and target != job.target:
            job = await self._update(job, target=target)
        return job

    async def _advance(self, job: VideoJobRecord) -> None:
        if job.state is VideoJobState.PENDING:
            job = await self._progress(job, VideoPhase.QUEUED, "Queued for rendering…")
            job = await self._submit(job)
            if job.state is VideoJobState.FAILED:
                return
        if job.state in (VideoJobState.SUBMITTED, VideoJobState.RENDERING):
            job, result = await self._await_render(job)
            if result is None or result.status is VideoStatus.FAILED:
                return
            job = await self._update(
                job,
                state=VideoJobState.DOWNLOADING,
                video_url=result.video_url,
                thumbnail_url=result.thumbnail_url,
            )
            elapsed = elapsed_words(self.clock() - job.created_at)
            job = await self._progress(job, VideoPhase.DONE, f"Rendered in {elapsed}; posting it…")
        if job.state in (VideoJobState.DOWNLOADING, VideoJobState.DELIVERING):
            await self._deliver(job)

    async def _submit(self, job: VideoJobRecord) -> VideoJobRecord:
        s = self.settings
        callback = (
            f"{s.public_base_url}/heygen/webhook"
            if s.public_base_url and s.heygen_webhook_secret
            else None
        )
        try:
            request = RenderRequest(
                script=job.script,
                avatar_id=s.heygen_avatar_id or "",
                voice_id=s.heygen_voice_id,
                title=job.question[:100],
                captions=s.video_captions,
                orientation=(
                    Orientation.PORTRAIT
                    if s.video_aspect_ratio == "9:16"
                    else Orientation.LANDSCAPE
                ),
                aspect_ratio=s.video_aspect_ratio,
                resolution=s.video_resolution,
                callback_url=callback,
                job_id=job.id,
            )
            video_id = await self._renderer().submit(request)
        except (HeyGenError, ValueError) as exc:
            message = exc.message if isinstance(exc, HeyGenError) else str(exc)
            retryable = isinstance(exc, HeyGenError) and (
                exc.is_server_error or exc.is_rate_limited or exc.status is None
            )
            if retryable and self.clock() - job.created_at < s.video_timeout_seconds:
                raise  # left pending: resumed (same idempotency key) on the next claim
            return await self._fail(job, f"HeyGen refused the video: {message.rstrip('.')}.")
        job = await self._update(job, state=VideoJobState.SUBMITTED, heygen_video_id=video_id)
        return await self._progress(job, VideoPhase.RENDERING, "Rendering…")

    async def _await_render(self, job: VideoJobRecord) -> tuple[VideoJobRecord, VideoJob | None]:
        s = self.settings
        hint = self._hints.setdefault(job.id, asyncio.Event())
        delay = s.video_poll_seconds
        last_phase: str | None = None
        assert job.heygen_video_id is not None
        while True:
            hint.clear()  # before the GET: a hint arriving during it wakes the next wait
            result = await self._renderer().status(job.heygen_video_id)
            if result.status is VideoStatus.COMPLETED:
                return job, result
            if result.status is VideoStatus.FAILED:
                return await self._fail(job, failure_words(result)), result
            elapsed = self.clock() - job.created_at
            if elapsed >= s.video_timeout_seconds:
                minutes = s.video_timeout_seconds / 60
                return await self._fail(
                    job,
                    f"HeyGen did not finish the video within {minutes:g} minutes; "
                    "please ask again later.",
                ), None
            if result.status is VideoStatus.PROCESSING and last_phase != "processing":
                if job.state is not VideoJobState.RENDERING:
                    job = await self._update(job, state=VideoJobState.RENDERING)
                last_phase = "processing"
            job = await self._progress(
                job, VideoPhase.RENDERING, f"Rendering… {elapsed_words(elapsed)}"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hint.wait(), min(delay, s.video_timeout_seconds - elapsed))
            delay = min(delay * 1.5, s.video_poll_max_seconds)

    async def _fail(self, job: VideoJobRecord, reason: str) -> VideoJobRecord:
        job = await self._update(job, state=VideoJobState.FAILED, error=reason)
        await self.sink.video_failed(job.target, self._progress_of(job, VideoPhase.FAILED, reason))
        return job

    async def _deliver(self, job: VideoJobRecord) -> None:
        if not job.video_url:
            await self._fail(job, "HeyGen finished the video but gave no link to it.")
            return
        path = self.folder / f"{job.id}.mp4"
        try:
            if job.state is VideoJobState.DOWNLOADING or not path.exists():
                await self._download(job.video_url, path)
                job = await self._update(job, state=VideoJobState.DELIVERING)
        except VideoTooLarge as exc:
            await self._fail(job, str(exc))
            return
        video = RenderedVideo(
            job_id=job.id,
            path=path,
            title=job.question[:150],
            video_url=job.video_url,
            thumbnail_url=job.thumbnail_url,
        )
        await self.sink.video_ready(job.target, video)
        self.delivered_at[job.id] = time.perf_counter()
        await self._update(job, state=VideoJobState.DELIVERED)
        with contextlib.suppress(OSError):
            path.unlink()

    async def _download(self, url: str, path: Path) -> None:
        cap = int(self.settings.video_max_mb * 1024 * 1024)
        part = path.with_suffix(".part")
        size = 0
        timeout = aiohttp.ClientTimeout(total=600, sock_read=60)
        async with self._http().get(url, timeout=timeout) as resp:
            if resp.status != 200:
                raise HeyGenError(
                    f"downloading the video failed (HTTP {resp.status})",
                    status=resp.status,
                    service="HeyGen",
                )
            if (resp.content_length or 0) > cap:
                raise VideoTooLarge(self._too_large())
            with part.open("wb") as out:
                async for chunk in resp.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > cap:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise VideoTooLarge(self._too_large())
                    await asyncio.to_thread(out.write, chunk)
        os.replace(part, path)

    def _too_large(self) -> str:
        return (
            f"The video is larger than {self.settings.video_max_mb:g} MB, too large to "
            "post here; its HeyGen link still works."
        )
