"""Answer videos in Slack: `/ask-video`, the "Make a video" button, and the delivery sink.

The avatar service renders in the background and reports through `SlackVideoSink`
(`bot.avatar.delivery.DeliverySink`): one progress message in the thread, updated in place,
then the MP4 uploaded into that thread (it plays inside Slack) with HeyGen's page link, or
the failure in plain words. Sink calls may be retried after a crash: progress updates the
same message, and the upload is exactly once (see `SlackVideoSink.video_ready`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.avatar.delivery import (
    AvatarError,
    RenderedVideo,
    SaveTarget,
    VideoJobState,
    VideoProgress,
    VideoRequest,
)
from bot.metrics import VIDEO_MINUTES, VIDEOS
from bot.slack import blocks
from bot.slack.asking import AskService, Question
from bot.slack.failures import failure
from bot.slack.posting import notice_metadata
from bot.slack.services import SlackServices
from bot.store.base import AnswerRecord
from knowledge.answering.spoken import spoken_variant

log = logging.getLogger(__name__)

VIDEOS_OFF = "Answer videos are off on this bot."
VIDEO_POSTED = "✅ The video is ready: it is just below."
MAKING = "🎬 Making a video of this answer; it appears in the answer's thread when it is ready."
ASKED = (
    "🎬 On it: I'm answering in a thread under my message in this channel; "
    "the video follows in the same thread."
)
NO_VIDEO = "🎬 No video this time: I had no answer to put in it."
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_read=60)


def progress_words(progress: VideoProgress) -> str:
    """One line per state; `progress.message` only adds the detail (time so far, reason)."""
    detail = progress.message
    match progress.state:
        case VideoJobState.PENDING:
            return "🎬 Video queued for rendering…"
        case VideoJobState.SUBMITTED | VideoJobState.RENDERING:
            return f"🎬 Rendering the video… ({detail} so far)" if detail else "🎬 Rendering…"
        case VideoJobState.DOWNLOADING | VideoJobState.DELIVERING:
            return f"🎬 {detail}; posting it…" if detail else "🎬 Posting the video…"
        case VideoJobState.FAILED:  # the reason is a whole sentence of its own
            return f"⚠️ {detail}" if detail else "⚠️ The video could not be made."
    return "🎬 Working on the video…"


class SlackVideoSink:
    """`DeliverySink` for Slack. `target`: channel, thread_ts, user, progress_ts, and while
    the video goes up, `upload` (the Slack file id, and whether it was being completed)."""

    def __init__(self, services: SlackServices) -> None:
        self.s = services

    async def show(self, target: dict[str, Any], text: str) -> dict[str, Any] | None:
        """Progress `text` in `target`'s progress message; a new target when it was posted."""
        client, channel = self.s.client, target["channel"]
        if target.get("progress_ts"):
            await client.chat_update(
                channel=channel,
                ts=target["progress_ts"],
                text=text,
                blocks=blocks.progress_blocks(text),
            )
            return None
        resp = await client.chat_postMessage(
            channel=channel,
            thread_ts=target.get("thread_ts"),
            text=text,
            blocks=blocks.progress_blocks(text),
            metadata=notice_metadata(),  # never taken for an answer's lost stream
        )
        return {**target, "progress_ts": resp["ts"]}

    async def video_progress(
        self, target: dict[str, Any], progress: VideoProgress
    ) -> dict[str, Any] | None:
        return await self.show(target, progress_words(progress))

    async def video_failed(self, target: dict[str, Any], progress: VideoProgress) -> None:
        await self.show(target, progress_words(progress))

    # --- the upload, exactly once -----------------------------------------------------------

    async def video_ready(
        self, target: dict[str, Any], video: RenderedVideo, save: SaveTarget
    ) -> None:
        try:
            await self._upload_once(target, video, save)
        except SlackApiError as exc:  # in words the job can tell the user
            code = exc.response.get("error", "unknown") if exc.response is not None else "unknown"
            raise AvatarError(f"Slack refused the upload ({code})", kind="slack") from exc

    async def _upload_once(
        self, target: dict[str, Any], video: RenderedVideo, save: SaveTarget
    ) -> None:
        """Upload the MP4 into the thread once, whatever crashes in between.

        Slack's external upload is three calls (https://docs.slack.dev/messaging/working-
        with-files#upload): reserve a file id, send the bytes, complete (which shares the file
        into the thread). The file id is saved before the bytes go, and "completing" before
        the call that makes the file visible; a retry that finds "completing" asks
        `files.info` whether that file is already shared in the channel, and only if not
        completes the same file id again (one id is one file, never a second copy).
        """
        upload = target.get("upload") or {}
        if upload.get("completing"):
            if await self._shared(upload["file_id"], target["channel"]):
                await self._posted(target, video)  # only the "delivered" record was lost
                return
            try:
                await self._complete(upload["file_id"], target, video)
                await self._posted(target, video)
                return
            except SlackApiError as exc:
                # Refused: either the share had just not shown up yet (look once more), or
                # the reserved id was never filled and has expired (upload afresh).
                if await self._shared(upload["file_id"], target["channel"]):
                    await self._posted(target, video)
                    return
                log.info("re-uploading video %s: %s", video.job_id, exc.response.get("error"))
        reserved = await self.s.client.files_getUploadURLExternal(
            filename=video.filename, length=await asyncio.to_thread(_size, video.path)
        )
        file_id = reserved["file_id"]
        target = {**target, "upload": {"file_id": file_id}}
        await save(target)
        await self._send(reserved["upload_url"], video.path)
        target = {**target, "upload": {"file_id": file_id, "completing": True}}
        await save(target)
        await self._complete(file_id, target, video)
        await self._posted(target, video)

    async def _send(self, url: str, path: Path) -> None:
        body = await asyncio.to_thread(path.read_bytes)
        async with (
            aiohttp.ClientSession(timeout=UPLOAD_TIMEOUT) as http,
            http.post(url, data=body) as resp,
        ):
            if resp.status != 200:
                raise SlackApiError(
                    f"the video upload was refused (HTTP {resp.status})",
                    {"ok": False, "error": f"upload_http_{resp.status}"},
                )

    async def _complete(self, file_id: str, target: dict[str, Any], video: RenderedVideo) -> None:
        await self.s.client.files_completeUploadExternal(
            files=[{"id": file_id, "title": video.title or "Answer video"}],
            channel_id=target["channel"],
            thread_ts=target.get("thread_ts") or target.get("progress_ts"),
            initial_comment=blocks.video_posted_text(video.title or "answer", video.page_url),
        )

    async def _shared(self, file_id: str, channel: str) -> bool:
        """Whether `file_id` is already shared in `channel` (files.info: `channels`,
        `groups`, `ims`, or the keys of `shares.public` / `shares.private`)."""
        try:
            info = (await self.s.client.files_info(file=file_id)).get("file") or {}
        except SlackApiError:
            return False  # file_not_found: never completed
        shares = info.get("shares") or {}
        places = {
            *(info.get("channels") or []),
            *(info.get("groups") or []),
            *(info.get("ims") or []),
            *(shares.get("public") or {}),
            *(shares.get("private") or {}),
        }
        return channel in places

    async def _posted(self, target: dict[str, Any], video: RenderedVideo) -> None:
        VIDEOS.inc()
        if video.duration_seconds:
            VIDEO_MINUTES.inc(video.duration_seconds / 60)
        await self.show(target, VIDEO_POSTED)


