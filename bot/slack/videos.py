"""Answer videos in Slack: `/ask-video`, the "Make a video" button, and the delivery sink.

The avatar service renders in the background and reports through `SlackVideoSink`
(`bot.avatar.delivery.DeliverySink`): one progress message updated in place, then the MP4
uploaded into its thread with `files_upload_v2` (it plays inside Slack) plus HeyGen's link,
or the failure in plain words. Sink calls may be retried after a crash: they update the
same progress message rather than posting new ones.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.avatar.delivery import (
    AvatarError,
    RenderedVideo,
    VideoJobState,
    VideoProgress,
    VideoRequest,
)
from bot.metrics import VIDEO_MINUTES, VIDEOS
from bot.slack import blocks
from bot.slack.asking import AskService, Question
from bot.slack.failures import failure
from bot.slack.mrkdwn import escape
from bot.slack.services import SlackServices
from bot.store.base import AnswerRecord

log = logging.getLogger(__name__)

VIDEOS_OFF = "Answer videos are off on this bot."
VIDEO_POSTED = "✅ The video is ready (in the thread)."
PHASE_WORDS = {
    VideoJobState.PENDING: "🎬 Video queued…",
    VideoJobState.SUBMITTED: "🎬 Rendering the video…",
    VideoJobState.RENDERING: "🎬 Rendering the video…",
    VideoJobState.DOWNLOADING: "🎬",  # HeyGen says "Rendered in …; posting it…"
    VideoJobState.FAILED: "⚠️ The video could not be made.",
}


class SlackVideoSink:
    """`DeliverySink` for Slack. `target`: channel, thread_ts, user, progress_ts."""

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
        )
        return {**target, "progress_ts": resp["ts"]}

    async def video_progress(
        self, target: dict[str, Any], progress: VideoProgress
    ) -> dict[str, Any] | None:
        words = PHASE_WORDS.get(progress.state, "🎬 Working on the video…")
        if progress.message:
            words = f"{words} {progress.message}"
        return await self.show(target, words)

    async def video_ready(self, target: dict[str, Any], video: RenderedVideo) -> None:
        await self.s.client.files_upload_v2(
            channel=target["channel"],
            thread_ts=target.get("thread_ts") or target.get("progress_ts"),
            file=str(video.path),
            filename=video.filename,
            title=video.title or "Answer video",
            initial_comment=blocks.video_posted_text(video.title or "answer", video.video_url),
        )
        VIDEOS.inc()
        if video.duration_seconds:
            VIDEO_MINUTES.inc(video.duration_seconds / 60)
        await self.show(target, VIDEO_POSTED)

    async def video_failed(self, target: dict[str, Any], progress: VideoProgress) -> None:
        reason = progress.message or "HeyGen did not finish the video."
        await self.show(target, f"{PHASE_WORDS[VideoJobState.FAILED]} {reason}")


class VideoService:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

    def off_sentence(self) -> str:
        return f"{VIDEOS_OFF} {self.s.avatar_off_reason}".strip()

    async def request(
        self, record: AnswerRecord, *, user: str, target: dict[str, Any]
    ) -> str | None:
        """Start (or join) the video of an answer; progress goes to `target`."""
        if self.s.avatar is None or not self.s.avatar.video_enabled:
            await self.s.client.chat_postMessage(
                channel=target["channel"],
                thread_ts=target.get("thread_ts"),
                text=self.off_sentence(),
            )
            return None
        request = VideoRequest(
            question=record.question,
            script=record.spoken or record.text,
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
            )
            return None

    async def for_answer(self, answer_id: str, *, user: str, channel: str) -> None:
        """The "Make a video" button on an answer."""
        record = await self.s.store.get_answer(answer_id)
        if record is None:
            await self.s.client.chat_postEphemeral(
                channel=channel,
                user=user,
                text="I no longer have that answer (answers expire); ask the question again.",
            )
            return
        thread = record.thread_ts or record.message_ts
        target = {"channel": record.channel, "thread_ts": thread, "user": user}
        await self._request_with_progress(record, user, target, "🎬 Making a video of this answer…")

    async def ask_video(self, question: str, *, user: str, channel: str, team: str | None) -> None:
        """`/ask-video QUESTION`: a progress message in the channel, the text answer in its
        thread, then the video into the same thread."""
        text = f"🎬 <@{user}> asked for a video answer: {escape(question[:300])}"
        resp = await self.s.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks.progress_blocks(text)
        )
        top = resp["ts"]
        asker = AskService(self.s)
        answer_id = await asker.answer(
            Question(text=question, channel=channel, user=user, ts=top, thread_ts=None, team=team)
        )
        if answer_id is None:
            return  # the thread already says why
        record = await self.s.store.get_answer(answer_id)
        if record is None:
            return
        target = {"channel": channel, "thread_ts": top, "user": user}
        await self._request_with_progress(
            record, user, target, "🎬 Rendering the video… it appears in this thread when ready."
        )

    async def _request_with_progress(
        self, record: AnswerRecord, user: str, target: dict[str, Any], progress: str
    ) -> None:
        """`request`, after a progress message in the thread when videos are on."""
        if self.s.video_enabled:
            target = await SlackVideoSink(self.s).show(target, progress) or target
        await self.request(record, user=user, target=target)
