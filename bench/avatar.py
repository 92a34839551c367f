"""`python -m bench avatar`: avatar delivery figures, each beside its baseline, in one run.

1. Sentence complete -> its speak event leaves the bot (p50/p99), streaming sentence by
   sentence vs the whole-answer baseline (speak once the answer is complete). The answer
   streams at a steady pace (SENTENCE_MS per sentence, like an LLM); server publisher path
   (the speak event handed to the LiveKit channel) and viewer path (the event queued for the
   page's SSE stream).
2. Live sessions created for 20 questions in one channel: LIVE_REUSE=channel vs off.
3. HeyGen completion -> MP4 handed to the delivery sink: webhook vs polling (production
   poll settings: 5 s, x1.5 backoff).

Everything runs against the loopback fakes (tests/fakes) and a SQLite store in a temp dir.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.avatar.delivery import LiveScope, VideoJobState, VideoRequest
from bot.heygen.live import AvatarRoom
from bot.heygen.liveavatar import AgentControlEvent, SpeakText
from tests.avatar_stack import avatar_stack
from tests.avatar_state import sql_state
from tests.fakes.heygen import API_KEY as HEYGEN_KEY
from tests.fakes.heygen import CALLBACK_SECRET, FakeHeyGen
from tests.fakes.liveavatar import API_KEY, AVATAR_ID, FakeLiveAvatar, LoopbackAgentControl

SENTENCE_MS = 120.0
RENDER_SECONDS = (2.0, 4.5, 7.0, 9.5)  # when the fake finishes, after the job is rendering
LIVE = {
    "liveavatar_api_key": API_KEY,
    "live_avatar_id": AVATAR_ID,
    "heygen_api_key": None,
    "live_max_sessions": 50,
}


class TimedChannel(LoopbackAgentControl):
    """The loopback room, noting when each speak event leaves the bot."""

    def __init__(self, fake: FakeLiveAvatar) -> None:
        super().__init__(fake)
        self.sent: dict[str, float] = {}

    async def publish(self, session: AvatarRoom, event: AgentControlEvent) -> None:
        if isinstance(event, SpeakText):
            self.sent[event.text] = time.perf_counter()
        await super().publish(session, event)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _answer(tag: str, n: int, done: dict[str, float]) -> AsyncIterator[str]:
    for i in range(n):
        await asyncio.sleep(SENTENCE_MS / 1000)
        text = f"Answer {tag} sentence {i} says something useful."
        done[text] = time.perf_counter()
        yield text


async def _whole(tag: str, n: int, done: dict[str, float]) -> AsyncIterator[str]:
    texts = [t async for t in _answer(tag, n, done)]  # wait for the whole answer
    for text in texts:
        yield text


async def speech_latency(tmp: Path, answers: int, per_answer: int) -> dict[str, list[float]]:
    fake = FakeLiveAvatar(max_concurrent=50)
    channel = TimedChannel(fake)
    out: dict[str, list[float]] = {}
    async with (
        sql_state(tmp / "speech.db", time.time) as store,
        avatar_stack(
            fake.app(), store, time.time, tmp / "data", agent_control=channel, **LIVE
        ) as stack,
    ):
        d: Any = stack.delivery
        scope = LiveScope(team="T1", channel="C-bench")
        key = d.scope_key(scope)
        await d.live.viewer_session(key, None)
        queue = d.bus.subscribe(key)  # what a page's SSE stream reads
        queued: dict[str, float] = {}

        async def page() -> None:
            while True:
                event = await queue.get()
                for item in event.get("items", ()):
                    queued[item["text"]] = time.perf_counter()

        reader = asyncio.create_task(page())
        for mode, source in (("streamed", _answer), ("whole answer", _whole)):
            done: dict[str, float] = {}
            for a in range(answers):
                await d.speak(scope, f"{mode}-{a}", source(f"{mode}{a}", per_answer, done))
            await asyncio.sleep(0.05)
            out[f"{mode}: speak event (server)"] = [
                (channel.sent[t] - done[t]) * 1000 for t in done
            ]
            out[f"{mode}: SSE event (viewer page)"] = [(queued[t] - done[t]) * 1000 for t in done]
        reader.cancel()
    return out


async def sessions_for(tmp: Path, reuse: str, questions: int) -> int:
    fake = FakeLiveAvatar(max_concurrent=questions + 1)
    async with (
        sql_state(tmp / f"sessions-{reuse}.db", time.time) as store,
        avatar_stack(
            fake.app(),
            store,
            time.time,
            tmp / f"data-{reuse}",
            agent_control=LoopbackAgentControl(fake),
            live_reuse=reuse,
            **{**LIVE, "live_max_sessions": questions + 1},
        ) as stack,
    ):
        d: Any = stack.delivery

        async def one(text: str) -> AsyncIterator[str]:
            yield text

        for q in range(questions):
            scope = LiveScope(
                team="T1", channel="C1", thread_ts=f"17.{q}", user=f"U{q % 4}", answer_id=f"a{q}"
            )
            await d.speak(scope, f"a{q}", one(f"Answer {q}."))
            await d.live.viewer_session(d.scope_key(scope), None)  # someone watches
        return len(fake.sessions)


async def completion(tmp: Path, mode: str, samples: int) -> list[float]:
    fake = FakeHeyGen(polls_to_complete=None)
    settings: dict[str, Any] = {
        "heygen_api_key": HEYGEN_KEY,
        "heygen_avatar_id": "Angela-inblackskirt-20220820",
        "liveavatar_api_key": None,
        "video_daily_per_user": 1000,
        "video_daily_per_workspace": 1000,
    }
    if mode == "webhook":
        settings.update(heygen_webhook_secret=CALLBACK_SECRET, video_poll_seconds=3600)
    else:
        # production poll defaults; no PUBLIC_BASE_URL, so no per-video callback either
        settings.update(heygen_webhook_secret=None, public_base_url=None)
    out: list[float] = []
    async with (
        sql_state(tmp / f"video-{mode}.db", time.time) as store,
        avatar_stack(fake.app(), store, time.time, tmp / f"vdata-{mode}", **settings) as stack,
    ):
        fake.file_base = stack.vendor_url
        for i in range(samples):
            job_id = await stack.delivery.request_video(
                VideoRequest(
                    question=f"q{i}?",
                    script="Say this.",
                    requested_by="U1",
                    team="T1",
                    dedupe_key=f"{mode}:{i}",
                ),
                {"channel": "C1"},
            )
            await stack.sink.wait_for(
                lambda j=job_id: any(
                    p.job_id == j and p.state is VideoJobState.SUBMITTED
                    for _, p in stack.sink.progress
                ),
                limit=30,
            )
            await asyncio.sleep(RENDER_SECONDS[i % len(RENDER_SECONDS)])  # HeyGen renders
            video_id = next(v.video_id for v in fake.videos.values() if v.callback_id == job_id)
            finished = time.perf_counter()
            fake.complete(video_id)
            await stack.sink.wait_for(
                lambda j=job_id: any(r.video.job_id == j for r in stack.sink.ready), limit=120
            )
            out.append((stack.delivery.videos.delivered_at[job_id] - finished) * 1000)
    return out


def run(quick: bool = False) -> None:
    asyncio.run(_main(quick))


async def _main(quick: bool) -> None:
    answers, per_answer = (3, 5) if quick else (8, 8)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        print(f"\n## Avatar delivery (python -m bench avatar{' --quick' if quick else ''})\n")
        print(
            f"Speech: {answers} answers x {per_answer} sentences, one sentence every "
            f"{SENTENCE_MS:g} ms; sentence complete -> event leaves the bot\n"
        )
        print("| path | sentences | p50 ms | p99 ms |\n|---|---|---|---|")
        for name, values in (await speech_latency(tmp, answers, per_answer)).items():
            print(
                f"| {name} | {len(values)} | {statistics.median(values):.1f} | "
                f"{pct(values, 0.99):.1f} |"
            )
        print("\nLive sessions created for 20 questions in one channel (each watched)\n")
        print("| LIVE_REUSE | sessions |\n|---|---|")
        for reuse in ("channel", "off"):
            print(f"| {reuse} | {await sessions_for(tmp, reuse, 20)} |")
        samples = 2 if quick else 4
        print(
            f"\nHeyGen completion -> MP4 handed to the sink ({samples} videos each, "
            "renders finishing 2 / 4.5 / 7 / 9.5 s after rendering began)\n"
        )
        print("| completion by | p50 ms | max ms |\n|---|---|---|")
        for mode in ("webhook", "polling"):
            values = await completion(tmp, mode, samples)
            print(f"| {mode} | {statistics.median(values):.0f} | {max(values):.0f} |")
