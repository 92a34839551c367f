"""The avatar service wired like production, against loopback fakes (tests and bench).

    async with avatar_stack(fake.app(), store, clock, tmp_path, **settings) as stack:
        stack.delivery, stack.sink, stack.web_url, stack.settings

The real HeyGen/LiveAvatar clients talk to the fake vendor app; the web routes (viewer page,
webhook) are served on loopback and PUBLIC_BASE_URL points at them; results go to a
`RecordingSink` (the chat surface's place).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.avatar.delivery import RenderedVideo, SaveTarget, VideoProgress
from bot.avatar.service import AvatarDelivery
from bot.config import Settings, load_settings
from bot.heygen.clients import heygen_clients
from bot.heygen.live import AgentControlChannel
from bot.store.base import AnswerRecord, Store, VideoJobRecord
from bot.web.live_page import add_live_routes
from bot.web.webhook import add_webhook_routes
from tests.fakes.server import serve


@dataclass
class Delivered:
    target: dict[str, Any]
    video: RenderedVideo
    content: bytes


@dataclass
class RecordingSink:
    """A DeliverySink that records what a chat surface would have shown."""

    progress: list[tuple[dict[str, Any], VideoProgress]] = field(default_factory=list)
    ready: list[Delivered] = field(default_factory=list)
    failed: list[tuple[dict[str, Any], VideoProgress]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def video_progress(
        self, target: dict[str, Any], progress: VideoProgress
    ) -> dict[str, Any] | None:
        self.progress.append((target, progress))
        self.changed.set()
        # like Slack: the first progress message's ts is kept with the job
        return None if "progress_ts" in target else {**target, "progress_ts": "1700.0001"}

    async def video_ready(
        self, target: dict[str, Any], video: RenderedVideo, save: SaveTarget
    ) -> None:
        content = await asyncio.to_thread(video.path.read_bytes)
        self.ready.append(Delivered(target, video, content))
        self.changed.set()

    async def video_failed(self, target: dict[str, Any], progress: VideoProgress) -> None:
        self.failed.append((target, progress))
        self.changed.set()

    async def wait_for(self, done: Callable[[], bool], limit: float = 20.0) -> None:
        """Until `done()` holds: woken by the sink, re-checked often for conditions on the
        fakes (`limit` guards against hangs; it is not a timing assertion)."""
        async with asyncio.timeout(limit):
            while not done():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.02)


@dataclass
class Stack:
    delivery: AvatarDelivery
    sink: RecordingSink
    settings: Settings
    web_url: str
    vendor_url: str


@asynccontextmanager
async def avatar_stack(
    vendor: web.Application,
    store: Store,
    clock: Callable[[], float],
    data_dir: Path,
    *,
    agent_control: AgentControlChannel | None = None,
    owner: str | None = None,
    sink: RecordingSink | None = None,
    start: bool = True,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    async with serve(vendor) as vendor_url:
        values: dict[str, Any] = {
            "heygen_api_base": vendor_url,
            "liveavatar_api_base": vendor_url,
            "avatarbot_data_dir": data_dir,
            "public_base_url": "http://127.0.0.1:9",
        }
        values.update(overrides)
        settings = load_settings(**values)
        sink = sink or RecordingSink()
        async with heygen_clients(settings, backoff_base=0.0) as clients:
            delivery = AvatarDelivery(
                settings,
                store,
                clients,
                sink,
                agent_control=agent_control,
                owner=owner,
                clock=clock,
            )
            app = web.Application()
            add_live_routes(app, delivery.viewer)
            add_webhook_routes(app, delivery)
            async with serve(app) as web_url:
                if overrides.get("public_base_url", "") is not None:
                    settings.public_base_url = web_url
                if start:
                    await delivery.start()
                try:
                    yield Stack(delivery, sink, settings, web_url, vendor_url)
                finally:
                    await delivery.stop()
    shutil.rmtree(data_dir / "videos", ignore_errors=True)


async def settled(store: Store, job_id: str) -> VideoJobRecord:
    """The job once it reached a finished state (the sink hears of it a moment earlier)."""
    async with asyncio.timeout(10):
        while True:
            job = await store.get_video_job(job_id)
            if job is not None and job.state.finished:
                return job
            await asyncio.sleep(0.01)


def liveavatar_stack(
    fake: Any, store: Store, clock: Callable[[], float], data_dir: Path, **settings: Any
):
    """`avatar_stack` for the LiveAvatar fake, with its key and avatar, the server speaking
    through the loopback LiveKit channel (`settings` override)."""
    from tests.fakes.liveavatar import API_KEY, AVATAR_ID, VOICE_ID, LoopbackAgentControl

    values = {
        "liveavatar_api_key": API_KEY,
        "live_avatar_id": AVATAR_ID,
        "live_voice_id": VOICE_ID,
        "heygen_api_key": None,
        **settings,
    }
    return avatar_stack(
        fake.app(), store, clock, data_dir, agent_control=LoopbackAgentControl(fake), **values
    )


HANDBOOK = {"number": 1, "title": "Handbook", "link": "https://docs.example.com/add"}


def handbook_answer(**changes: Any) -> AnswerRecord:
    """A saved answer citing one web source, as the chat surface stores it."""
    values: dict[str, Any] = {
        "id": "a1",
        "question": "How do I add documents?",
        "text": "Run add [1].",
        "spoken": "Run add.",
        "channel": "C1",
        "sources": [HANDBOOK],
        **changes,
    }
    return AnswerRecord(**values)
