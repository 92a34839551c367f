"""A bot replica in its own OS process, for the exactly-once upload test: it asks for a video
and delivers it into Slack through the real `SlackVideoSink`; the test kills it (SIGKILL) once
Slack has shared the file but before the replica hears back, so "delivered" is never written.

    python -m tests.video_upload_proc <state.db> <heygen url> <slack url> <data dir> <fernet key>
"""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.videos import SlackVideoSink
from tests.avatar_worker_proc import REQUEST, doomed_replica
from tests.fakes.slack import BOT_TOKEN

TARGET = {"channel": "C1", "thread_ts": "1700000000.000100", "user": "U1"}


def slack_sink(slack_url: str) -> SlackVideoSink:
    """The production sink; it only needs the Web API client of the Slack services."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{slack_url}/api/")
    return SlackVideoSink(SimpleNamespace(client=client))  # type: ignore[arg-type]


async def main(db: str, heygen: str, slack: str, data_dir: str, key: str) -> None:
    async with doomed_replica(db, heygen, data_dir, key, slack_sink(slack)) as (delivery, _):
        job_id = await delivery.request_video(REQUEST, TARGET)
        print("REQUESTED", job_id, flush=True)
        await asyncio.Event().wait()  # until SIGKILL: no cleanup runs


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
