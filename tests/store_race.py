"""One racer process for tests/test_store_race.py (run with multiprocessing's spawn)."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

from bot.store.base import VideoJobRecord
from bot.store.sealing import Sealer
from bot.store.sql import SqlStore

JOBS = 20
EVENTS = 50
SCOPES = 10
SENTENCES = 20


async def _race(url: str, key: str, name: str, barrier: Any) -> dict[str, Any]:
    store = SqlStore(url, sealer=Sealer([key.encode()]))
    await store.start()  # every racer migrates the empty database at once
    try:
        created = []
        for i in range(JOBS):
            job = VideoJobRecord(
                id=f"{name}-job{i}", dedupe_key=f"q{i}", question=f"q{i}", script="s"
            )
            got, was_created = await store.create_video_job(job)
            if was_created:
                created.append(got.dedupe_key)
        if name == "racer0":
            await store.enqueue_speech("scope-speech", "a1", [f"S{i}." for i in range(SENTENCES)])
        await asyncio.to_thread(barrier.wait)

        speech_ids = [i.id for i in await store.answer_speech("a1")]
        events = [f"Ev{i}" for i in range(EVENTS) if await store.claim_once("slack", f"Ev{i}", 600)]
        jobs = []
        while (job := await store.claim_video_job(name, lease_seconds=600)) is not None:
            jobs.append(job.dedupe_key)
        scopes = []
        for i in range(SCOPES):
            _, won = await store.claim_live_scope(f"scope{i}", "liveavatar", name, 600)
            if won:
                scopes.append(f"scope{i}")
        speech = [i for i in speech_ids if await store.claim_speech(i, name)]
        link = (await store.live_link("scope-link", 3600)).token
        return {
            "created": created,
            "events": events,
            "jobs": jobs,
            "scopes": scopes,
            "speech": speech,
            "speech_seen": len(speech_ids),
            "link": link,
        }
    finally:
        await store.close()


def racer(url: str, key: str, name: str, barrier: Any, results: Any) -> None:
    try:
        results.put((name, asyncio.run(_race(url, key, name, barrier))))
    except BaseException:
        barrier.abort()
        results.put((name, {"error": traceback.format_exc()}))
