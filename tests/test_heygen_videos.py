"""Video render and catalog clients (v3 default, v2 legacy) against the loopback HeyGen fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from bot.config import VideoApi
from bot.heygen.clients import HeyGenClients
from bot.heygen.errors import HeyGenAuthError, HeyGenError, HeyGenTimeout
from bot.heygen.video import Orientation, RenderRequest, VideoStatus, wait_until_done
from bot.heygen.videos_v2 import TemplateGenerateRequest
from bot.heygen.videos_v3 import CreateVideoRequest
from tests.fakes.clients import served_clients
from tests.fakes.faults import Fault
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.sleeps import Sleeps

AVATAR = "Angela-inblackskirt-20220820"
VOICE = "hg-voice-1"


@pytest.fixture
def fake() -> FakeHeyGen:
    return FakeHeyGen(polls_to_complete=2)


@pytest.fixture
async def clients(fake: FakeHeyGen, sleeps: Sleeps) -> AsyncIterator[HeyGenClients]:
    async with served_clients(
        fake.app(),
        sleep=sleeps,
        backoff_base=0.001,
        heygen_api_key=API_KEY,
        heygen_timeout_seconds=0.5,
        _env_file=None,
    ) as c:
        yield c


def render(**kw: object) -> RenderRequest:
    return RenderRequest(
        **{"script": "Hello from the handbook.", "avatar_id": AVATAR, "voice_id": VOICE, **kw}
    )


# --- v3 (default) ---------------------------------------------------------------------------


async def test_v3_render_moves_pending_processing_completed(clients, fake) -> None:
    renderer = clients.video  # HEYGEN_VIDEO_API defaults to v3
    video_id = await renderer.submit(
        render(title="T", callback_url="http://127.0.0.1:9/cb", job_id="job-1")
    )
    [sent] = fake.faults.requests("create_video_v3")
    assert sent.json == {
        "type": "avatar",
        "avatar_id": AVATAR,
        "voice_id": VOICE,
        "script": "Hello from the handbook.",
        "title": "T",
        "aspect_ratio": "16:9",
        "callback_url": "http://127.0.0.1:9/cb",
        "callback_id": "job-1",
    }
    assert sent.headers["Idempotency-Key"] == "job-1"
    seen: list[VideoStatus] = []
    poll_sleeps = Sleeps()
    job = await wait_until_done(
        renderer,
        video_id,
        poll_interval=7,
        on_update=lambda j: seen.append(j.status),
        sleep=poll_sleeps,
    )
    assert seen == [VideoStatus.PENDING, VideoStatus.PROCESSING, VideoStatus.COMPLETED]
    assert poll_sleeps.delays == [7, 7]
    assert job.video_url == fake.video_url(video_id)
    assert job.thumbnail_url and job.duration == 4.2 and job.error_message is None


async def test_v3_portrait_captions_and_background_reach_the_body(clients, fake) -> None:
    await clients.video.submit(
        render(orientation=Orientation.PORTRAIT, captions=True, background_color="#123456")
    )
    [sent] = fake.faults.requests("create_video_v3")
    assert sent.json["aspect_ratio"] == "9:16"
    assert sent.json["caption"] == {"file_format": "srt"}
    assert sent.json["background"] == {"type": "color", "value": "#123456"}


async def test_v3_failed_render_reports_code_and_message(clients, fake) -> None:
    video_id = await clients.video.submit(render())
    fake.fail(video_id, "rendering_failed", "Avatar rendering timed out")
    job = await clients.video.status(video_id)
    assert job.status == VideoStatus.FAILED
    assert (job.error_code, job.error_message) == ("rendering_failed", "Avatar rendering timed out")
    assert job.video_url is None


async def test_v3_unknown_avatar_and_voice_are_clear_errors(clients) -> None:
    with pytest.raises(HeyGenError) as info:
        await clients.video.submit(render(avatar_id="nobody"))
    assert info.value.status == 404 and info.value.code == "avatar_not_found"
    assert info.value.is_not_found and "nobody" in str(info.value)
    with pytest.raises(HeyGenError) as info:
        await clients.video.submit(render(voice_id="no-voice"))
    assert info.value.code == "voice_not_found"


async def test_fake_rejects_missing_fields_like_the_service(clients) -> None:
    with pytest.raises(ValidationError):
        CreateVideoRequest(avatar_id=AVATAR, script="")  # caught before any request
    with pytest.raises(HeyGenError) as info:
        await clients.heygen_api().request(
            "POST", "/v3/videos", json={"type": "avatar", "avatar_id": AVATAR}, idempotent=False
        )
    assert info.value.status == 400 and info.value.code == "invalid_parameter"
    assert "script" in info.value.message


async def test_v3_create_retried_on_500_renders_once(clients, fake) -> None:
    fake.faults.add("create_video_v3", Fault.server_error())
    video_id = await clients.video.submit(render(job_id="job-42"))
    attempts = fake.faults.requests("create_video_v3")
    assert len(attempts) == 2  # retried, with the same key, so the server replays
    assert {a.headers["Idempotency-Key"] for a in attempts} == {"job-42"}
    assert list(fake.videos) == [video_id]
    # Resubmitting the same job (e.g. after a crash) returns the same video.
    assert await clients.video.submit(render(job_id="job-42")) == video_id
    assert len(fake.videos) == 1


async def test_status_honours_retry_after_then_succeeds(clients, fake, sleeps) -> None:
    video_id = await clients.video.submit(render())
    fake.faults.add(
        "get_video_v3", Fault.rate_limited(retry_after="3"), Fault.server_error(502, "Bad Gateway")
    )
    job = await clients.video.status(video_id)
    assert job.status == VideoStatus.PENDING
    assert len(fake.faults.requests("get_video_v3")) == 3
    assert sleeps.delays[0] == 3.0


async def test_video_not_found(clients) -> None:
    with pytest.raises(HeyGenError) as info:
        await clients.video.status("missing")
    assert info.value.status == 404 and info.value.is_not_found


async def test_concurrency_limit_code_is_recognised(clients, fake) -> None:
    fake.faults.add(
        "create_video_v3", Fault.api_error(10007, "Concurrent limit reached", status=400)
    )
    with pytest.raises(HeyGenError) as info:
        await clients.video.submit(render())
    assert info.value.is_concurrency_limit and not info.value.is_transient


async def test_bad_key_is_auth_error_on_every_family(fake, sleeps) -> None:
    async with served_clients(
        fake.app(), sleep=sleeps, heygen_api_key="wrong-key-123456", _env_file=None
    ) as c:
        for call in (
            c.video.submit(render()),
            c.renderer(VideoApi.V2).status("x"),
            c.catalog().voices(),
        ):
            with pytest.raises(HeyGenAuthError) as info:
                await call
            assert info.value.status == 401
            assert "wrong-key-123456" not in str(info.value) + info.value.body


# --- v2 (legacy) ----------------------------------------------------------------------------


async def test_v2_render_with_v1_status(clients, fake) -> None:
    renderer = clients.renderer(VideoApi.V2)
    video_id = await renderer.submit(render(job_id="job-7", orientation=Orientation.PORTRAIT))
    [sent] = fake.faults.requests("generate_video_v2")
    assert sent.json["video_inputs"] == [
        {
            "character": {"type": "avatar", "avatar_id": AVATAR, "avatar_style": "normal"},
            "voice": {"type": "text", "voice_id": VOICE, "input_text": "Hello from the handbook."},
        }
    ]
    assert sent.json["dimension"] == {"width": 720, "height": 1280}
    assert sent.json["callback_id"] == "job-7" and sent.json["caption"] is False
    statuses = [(await renderer.status(video_id)).status for _ in range(3)]
    assert statuses == [VideoStatus.PENDING, VideoStatus.PROCESSING, VideoStatus.COMPLETED]
    assert fake.faults.requests("video_status_v1")[0].query == {"video_id": video_id}


async def test_v2_waiting_counts_as_pending_and_failure_carries_error(clients, fake) -> None:
    renderer = clients.renderer(VideoApi.V2)
    fake.faults.add(
        "video_status_v1",
        Fault.raw(
            200, {"code": 100, "message": "Success", "data": {"id": "v", "status": "waiting"}}
        ),
    )
    assert (await renderer.status("v")).status == VideoStatus.PENDING
    video_id = await renderer.submit(render())
    fake.fail(video_id, "too_long", "Video is too long")
    job = await renderer.status(video_id)
    assert job.status == VideoStatus.FAILED and job.error_message == "Video is too long"
    assert job.error_code == "40119"


async def test_v2_create_is_sent_once_on_500(clients, fake) -> None:
    fake.faults.add("generate_video_v2", Fault.server_error())
    with pytest.raises(HeyGenError) as info:
        await clients.renderer(VideoApi.V2).submit(render())
    assert info.value.status == 500
    assert len(fake.faults.requests("generate_video_v2")) == 1
    assert fake.videos == {}


async def test_v2_create_timeout_is_clear_and_not_resent(clients, fake) -> None:
    fake.faults.add("generate_video_v2", Fault.stall_until())
    with pytest.raises(HeyGenTimeout) as info:
        await clients.renderer(VideoApi.V2).submit(render())
    assert "no response within 0.5s" in str(info.value)
    assert "may still have been processed" in str(info.value)
    assert len(fake.faults.requests("generate_video_v2")) == 1


async def test_v2_needs_a_voice(clients) -> None:
    with pytest.raises(ValueError, match="HEYGEN_VOICE_ID"):
        await clients.renderer(VideoApi.V2).submit(render(voice_id=None))


async def test_v2_templates_list_get_generate(clients, fake) -> None:
    v2 = clients.videos_v2
    [tpl] = await v2.list_templates()
    assert (tpl.template_id, tpl.name) == ("tpl_welcome", "Welcome")
    detail = await v2.get_template("tpl_welcome")
    assert detail.variables["name"].type == "text"
    created = await v2.generate_from_template(
        "tpl_welcome", TemplateGenerateRequest.with_text({"name": "Ada"}, title="Hi")
    )
    [sent] = fake.faults.requests("generate_template_v2")
    assert sent.json["variables"] == {
        "name": {"name": "name", "type": "text", "properties": {"content": "Ada"}}
    }
    assert fake.videos[created.video_id].title == "Hi"
    with pytest.raises(HeyGenError) as info:
        await v2.generate_from_template(
            "tpl_welcome", TemplateGenerateRequest.with_text({"nope": "x"})
        )
    assert info.value.status == 400 and "nope" in info.value.message
    with pytest.raises(HeyGenError) as info:
        await v2.get_template("missing")
    assert info.value.is_not_found


# --- catalog --------------------------------------------------------------------------------


async def test_v3_catalog_pages_through_looks_and_voices(fake, sleeps) -> None:
    fake.looks.update(
        {f"look-{i}": {"name": f"Look {i}", "group_id": "ag_many"} for i in range(60)}
    )
    async with served_clients(
        fake.app(), sleep=sleeps, heygen_api_key=API_KEY, _env_file=None
    ) as c:
        avatars = await c.catalog().avatars()
        assert len(avatars) == 62 and avatars[0].avatar_id == AVATAR
        assert avatars[0].default_voice_id == "hg-voice-1"
        assert len(fake.faults.requests("list_looks_v3")) == 2
        voices = await c.catalog().voices()
        assert [v.voice_id for v in voices] == ["hg-voice-1", "hg-voice-2"]
        page = await c.videos_v3.list_voices(limit=1)
        assert page.has_more and page.next_token
        nxt = await c.videos_v3.list_voices(limit=1, token=page.next_token)
        assert nxt.data[0].voice_id == "hg-voice-2" and not nxt.has_more
        groups = await c.videos_v3.list_avatars()
        assert {g.id for g in groups.data} == {"ag_angela", "ag_wayne", "ag_many"}
        assert [t.template_id for t in await c.catalog().templates()] == ["tpl_welcome"]


async def test_v2_catalog(clients) -> None:
    catalog = clients.catalog(VideoApi.V2)
    avatars = await catalog.avatars()
    assert [(a.avatar_id, a.name) for a in avatars][:1] == [(AVATAR, "Angela in Black Dress")]
    assert {v.name for v in await catalog.voices()} == {"Sara", "James"}


async def test_catalog_get_retried_on_500(clients, fake) -> None:
    fake.faults.add("list_voices_v2", Fault.server_error(), Fault.server_error(503))
    assert len(await clients.catalog(VideoApi.V2).voices()) == 2
    assert len(fake.faults.requests("list_voices_v2")) == 3
