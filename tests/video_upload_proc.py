"""A bot replica in its own OS process, for the exactly-once upload test: it asks for a video
and delivers it into Slack through the real `SlackVideoSink`; the test kills it (SIGKILL) once
Slack has shared the file but before the replica hears back, so "delivered" is never written.

    python -m tests.video_upload_proc <state.db> <heygen url> <slack url> <data dir> <fernet key>
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

from slack_sdk.web.async_client import AsyncWebClient

from bot.avatar.delivery import VideoRequest
from bot.avatar.service import AvatarDelivery
from bot.config import load_settings
from bot.heygen.clients import heygen_clients
from bot.slack.videos import SlackVideoSink
from bot.store.sealing import Sealer
from bot.store.sql import SqlStore, sqlite_url
from tests.fakes.heygen import API_KEY
from tests.fakes.slack import BOT_TOKEN

AVATAR = "Angela-inblackskirt-20220820"
TARGET = {"channel": "C1", "thread_ts": "1700000000.000100", "user": "U1"}


def slack_sink(slack_url: str) -> SlackVideoSink:
    """The production sink; it only needs the Web API client of the Slack services."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{slack_url}/api/")
    return SlackVideoSink(SimpleNamespace(client=client))  # type: ignore[arg-type]


async def main(db: str, heygen: str, slack: str, data_dir: str, key: str) -> None:
    settings = load_settings(
        heygen_api_base=heygen,
        heygen_api_key=API_KEY,
        heygen_avatar_id=AVATAR,
        avatarbot_data_dir=Path(data_dir),
        liveavatar_api_key=None,
        video_poll_seconds=0.05,
    )
    store = SqlStore(sqlite_url(Path(db)), sealer=Sealer([key.encode()]))
    async with store, heygen_clients(settings) as clients:
        delivery = AvatarDelivery(settings, store, clients, slack_sink(slack), owner="doomed")
        await delivery.start()
        job_id = await delivery.request_video(
            VideoRequest(
                question="How do I add documents?",
                script="Run avatarbot knowledge add.",
                requested_by="U1",
                team="T1",
                dedupe_key="C1:1:q",
            ),
            TARGET,
        )
        print("REQUESTED", job_id, flush=True)
        await asyncio.Event().wait()  # until SIGKILL: no cleanup runs


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
