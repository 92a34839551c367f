"""`VideoJob`: one persisted HeyGen render, walked through its states and delivered once.

States (`VideoJobState`, the one vocabulary for a video job, also carried by progress):
pending -> submitted -> rendering -> downloading -> delivering -> delivered | failed. Every
transition is written under the job's lease (`VideoWorker` holds it), so a restart, or
another replica once the lease lapses, resumes from the last written state:
- a job that crashed between submit and "submitted" is submitted again with the same
  Idempotency-Key (= job id, also HeyGen's callback_id), and v3 answers with the same video
  instead of rendering twice;
- completion comes from a webhook or a per-video callback (hints only: the job is confirmed
  with GET before anything is trusted) or from polling with backoff;
- past VIDEO_TIMEOUT_SECONDS since the job was created it fails with a plain reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bot.avatar.delivery import AvatarError, RenderedVideo, VideoProgress
from bot.heygen.errors import HeyGenError
from bot.heygen.video import Orientation, Render, RenderRequest, VideoStatus
from bot.store.base import VideoJobRecord, VideoJobState

if TYPE_CHECKING:
    from bot.avatar.video.worker import VideoWorker


class VideoTooLarge(AvatarError):
    pass


def elapsed_words(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def failure_words(render: Render) -> str:
    reason = render.error_message or "HeyGen gave no reason"
    return f"HeyGen could not render the video: {reason.rstrip('.')}."


class VideoJob:
    """A video job: its record, and the steps that move it on (run under the worker's lease)."""

    def __init__(self, record: VideoJobRecord, worker: VideoWorker) -> None:
        self.record = record
        self.w = worker

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def state(self) -> VideoJobState:
        return self.record.state

    async def _update(self, **changes: object) -> None:
        self.record = await self.w.store.update_video_job(self.id, self.w.owner, **changes)

    def _progress_of(self, message: str) -> VideoProgress:
        return VideoProgress(job_id=self.id, state=self.state, message=message)

    async def _progress(self, message: str = "") -> None:
        try:
            target = await self.w.sink.video_progress(
                self.record.target, self._progress_of(message)
            )
        except Exception as exc:  # progress is a courtesy; the video still comes
            self.w.log.warning("progress for video job %s not shown: %s", self.id, exc)
            return
        if target is not None and target != self.record.target:
            await self._update(target=target)

    def _elapsed(self) -> float:
        return self.w.clock() - self.record.created_at

    # --- the state machine ------------------------------------------------------------------

    async def advance(self) -> None:
        """Move the job on from its written state until it is delivered or failed."""
        if self.state is VideoJobState.PENDING:
            await self._progress("Queued for rendering…")
            await self._submit()
            if self.state is VideoJobState.FAILED:
                return
        if self.state in (VideoJobState.SUBMITTED, VideoJobState.RENDERING):
            result = await self._await_render()
            if result is None or result.status is VideoStatus.FAILED:
                return
            await self._update(
                state=VideoJobState.DOWNLOADING,
                video_url=result.video_url,
                thumbnail_url=result.thumbnail_url,
            )
            await self._progress(f"Rendered in {elapsed_words(self._elapsed())}; posting it…")
        if self.state in (VideoJobState.DOWNLOADING, VideoJobState.DELIVERING):
            await self._deliver()

    async def _submit(self) -> None:
        s = self.w.settings
        callback = (
            f"{s.public_base_url}/heygen/webhook"
            if s.public_base_url and s.heygen_webhook_secret
            else None
        )
        job = self.record
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
            video_id = await self.w.renderer().submit(request)
        except (HeyGenError, ValueError) as exc:
            message = exc.message if isinstance(exc, HeyGenError) else str(exc)
            retryable = isinstance(exc, HeyGenError) and (
                exc.is_server_error or exc.is_rate_limited or exc.status is None
            )
            if retryable and self._elapsed() < s.video_timeout_seconds:
                raise  # left pending: resumed (same idempotency key) on the next claim
            await self.fail(f"HeyGen refused the video: {message.rstrip('.')}.")
            return
        await self._update(state=VideoJobState.SUBMITTED, heygen_video_id=video_id)
        await self._progress("Rendering…")

    async def _await_render(self) -> Render | None:
        s = self.w.settings
        hint = self.w.hint_event(self.id)
        delay = s.video_poll_seconds
        last_phase: str | None = None
        video_id = self.record.heygen_video_id
        assert video_id is not None
        while True:
            hint.clear()  # before the GET: a hint arriving during it wakes the next wait
            result = await self.w.renderer().status(video_id)
            if result.status is VideoStatus.COMPLETED:
                return result
            if result.status is VideoStatus.FAILED:
                await self.fail(failure_words(result))
                return result
            elapsed = self._elapsed()
            if elapsed >= s.video_timeout_seconds:
                minutes = s.video_timeout_seconds / 60
                await self.fail(
                    f"HeyGen did not finish the video within {minutes:g} minutes; "
                    "please ask again later."
                )
                return None
            if result.status is VideoStatus.PROCESSING and last_phase != "processing":
                if self.state is not VideoJobState.RENDERING:
                    await self._update(state=VideoJobState.RENDERING)
                last_phase = "processing"
            await self._progress(f"Rendering… {elapsed_words(elapsed)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hint.wait(), min(delay, s.video_timeout_seconds - elapsed))
            delay = min(delay * 1.5, s.video_poll_max_seconds)

    async def fail(self, reason: str) -> None:
        await self._update(state=VideoJobState.FAILED, error=reason)
        await self.w.sink.video_failed(self.record.target, self._progress_of(reason))

    # --- delivery ---------------------------------------------------------------------------

    async def _deliver(self) -> None:
        job = self.record
        if not job.video_url:
            await self.fail("HeyGen finished the video but gave no link to it.")
            return
        path = self.w.folder / f"{job.id}.mp4"
        try:
            if job.state is VideoJobState.DOWNLOADING or not path.exists():
                await self._download(job.video_url, path)
                await self._update(state=VideoJobState.DELIVERING)
        except VideoTooLarge as exc:
            await self.fail(str(exc))
            return
        video = RenderedVideo(
            job_id=job.id,
            path=path,
            title=job.question[:150],
            video_url=job.video_url,
            thumbnail_url=job.thumbnail_url,
        )
        await self.w.sink.video_ready(self.record.target, video)
        self.w.delivered_at[job.id] = time.perf_counter()
        await self._update(state=VideoJobState.DELIVERED)
        with contextlib.suppress(OSError):
            path.unlink()

    async def _download(self, url: str, path: Path) -> None:
        cap = int(self.w.settings.video_max_mb * 1024 * 1024)
        part = path.with_suffix(".part")
        size = 0
        timeout = aiohttp.ClientTimeout(total=600, sock_read=60)
        async with self.w.http().get(url, timeout=timeout) as resp:
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
            f"The video is larger than {self.w.settings.video_max_mb:g} MB, too large to "
            "post here; its HeyGen link still works."
        )
