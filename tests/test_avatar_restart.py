"""A replica killed mid-render (SIGKILL, a real OS process): the video is still delivered,
exactly once, by the replica that takes over; and a job resubmitted after a crash between
"HeyGen accepted it" and "we wrote that down" never renders twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.heygen.video import RenderRequest
from bot.store.base import VideoJobRecord, VideoJobState
from tests.avatar_stack import avatar_stack, settled
from tests.avatar_state import KEY, sql_state, state_clock
from tests.fakes.faults import Fault
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.server import serve
from tests.fakes.slack import FakeSlack
from tests.video_upload_proc import slack_sink

AVATAR = "Angela-inblackskirt-20220820"
VIDEO = {
    "heygen_api_key": API_KEY,
    "heygen_avatar_id": AVATAR,
    "liveavatar_api_key": None,
    "video_poll_seconds": 0.01,
}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


async def replica(module: str, *args: object) -> asyncio.subprocess.Process:
    """A bot replica in its own OS process (`module` is its script), the state key last."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *map(str, args),
        KEY.decode(),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_a_replica_killed_mid_render_still_delivers_exactly_once(tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    db = tmp_path / "state.db"
    async with serve(fake.app()) as vendor_url:
        fake.file_base = vendor_url
        proc = await replica("tests.avatar_worker_proc", db, vendor_url, tmp_path / "doomed")
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert line.startswith(b"SUBMITTED "), line
        job_id = line.split()[1].decode()
        [video_id] = fake.videos
        fake.complete(video_id)

        clock = state_clock()
        clock.advance(300)  # the dead replica's lease has run out
        # avatar_stack serves a second app over the same fake state
        async with (
            sql_state(db, clock) as store,
            avatar_stack(fake.app(), store, clock, tmp_path / "data", **VIDEO) as stack,
        ):
            await stack.sink.wait_for(lambda: bool(stack.sink.ready))
            job = await settled(store, job_id)
            assert job.state is VideoJobState.DELIVERED
            assert job.attempts == 2
            assert [d.video.job_id for d in stack.sink.ready] == [job_id]
            assert stack.sink.ready[0].content == fake.mp4_bytes
        assert len(fake.videos) == 1
        assert len(fake.faults.requests("create_video_v3")) == 1


async def test_a_resubmit_after_a_crash_returns_the_same_render(tmp_path) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    clock = state_clock()
    async with (
        sql_state(tmp_path / "state.db", clock) as store,
        avatar_stack(fake.app(), store, clock, tmp_path / "data", start=False, **VIDEO) as stack,
    ):
        fake.file_base = stack.vendor_url
        job = VideoJobRecord(
            id="job-crashed-after-submit",
            dedupe_key="C1:1:q",
            question="q?",
            script="Say this.",
            created_at=clock(),
            target={"channel": "C1"},
        )
        await store.create_video_job(job)
        # the previous run got as far as HeyGen accepting the render, then died
        first = await stack.delivery.clients.video.submit(
            RenderRequest(script="Say this.", avatar_id=AVATAR, job_id=job.id)
        )
        await stack.delivery.start()
        await stack.sink.wait_for(lambda: bool(stack.sink.ready))
        assert list(fake.videos) == [first]
        assert len(stack.sink.ready) == 1


@pytest.mark.parametrize("took_effect", [True, False], ids=["after-sharing", "before-sharing"])
async def test_a_replica_killed_while_completing_the_upload_posts_the_video_once(
    tmp_path, took_effect: bool
) -> None:
    """SIGKILL during files.completeUploadExternal, after Slack shared the file (its answer
    never came) or before the call reached Slack: the replica that resumes looks for the
    shared file (files.info), and either only records it or completes the same file id;
    never a second upload."""
    fake = FakeHeyGen(polls_to_complete=1)
    slack = FakeSlack()
    never = asyncio.Event()  # the doomed replica never hears back
    if took_effect:
        slack.hold_after["files.completeUploadExternal"] = never
    else:
        slack.faults.add("files.completeUploadExternal", Fault.stall_until(never))
    db = tmp_path / "state.db"
    async with serve(fake.app()) as vendor_url, serve(slack.app()) as slack_url:
        fake.file_base, slack.base_url = vendor_url, slack_url
        proc = await replica(
            "tests.video_upload_proc", db, vendor_url, slack_url, tmp_path / "doomed"
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.startswith(b"REQUESTED "), line
            # the replica is inside the completing call, waiting for an answer
            await slack.wait_for(
                lambda: slack.faults.requests("files.completeUploadExternal"), within=60
            )
            if took_effect:
                await slack.wait_for(lambda: shared_in(slack, "C1"), within=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        job_id = line.split()[1].decode()
        slack.hold_after.clear()
        slack.faults.clear()

        clock = state_clock()
        clock.advance(300)  # the dead replica's lease has run out
        async with (
            sql_state(db, clock) as store,
            avatar_stack(
                fake.app(), store, clock, tmp_path / "data", sink=slack_sink(slack_url), **VIDEO
            ),
        ):
            job = await settled(store, job_id)
            assert job.state is VideoJobState.DELIVERED and job.attempts == 2
        assert len(slack.calls("files.completeUploadExternal")) == 1  # the applied one
        assert len(slack.calls("files.getUploadURLExternal")) == 1  # one file id, ever
        [shared] = shared_in(slack, "C1")
        assert slack.uploads[shared["id"]] == fake.mp4_bytes
        assert slack.calls("files.info")  # the resumed replica looked for the earlier effect
        [progress] = [c for c in slack.calls("chat.update")][-1:]
        assert "video is ready" in progress.args["text"]


def shared_in(slack: FakeSlack, channel: str) -> list[dict]:
    return [f for f in slack.files.values() if channel in (f.get("channels") or [])]
