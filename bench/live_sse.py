"""`python -m bench live_sse`: one live link flooded with viewer-page event streams.

N clients open `GET /live/<token>/events` on one link at once while a viewer joins the
session (`POST /live/<token>/session`, 20 times). Printed for the default caps and, in the
same run, for the caps lifted (the baseline: what one link could hold before the caps):
streams accepted and refused, the join call's p50/p99 during the flood, and the process's max
RSS growth. Loopback fakes, SQLite in a temp dir.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.avatar.delivery import LiveScope
from tests.avatar_stack import liveavatar_stack
from tests.avatar_state import sql_state
from tests.fakes.clock import FakeClock
from tests.fakes.liveavatar import FakeLiveAvatar

SCOPE = LiveScope(team="T1", channel="C1", user="U1")
LIFTED = {
    "live_streams_per_link": 100_000,
    "live_streams_per_client": 100_000,
    "live_streams_total": 100_000,
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _flood(n: int, settings: dict[str, Any], data: Path) -> dict[str, float]:
    clock = FakeClock()
    fake = FakeLiveAvatar(clock=clock, max_concurrent=50)
    async with (
        sql_state(data / "state.db", clock) as store,
        liveavatar_stack(fake, store, clock, data / "d", **settings) as s,
    ):
        token = (await s.delivery.live_link(SCOPE)).rsplit("/", 1)[-1]
        base = f"{s.web_url}/live/{token}"
        rss0 = _rss_mb()
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as http:
            streams = await asyncio.gather(
                *(
                    http.get(f"{base}/events", headers={"Accept": "text/event-stream"})
                    for _ in range(n)
                )
            )
            accepted = sum(r.status == 200 for r in streams)
            joins = []
            for _ in range(20):
                t = time.perf_counter()
                async with http.post(f"{base}/session", json={}) as resp:
                    assert resp.status == 200, resp.status
                joins.append((time.perf_counter() - t) * 1000)
            for r in streams:
                r.close()
        joins.sort()
        return {
            "accepted": accepted,
            "refused": n - accepted,
            "join_p50": statistics.median(joins),
            "join_p99": joins[-1],
            "rss": _rss_mb() - rss0,
        }


def run(quick: bool = False) -> None:
    n = 200 if quick else 600
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, settings in (("caps lifted (baseline)", LIFTED), ("default caps", {})):
            result = asyncio.run(_flood(n, settings, Path(tmp) / label.split()[0]))
            rows.append((label, result))
    print(f"\n## Live link under an SSE flood (python -m bench live_sse), {n} streams at once\n")
    print("| caps | accepted | refused | join p50 ms | join p99 ms | RSS +MB |")
    print("|---|---|---|---|---|---|")
    for label, r in rows:
        print(
            f"| {label} | {r['accepted']:.0f} | {r['refused']:.0f} | {r['join_p50']:.1f} | "
            f"{r['join_p99']:.1f} | {r['rss']:.0f} |"
        )
