"""Video jobs end to end: AvatarDelivery + the real HeyGen client against the HeyGen fake,
state in a real SQLite store, results in a recording sink (where Slack would post)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.avatar.delivery import AvatarLimitReached, AvatarUnavailable, VideoRequest
from bot.heygen.video import RenderRequest
from bot.heygen.webhooks import WebhookEvent, sign
from bot.store.base import VideoJobRecord, VideoJobState
from tests.avatar_stack import Stack, avatar_stack, settled
from tests.fakes.clock import FakeClock
from tests.fakes.heygen import API_KEY, CALLBACK_SECRET, FakeHeyGen

AVATAR = "Angela-inblackskirt-20220820"
TARGET = {"channel": "C1", "thread_ts": "1700.1", "user": "U1"}
VIDEO = {
    "heygen_api_key": API_KEY,
    "heygen_avatar_id": AVATAR,
    "heygen_voice_id": "hg-voice-1",
    "liveavatar_api_key": None,
    "heygen_webhook_secret": CALLBACK_SECRET,
}


def request(question: str = "How do I add documents?", user: str = "U1") -> VideoRequest:
    return VideoRequest(
        question=question,
        script="Run avatarbot knowledge add.",
        requested_by=user,
        team="T1",
        dedupe_key=f"C1:1700.1:{question}",
    )


@asynccontextmanager
async def polling_stack(
    fake: FakeHeyGen, store: Any, clock: FakeClock, tmp_path: Path, **extra: Any
) -> AsyncIterator[Stack]:
    """No webhook: completion by polling (every 10 ms); the fake hosts the MP4s."""
    settings = {**VIDEO, "heygen_webhook_secret": None, "video_poll_seconds": 0.01, **extra}
    async with avatar_stack(fake.app(), store, clock, tmp_path / "data", **settings) as stack:
        fake.file_base = stack.vendor_url
        yield stack


def webhook_stack(fake: FakeHeyGen, store: Any, clock: FakeClock, tmp_path: Path) -> Any:
    """Polling so slow (an hour) that only a webhook or callback can finish a job in a test."""
    return avatar_stack(
        fake.app(), store, clock, tmp_path / "data", video_poll_seconds=3600, **VIDEO
    )


def phases(stack: Stack) -> list[VideoJobState]:
    return [p.state for _, p in stack.sink.progress]


async def test_a_video_is_rendered_downloaded_and_handed_over_once(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=2)
    async with polling_stack(fake, store, clock, tmp_path) as stack:
        job_id = await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        [done] = stack.sink.ready
        assert done.content == fake.mp4_bytes
        # HeyGen's page for the video (it does not expire), and the length for the metric
        assert done.video.page_url == fake.page_url(next(iter(fake.videos)))
        assert done.video.duration_seconds == 4.2
        assert done.video.thumbnail_url and done.video.job_id == job_id
        assert done.target["progress_ts"] == "1700.0001"  # the sink's target update was kept
        assert phases(stack)[0] is VideoJobState.PENDING and VideoJobState.SUBMITTED in phases(
            stack
        )
        assert phases(stack)[-1] is VideoJobState.DOWNLOADING
        [sent] = fake.faults.requests("create_video_v3")
        assert sent.json["callback_id"] == job_id
        assert sent.headers["Idempotency-Key"] == job_id
        assert sent.json["aspect_ratio"] == "16:9" and sent.json["resolution"] == "720p"
        job = await settled(store, job_id)
        assert job.state is VideoJobState.DELIVERED
        assert not (tmp_path / "data" / "videos" / f"{job_id}.mp4").exists()


async def test_the_same_question_in_the_thread_reuses_the_pending_job(
    store, clock, tmp_path
) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with avatar_stack(fake.app(), store, clock, tmp_path / "data", **VIDEO) as stack:
        first = await stack.delivery.request_video(request(), TARGET)
        second = await stack.delivery.request_video(request(user="U2"), TARGET)
        assert first == second
        await stack.sink.wait_for(
            lambda: len(fake.videos) == 1 and VideoJobState.SUBMITTED in phases(stack)
        )
        assert len(fake.faults.requests("create_video_v3")) == 1


async def test_webhook_completion_is_confirmed_and_delivered(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    # Polling so slow that only the webhook can finish this job within the test.
    async with webhook_stack(fake, store, clock, tmp_path) as stack:
        fake.file_base = stack.vendor_url
        job_id = await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: len(fake.videos) == 1)
        [video_id] = fake.videos
        assert fake.videos[video_id].callback_url == f"{stack.web_url}/heygen/webhook"
        await stack.sink.wait_for(lambda: VideoJobState.SUBMITTED in phases(stack))
        fake.complete(video_id)
        delivery = await fake.deliveries.get()
        assert delivery.status == 200
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        assert [d.video.job_id for d in stack.sink.ready] == [job_id]
        # a redelivery of the same event is a duplicate, and changes nothing
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                delivery.url,
                data=delivery.body,
                headers={
                    "Heygen-Signature": sign(delivery.body, CALLBACK_SECRET),
                    "Content-Type": "application/json",
                },
            ) as resp,
        ):
            assert resp.status == 200
        assert len(stack.sink.ready) == 1


async def test_a_forged_webhook_is_refused_and_changes_nothing(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with webhook_stack(fake, store, clock, tmp_path) as stack:
        await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: VideoJobState.SUBMITTED in phases(stack))
        [video_id] = fake.videos
        gets = len(fake.faults.requests("get_video_v3"))  # the worker now waits (an hour)
        body = json.dumps(
            {
                "event_type": "avatar_video.success",
                "event_data": {"video_id": video_id, "url": "https://evil/x.mp4"},
            }
        ).encode()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{stack.web_url}/heygen/webhook",
                data=body,
                headers={"Heygen-Signature": sign(body, "not-the-secret")},
            ) as resp:
                assert resp.status == 401
            # correctly signed, but HeyGen says (GET) it is still rendering: nothing delivered
            async with http.post(
                f"{stack.web_url}/heygen/webhook",
                data=body,
                headers={"Heygen-Signature": sign(body, CALLBACK_SECRET)},
            ) as resp:
                assert resp.status == 200
        await stack.sink.wait_for(lambda: len(fake.faults.requests("get_video_v3")) > gets)
        assert not stack.sink.ready and not fake.downloads


async def test_a_failed_render_tells_heygens_reason(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with avatar_stack(
        fake.app(), store, clock, tmp_path / "data", video_poll_seconds=0.01, **VIDEO
    ) as stack:
        job_id = await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: len(fake.videos) == 1)
        fake.fail(next(iter(fake.videos)), message="Avatar rendering timed out")
        await stack.sink.wait_for(lambda: bool(stack.sink.failed))
        [(_, failure)] = stack.sink.failed
        assert failure.state is VideoJobState.FAILED and failure.job_id == job_id
        assert failure.message == "HeyGen could not render the video: Avatar rendering timed out."
        assert not stack.sink.ready


async def test_a_render_past_the_deadline_fails_clearly(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with avatar_stack(
        fake.app(),
        store,
        clock,
        tmp_path / "data",
        video_poll_seconds=0.01,
        video_timeout_seconds=600,
        **VIDEO,
    ) as stack:
        await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: VideoJobState.SUBMITTED in phases(stack))
        clock.advance(601)
        await stack.sink.wait_for(lambda: bool(stack.sink.failed))
        assert stack.sink.failed[0][1].message.startswith(
            "HeyGen did not finish the video within 10 minutes"
        )


async def test_a_video_over_the_size_cap_is_not_posted(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    fake.mp4_bytes = b"x" * (2 * 1024 * 1024)
    async with avatar_stack(
        fake.app(),
        store,
        clock,
        tmp_path / "data",
        video_max_mb=1,
        video_poll_seconds=0.01,
        **VIDEO,
    ) as stack:
        fake.file_base = stack.vendor_url
        await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: bool(stack.sink.failed))
        assert "larger than 1 MB" in stack.sink.failed[0][1].message
        assert not stack.sink.ready


async def test_daily_budgets_are_checked_before_submitting(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with avatar_stack(
        fake.app(),
        store,
        clock,
        tmp_path / "data",
        video_daily_per_user=1,
        video_daily_per_workspace=2,
        **VIDEO,
    ) as stack:
        await stack.delivery.request_video(request("one?"), TARGET)
        with pytest.raises(AvatarLimitReached, match="daily limit of 1 avatar videos for you"):
            await stack.delivery.request_video(request("two?"), TARGET)
        await stack.delivery.request_video(request("three?", user="U2"), TARGET)
        with pytest.raises(AvatarLimitReached, match="for this workspace"):
            await stack.delivery.request_video(request("four?", user="U3"), TARGET)
        await stack.sink.wait_for(lambda: len(fake.videos) == 2)
        assert len(fake.faults.requests("create_video_v3")) == 2


async def test_without_a_key_videos_say_which_variable_turns_them_on(
    store, clock, tmp_path
) -> None:
    fake = FakeHeyGen()
    async with avatar_stack(
        fake.app(), store, clock, tmp_path / "data", heygen_api_key=None
    ) as stack:
        assert not stack.delivery.video_enabled
        with pytest.raises(AvatarUnavailable, match="HEYGEN_API_KEY"):
            await stack.delivery.request_video(request(), TARGET)


async def test_an_unsigned_callback_without_a_secret_is_a_hint_confirmed_by_get(
    store, clock, tmp_path
) -> None:
    # No HEYGEN_WEBHOOK_SECRET and polling too slow to matter: only the per-video callback,
    # which HeyGen sends unsigned, can finish this job; the job GETs the video before trusting it.
    fake = FakeHeyGen(polls_to_complete=None)
    settings = {**VIDEO, "heygen_webhook_secret": None, "video_poll_seconds": 3600}
    async with avatar_stack(fake.app(), store, clock, tmp_path / "data", **settings) as stack:
        fake.file_base = stack.vendor_url
        job_id = await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: VideoJobState.SUBMITTED in phases(stack))
        [video_id] = fake.videos
        gets = len(fake.faults.requests("get_video_v3"))
        fake.complete(video_id)
        delivery = await fake.deliveries.get()
        assert "Heygen-Signature" not in delivery.headers and delivery.status == 200
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        assert [d.video.job_id for d in stack.sink.ready] == [job_id]
        assert len(fake.faults.requests("get_video_v3")) > gets  # confirmed, not trusted
        async with aiohttp.ClientSession() as http:
            # HeyGen validates webhook URLs with OPTIONS
            async with http.options(f"{stack.web_url}/heygen/webhook") as resp:
                assert resp.status == 200
            # junk is refused without a traceback
            async with http.post(f"{stack.web_url}/heygen/webhook", data=b'{"x":') as resp:
                assert resp.status == 400


async def test_an_unsigned_callback_naming_another_video_wakes_nothing(
    store, clock, tmp_path
) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with webhook_stack(fake, store, clock, tmp_path) as stack:
        job_id = await stack.delivery.request_video(request(), TARGET)
        # the first status check is done and its progress shown: the job now waits an hour
        await stack.sink.wait_for(lambda: phases(stack).count(VideoJobState.SUBMITTED) >= 2)
        gets = len(fake.faults.requests("get_video_v3"))
        body = json.dumps(
            {
                "event_type": "avatar_video.success",
                "event_data": {"video_id": "someone-elses", "callback_id": job_id},
            }
        ).encode()
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{stack.web_url}/heygen/webhook", data=body) as resp,
        ):
            assert resp.status == 200  # says nothing about our state
        assert await stack.delivery.video_webhook(WebhookEvent.model_validate_json(body)) == (
            "unknown"
        )
        assert len(fake.faults.requests("get_video_v3")) == gets and not stack.sink.ready


async def test_a_v2_template_renders_the_script_into_its_variable(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    async with polling_stack(
        fake,
        store,
        clock,
        tmp_path,
        heygen_video_api="v2",
        video_template_id="tpl_welcome",
        video_template_variable="name",
    ) as stack:
        job_id = await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        [sent] = fake.faults.requests("generate_template_v2")
        assert sent.json["variables"]["name"]["properties"]["content"] == (
            "Run avatarbot knowledge add."
        )
        assert sent.json["callback_id"] == job_id
        assert stack.sink.ready[0].content == fake.mp4_bytes


async def test_captions_are_burnt_in_and_the_captioned_render_is_posted(
    store, clock, tmp_path
) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    async with polling_stack(fake, store, clock, tmp_path, video_captions=True) as stack:
        await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        [sent] = fake.faults.requests("create_video_v3")
        assert sent.json["caption"] == {"file_format": "srt", "style": "default"}
        assert stack.sink.ready[0].content == fake.captioned_mp4_bytes


async def test_a_job_resumed_while_downloading_fetches_a_fresh_link(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    async with polling_stack(fake, store, clock, tmp_path, start=False) as stack:
        video_id = await stack.delivery.clients.video.submit(
            RenderRequest(script="Say this.", avatar_id=AVATAR, job_id="job-resumed")
        )
        fake.complete(video_id)
        stale = fake.video_url(video_id)
        fake.expire_links()  # the presigned URL the crashed run stored has expired
        await store.create_video_job(
            VideoJobRecord(
                id="job-resumed",
                dedupe_key="C1:1:resumed",
                question="q?",
                script="Say this.",
                state=VideoJobState.DOWNLOADING,
                heygen_video_id=video_id,
                video_url=stale,
                created_at=clock(),
                target=dict(TARGET),
            )
        )
        await stack.delivery.start()
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        assert stack.sink.ready[0].content == fake.mp4_bytes
        assert stack.sink.ready[0].video.page_url == fake.page_url(video_id)
        assert fake.faults.requests("get_video_v3")  # asked HeyGen again
        assert (await settled(store, "job-resumed")).video_url != stale


async def test_a_non_ascii_signature_header_is_a_401_not_a_500(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with avatar_stack(fake.app(), store, clock, tmp_path / "data", **VIDEO) as stack:
        host, port = stack.web_url.removeprefix("http://").split(":")
        body = b'{"event_type": "avatar_video.success", "event_data": {"video_id": "v1"}}'
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /heygen/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + b"Heygen-Signature: \xe9\xff\xfe\r\n"  # not even UTF-8
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
        assert status_line.split()[1] == b"401"


async def test_a_chunked_callback_is_read_whole(store, clock, tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with webhook_stack(fake, store, clock, tmp_path) as stack:
        fake.file_base = stack.vendor_url
        job_id = await stack.delivery.request_video(request(), TARGET)
        await stack.sink.wait_for(lambda: phases(stack).count(VideoJobState.SUBMITTED) >= 2)
        [video_id] = fake.videos
        fake.videos[video_id].status = "completed"  # HeyGen is done; only a callback says so
        body = json.dumps(
            {
                "event_type": "avatar_video.success",
                "event_data": {"video_id": video_id, "callback_id": job_id},
            }
        ).encode()

        async def pieces() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 7):  # no Content-Length: chunked, in small pieces
                yield body[i : i + 7]

        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{stack.web_url}/heygen/webhook", data=pieces()) as resp,
        ):
            assert resp.status == 200
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        assert [d.video.job_id for d in stack.sink.ready] == [job_id]
