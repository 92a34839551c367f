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
from bot.store.base import LeaseLost, VideoJobRecord, VideoJobState

if TYPE_CHECKING:
    from bot.avatar.video.worker import VideoWorker


# What a presigned URL past its expiry answers (S3/CloudFront: 403; some CDNs 404 or 410).
EXPIRED_LINK_STATUSES = (401, 403, 404, 410)


class VideoTooLarge(AvatarError):
    pass


DELIVERY_TRIES = 4  # the sink is tried again after 1, 2, 4 poll intervals, then the job fails


def _not_posted(exc: Exception, page_url: str | None) -> str:
    why = exc.sentence.rstrip(".") if isinstance(exc, AvatarError) else "an unexpected error"
    where = f" It is on HeyGen: {page_url}" if page_url else ""
    return f"The video was made, but posting it here failed ({why}).{where}"


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
            await self._progress()
            await self._submit()
            if self.state is VideoJobState.FAILED:
                return
        render: Render | None = None
        if self.state in (VideoJobState.SUBMITTED, VideoJobState.RENDERING):
            render = await self._await_render()
            if render is None or render.status is VideoStatus.FAILED:
                return
            await self._update(
                state=VideoJobState.DOWNLOADING,
                video_url=self._media_url(render),
                thumbnail_url=render.thumbnail_url,
            )
            await self._progress(f"Rendered in {elapsed_words(self._elapsed())}")
        if self.state in (VideoJobState.DOWNLOADING, VideoJobState.DELIVERING):
            await self._deliver(render)

    def _media_url(self, render: Render) -> str | None:
        """The file to post: the captioned render when captions are burnt in."""
        if self.w.settings.video_captions and render.captioned_video_url:
            return render.captioned_video_url
        return render.video_url

    async def _fresh_render(self) -> Render:
        """GET the video again: presigned URLs expire, so a resumed job (or a refused
        download) never reuses an old one."""
        assert self.record.heygen_video_id is not None
        render = await self.w.renderer().status(self.record.heygen_video_id)
        url = self._media_url(render)
        if url and url != self.record.video_url:
            await self._update(video_url=url, thumbnail_url=render.thumbnail_url)
        return render

    async def _submit(self) -> None:
        s = self.w.settings
        # The per-video callback is unsigned (only registered endpoints are signed), and the
        # route reads it as a hint without a secret: offered whenever we have a public URL.
        callback = f"{s.public_base_url}/heygen/webhook" if s.public_base_url else None
        job = self.record
        try:
            request = RenderRequest(
                script=job.script,
                avatar_id=s.heygen_avatar_id or "",
                voice_id=s.heygen_voice_id,
                title=job.question[:100],
                captions=s.video_captions,
                caption_style=s.video_caption_style or None,
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
        await self._progress()

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
            await self._progress(elapsed_words(elapsed))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hint.wait(), min(delay, s.video_timeout_seconds - elapsed))
            delay = min(delay * 1.5, s.video_poll_max_seconds)

    async def fail(self, reason: str) -> None:
        await self._update(state=VideoJobState.FAILED, error=reason)
        await self.w.sink.video_failed(self.record.target, self._progress_of(reason))

    # --- delivery ---------------------------------------------------------------------------

    async def _deliver(self, render: Render | None) -> None:
        if render is None:  # resumed after a restart: the stored URL may have expired
            render = await self._fresh_render()
        path = self.w.folder / f"{self.id}.mp4"
        try:
            if self.state is VideoJobState.DOWNLOADING or not path.exists():
                render = await self._download_fresh(render, path)
                if render is None:
                    return
                await self._update(state=VideoJobState.DELIVERING)
        except VideoTooLarge as exc:
            await self.fail(str(exc))
            return
        job = self.record
        video = RenderedVideo(
            job_id=job.id,
            path=path,
            title=job.question[:150],
            page_url=render.page_url,
            thumbnail_url=job.thumbnail_url,
            duration_seconds=render.duration,
        )

        async def save(target: dict) -> None:
            await self._update(target=target)

        s = self.w.settings
        for attempt in range(DELIVERY_TRIES):
            try:  # safe to repeat: the sink posts exactly once (see DeliverySink.video_ready)
                await self.w.sink.video_ready(self.record.target, video, save)
                break
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                self.w.log.warning("posting video job %s failed: %s", job.id, exc)
                if attempt == DELIVERY_TRIES - 1:
                    await self.fail(_not_posted(exc, render.page_url))
                    with contextlib.suppress(OSError):
                        path.unlink()
                    return
                await asyncio.sleep(s.video_poll_seconds * 2**attempt)
        self.w.delivered_at[job.id] = time.perf_counter()
        await self._update(state=VideoJobState.DELIVERED)
        with contextlib.suppress(OSError):
            path.unlink()

    async def _download_fresh(self, render: Render, path: Path) -> Render | None:
        """Download the MP4; a refused (expired) link is fetched fresh once and tried again."""
        for attempt in (1, 2):
            url = self.record.video_url
            if not url:
                await self.fail("HeyGen finished the video but gave no link to it.")
                return None
            try:
                await self._download(url, path)
                return render
            except HeyGenError as exc:
                if attempt == 2 or exc.status not in EXPIRED_LINK_STATUSES:
                    raise
            render = await self._fresh_render()
        return None  # pragma: no cover - the loop returns or raises

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