def _size(path: Path) -> int:
    return path.stat().st_size


class VideoService:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

    def off_sentence(self) -> str:
        avatar = self.s.avatar
        off = getattr(avatar, "video_off", None) if avatar is not None else None
        if off is not None:
            return off.sentence
        return f"{VIDEOS_OFF} {self.s.avatar_off_reason}".strip()

    async def request(
        self, record: AnswerRecord, *, user: str, target: dict[str, Any]
    ) -> str | None:
        """Start (or join) the video of an answer; the worker shows progress in `target`'s
        thread (one message per job, so repeated requests leave no stray ones)."""
        assert self.s.avatar is not None
        request = VideoRequest(
            question=record.question,
            # An answer saved without a script still gets one from the same writer.
            script=record.spoken or spoken_variant(record.text, self.s.settings.spoken_max_seconds),
            answer_id=record.id,
            requested_by=user,
            team=record.team,
            dedupe_key=f"{record.channel}:{record.thread_ts}:{record.id}",
        )
        try:
            return await self.s.avatar.request_video(request, target)
        except AvatarError as exc:
            f = failure(exc, "requesting a video")
            await self.s.client.chat_postMessage(
                channel=target["channel"],
                thread_ts=target.get("thread_ts"),
                text=f.text,
                blocks=blocks.notice_blocks(f.sentence, error_id=f.error_id),
                metadata=notice_metadata(),
            )
            return None

    async def for_answer(self, answer_id: str, *, user: str, channel: str) -> None:
        """The "Make a video" button on an answer: an ephemeral word to the clicker, the
        progress and the video in the answer's thread."""

        async def tell(text: str) -> None:
            await self.s.client.chat_postEphemeral(channel=channel, user=user, text=text)

        if not self.s.video_enabled:
            await tell(self.off_sentence())
            return
        record = await self.s.store.get_answer(answer_id)
        if record is None:
            await tell("I no longer have that answer (answers expire); ask the question again.")
            return
        thread = record.thread_ts or record.message_ts
        target = {"channel": record.channel, "thread_ts": thread, "user": user}
        if await self.request(record, user=user, target=target) is not None:
            await tell(MAKING)

    async def ask_video(
        self, text: str, *, user: str, channel: str, team: str | None, respond: Any
    ) -> None:
        """`/ask-video QUESTION`: checked first (videos on, empty, length, rate) with private
        replies; then one message in the channel, the text answer in its thread, and the
        video into the same thread."""

        async def tell(words: str) -> None:
            await respond(text=words, response_type="ephemeral")

        if not self.s.video_enabled:
            await tell(self.off_sentence())
            return
        asker = AskService(self.s)
        question = await asker.clean(text)
        refusal = asker.refusal(question, user)
        if refusal is not None:
            await tell(refusal)
            return
        await tell(ASKED)
        top = await self.s.client.chat_postMessage(
            channel=channel,
            text=blocks.video_question_text(user, question),
            blocks=blocks.video_question_blocks(user, question),
        )
        q = Question(text=text, channel=channel, user=user, ts=top["ts"], team=team)
        answer_id = await asker.answer(q, admitted=question)
        record = await self.s.store.get_answer(answer_id) if answer_id else None
        if record is None:
            await asker.say(q, NO_VIDEO)  # the thread already says why there is no answer
            return
        target = {"channel": channel, "thread_ts": top["ts"], "user": user}
        await self.request(record, user=user, target=target)
