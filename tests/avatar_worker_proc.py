"""A bot replica in its own OS process, for the restart test: it asks for a video, says
"SUBMITTED <job id>" once HeyGen accepted the render, then waits to be killed.

    python -m tests.avatar_worker_proc <state.db> <heygen base url> <data dir> <fernet key>
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.avatar.delivery import RenderedVideo, SaveTarget, VideoProgress, VideoRequest
from bot.avatar.service import AvatarDelivery
from bot.config import load_settings
from bot.heygen.clients import heygen_clients
from bot.store.base import VideoJobState
from bot.store.sealing import Sealer
from bot.store.sql import SqlStore, sqlite_url
from tests.fakes.heygen import API_KEY

AVATAR = "Angela-inblackskirt-20220820"


class PrintingSink:
    async def video_progress(self, target: dict[str, Any], progress: VideoProgress) -> None:
        return None

    async def video_ready(
        self, target: dict[str, Any], video: RenderedVideo, save: SaveTarget
    ) -> None:
        print("DELIVERED", video.job_id, flush=True)

    async def video_failed(self, target: dict[str, Any], progress: VideoProgress) -> None:
        print("FAILED", progress.message, flush=True)


REQUEST = VideoRequest(
    question="How do I add documents?",
    script="Run avatarbot knowledge add.",
    requested_by="U1",
    team="T1",
    dedupe_key="C1:1:q",
)


@asynccontextmanager
async def doomed_replica(
    db: str, base: str, data_dir: str, key: str, sink: Any
) -> AsyncIterator[tuple[AvatarDelivery, SqlStore]]:
    """The avatar service as a replica runs it, over the shared state file, started."""
    settings = load_settings(
        heygen_api_base=base,
        heygen_api_key=API_KEY,
        heygen_avatar_id=AVATAR,
        avatarbot_data_dir=Path(data_dir),
        liveavatar_api_key=None,
        video_poll_seconds=0.05,
    )
    store = SqlStore(sqlite_url(Path(db)), sealer=Sealer([key.encode()]))
    async with store, heygen_clients(settings) as clients:
        delivery = AvatarDelivery(settings, store, clients, sink, owner="doomed")
        await delivery.start()
        yield delivery, store


async def main(db: str, base: str, data_dir: str, key: str) -> None:
    async with doomed_replica(db, base, data_dir, key, PrintingSink()) as (delivery, store):
        job_id = await delivery.request_video(REQUEST, {"channel": "C1"})
        while True:
            job = await store.get_video_job(job_id)
            if job is not None and job.state in (
                VideoJobState.SUBMITTED,
                VideoJobState.RENDERING,
            ):
                print("SUBMITTED", job_id, flush=True)
                break
            await asyncio.sleep(0.02)
        await asyncio.Event().wait()  # until SIGKILL: no cleanup runs


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
