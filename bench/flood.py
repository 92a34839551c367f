"""`python -m bench flood`: signed Slack events acked while strangers flood `/slack/events`.

`avatarbot serve` runs as its own process in HTTP mode (the bundled sample knowledge,
EMBEDDINGS=none, the extractive composer) against the loopback fake Slack. This process
sends signed mentions one after another and times each ack (HTTP response) and `/healthz`:
first on a quiet server (the baseline), then while 8 senders post unsigned 1 MB bodies in a
loop (half with no signature, half with a well-formed wrong one, which costs a full HMAC).
Printed: ack and /healthz p50/p99 for both phases and the ratio, the flood's request rate
and its status codes (all should be 401). Slack's deadline for an ack is 3 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.slack_bench import Run, _pct, _start_server
from tests.fakes.server import serve
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.slack_harness import sign

ROOT = Path(__file__).resolve().parents[1]
SENDERS = 8
BODY = json.dumps({"type": "event_callback", "pad": "A" * (1024 * 1024 - 64)})


async def _acks(run: Run, first: int, count: int) -> tuple[list[float], list[float]]:
    acks, health = [], []
    for n in range(first, first + count):
        acks.append(await run.mention(n))
        start = time.monotonic()
        async with run.http.get(f"http://127.0.0.1:{run.port}/healthz") as resp:
            await resp.read()
        health.append(time.monotonic() - start)
        await asyncio.sleep(0.1)  # pacing, as Slack's events arrive; not a measurement
    return acks, health


async def _flood(port: int, stop: asyncio.Event, statuses: Counter[int], signed: bool) -> None:
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            headers = {"Content-Type": "application/json"}
            if signed:
                headers |= sign(BODY, secret="not-the-signing-secret")
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=BODY, headers=headers
            ) as resp:
                await resp.read()
                statuses[resp.status] += 1


def _line(name: str, quiet: list[float], flooded: list[float]) -> str:
    q50, q99, f50, f99 = (
        _pct(quiet, 50),
        _pct(quiet, 99),
        _pct(flooded, 50),
        _pct(flooded, 99),
    )
    return (
        f"  {name:<8} quiet p50 {q50 * 1000:7.1f} ms  p99 {q99 * 1000:7.1f} ms   "
        f"flood p50 {f50 * 1000:7.1f} ms  p99 {f99 * 1000:7.1f} ms   "
        f"p99 ratio {f99 / q99:5.2f}x"
    )


async def bench(quick: bool) -> None:
    count = 20 if quick else 60
    data = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    slack = FakeSlack()
    async with serve(slack.app()) as slack_url:
        slack.base_url = slack_url
        env = {
            "AVATARBOT_DATA_DIR": str(data),
            "EMBEDDINGS": "none",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{slack_url}/api/",
            "SLACK_MAX_CONCURRENT_ANSWERS": "64",
            "LOG_LEVEL": "INFO",
        }
        proc, port = await _start_server(env, data)
        try:
            async with aiohttp.ClientSession() as http:
                run = Run(slack, port, http)
                quiet_acks, quiet_health = await _acks(run, 0, count)
                stop, statuses = asyncio.Event(), Counter[int]()
                started = time.monotonic()
                senders = [
                    asyncio.ensure_future(_flood(port, stop, statuses, signed=i % 2 == 0))
                    for i in range(SENDERS)
                ]
                await asyncio.sleep(1.0)  # let the flood build up before measuring
                flood_acks, flood_health = await _acks(run, count, count)
                stop.set()
                await asyncio.gather(*senders)
                elapsed = time.monotonic() - started
        finally:
            proc.terminate()
            await proc.wait()
    total = sum(statuses.values())
    print(f"flood: {SENDERS} senders of unsigned 1 MB bodies, {count} signed mentions per phase")
    print(_line("ack", quiet_acks, flood_acks))
    print(_line("/healthz", quiet_health, flood_health))
    print(
        f"  flood    {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s, "
        f"{total / elapsed:.0f} MB/s), statuses {dict(statuses)}; env: {os.cpu_count()} CPUs"
    )


def run(quick: bool = False) -> None:
    asyncio.run(bench(quick))
