"""State-store latency: claim an event id, claim a video job, record an answer.

    python -m bench store [--quick]

Each operation runs N times in a row from one client, on SQLite (a file in a temp dir, WAL)
and on PostgreSQL (a throwaway local server started like the tests start it: fsync off), and
prints p50/p99 in milliseconds. Beside each, a naive baseline in the same run: the same
statement through the bare driver (sqlite3 in the calling thread, one asyncpg connection),
no SQLAlchemy, no thread hop, no error mapping.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from bot.store.base import AnswerRecord, VideoJobRecord
from bot.store.sealing import Sealer
from bot.store.sql import SqlStore, sqlite_url
from tests.postgres_server import PostgresServer

OPS = ("claim event id", "claim video job", "record answer")
RACERS = 4  # processes claiming the same event ids at once in the contended run

CLAIM_SQL = "INSERT INTO claims (namespace, key, expires_at) VALUES ({}) ON CONFLICT DO NOTHING"
JOB_SQL = (
    "UPDATE video_jobs SET lease_owner = {0}, lease_until = {1}, attempts = attempts + 1 "
    "WHERE id = (SELECT id FROM video_jobs WHERE state NOT IN ('delivered', 'failed') "
    "AND lease_until <= {2} ORDER BY created_at, id LIMIT 1{3}) RETURNING id"
)
ANSWER_SQL = (
    "INSERT INTO answers (id, question, text, spoken, sources, grounded, channel, thread_ts, "
    "asker, team, datasources, created_at) VALUES ({})"
)


def _answer(i: int, prefix: str) -> AnswerRecord:
    return AnswerRecord(
        id=f"{prefix}{i}",
        question="How do I add documents to the knowledge base?",
        text="Run `avatarbot knowledge add` with files, folders or URLs [1]. " * 4,
        spoken="Run avatarbot knowledge add with files, folders or URLs. " * 4,
        sources=[{"title": "Guide", "url": "https://example.org/guide", "score": 0.8}] * 3,
        channel="C1",
        thread_ts="1700000000.000100",
        asker="U1",
        team="T1",
        datasources=["handbook"],
        created_at=time.time(),
    )


def _answer_params(a: AnswerRecord) -> tuple[Any, ...]:
    return (
        a.id, a.question, a.text, a.spoken, json.dumps(a.sources), a.grounded, a.channel,
        a.thread_ts, a.asker, a.team, json.dumps(a.datasources), a.created_at,
    )  # fmt: skip


async def _timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        await op(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _timed_sync(n: int, op: Callable[[int], Any]) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        op(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p50_p99(times: list[float]) -> str:
    q = statistics.quantiles(times, n=100)
    return f"{statistics.median(times):.2f} / {q[98]:.2f}"


async def _seed_jobs(store: SqlStore, prefix: str, n: int) -> None:
    for i in range(n):
        await store.create_video_job(
            VideoJobRecord(id=f"{prefix}{i}", dedupe_key=f"{prefix}{i}", question="q", script="s")
        )


async def _store_ops(store: SqlStore, n: int) -> dict[str, list[float]]:
    await _seed_jobs(store, "ours-", n)
    return {
        OPS[0]: await _timed(n, lambda i: store.claim_once("slack-event", f"Ev{i}", 600)),
        OPS[1]: await _timed(n, lambda i: store.claim_video_job("bench", 600)),
        OPS[2]: await _timed(n, lambda i: store.save_answer(_answer(i, "ours-"))),
    }


def _sqlite_baseline(path: Path, n: int) -> dict[str, list[float]]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")

    def run(sql: str, params: tuple[Any, ...]) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute(sql, params).fetchall()
        db.execute("COMMIT")

    claim = CLAIM_SQL.format("?, ?, ?")
    job = JOB_SQL.format("?", "?", "?", "")
    answer = ANSWER_SQL.format(", ".join("?" * 12))
    now = time.time()
    try:
        return {
            OPS[0]: _timed_sync(n, lambda i: run(claim, ("slack-event", f"Raw{i}", now + 600))),
            OPS[1]: _timed_sync(n, lambda i: run(job, ("raw", time.time() + 600, time.time()))),
            OPS[2]: _timed_sync(n, lambda i: run(answer, _answer_params(_answer(i, "raw-")))),
        }
    finally:
        db.close()


async def _asyncpg_baseline(url: str, n: int) -> dict[str, list[float]]:
    db = await asyncpg.connect(url)
    claim = CLAIM_SQL.format("$1, $2, $3")
    job = JOB_SQL.format("$1", "$2", "$3", " FOR UPDATE SKIP LOCKED")
    answer = ANSWER_SQL.format(", ".join(f"${k}" for k in range(1, 13)))
    now = time.time()

    def claim_op(i: int) -> Awaitable[Any]:
        return db.execute(claim, "slack-event", f"Raw{i}", now + 600)

    def job_op(i: int) -> Awaitable[Any]:
        return db.fetch(job, "raw", time.time() + 600, time.time())

    def answer_op(i: int) -> Awaitable[Any]:
        return db.execute(answer, *_answer_params(_answer(i, "raw-")))

    try:
        return {
            OPS[0]: await _timed(n, claim_op),
            OPS[1]: await _timed(n, job_op),
            OPS[2]: await _timed(n, answer_op),
        }
    finally:
        await db.close()


async def _contend(url: str, key: bytes, n: int, barrier: Any) -> tuple[list[float], int]:
    async with SqlStore(url, sealer=Sealer([key])) as store:
        await asyncio.to_thread(barrier.wait)
        times, wins = [], 0
        for i in range(n):
            started = time.perf_counter()
            wins += await store.claim_once("race", f"R{i}", 600)
            times.append((time.perf_counter() - started) * 1000)
        return times, wins


def _contender(url: str, key: bytes, n: int, barrier: Any, results: Any) -> None:
    results.put(asyncio.run(_contend(url, key, n, barrier)))


def _contended(url: str, key: bytes, n: int) -> tuple[list[float], int, float]:
    """RACERS processes claim the same n ids; (latencies, winners, claims per second)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(RACERS + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_contender, args=(url, key, n, barrier, results)) for _ in range(RACERS)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    times = [t for ts, _ in outcomes for t in ts]
    return times, sum(w for _, w in outcomes), RACERS * n / elapsed


Contended = dict[str, tuple[list[float], int, float]]
contended: Contended = {}


async def _measure(n: int) -> dict[str, dict[str, list[float]]]:
    key = Fernet.generate_key()
    sealer = Sealer([key])
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="avatarbot-bench-store-") as tmp:
        path = Path(tmp) / "state.db"
        async with SqlStore(sqlite_url(path), sealer=sealer) as store:
            results["sqlite"] = await _store_ops(store, n)
            await _seed_jobs(store, "raw-", n)
        results["sqlite3 (bare)"] = _sqlite_baseline(path, n)
        contended["sqlite"] = _contended(str(sqlite_url(path)), key, n // 4)

    server = PostgresServer()
    url = server.start()
    try:
        async with SqlStore(url, sealer=sealer) as store:
            results["postgresql"] = await _store_ops(store, n)
            await _seed_jobs(store, "raw-", n)
        results["asyncpg (bare)"] = await _asyncpg_baseline(url, n)
        contended["postgresql"] = _contended(url, key, n // 4)
    finally:
        server.stop()
    return results


def run(quick: bool = False) -> None:
    n = 300 if quick else 2000
    results = asyncio.run(_measure(n))
    columns = list(results)
    print(f"\nstate store, {n} operations each, one client, p50 / p99 ms")
    print("| operation | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for op in OPS:
        print(f"| {op} | " + " | ".join(_p50_p99(results[c][op]) for c in columns) + " |")
    for ours, bare in (("sqlite", "sqlite3 (bare)"), ("postgresql", "asyncpg (bare)")):
        p50 = {c: {op: statistics.median(results[c][op]) for op in OPS} for c in (ours, bare)}
        ratios = ", ".join(f"{op} {p50[ours][op] / p50[bare][op]:.1f}x" for op in OPS)
        print(f"{ours} p50 vs {bare}: {ratios}")
    print(f"\n{RACERS} processes claiming the same {n // 4} event ids at once")
    print("| database | claim p50 / p99 ms | claims/s, all processes | winners per id |")
    print("|---|---|---|---|")
    for name, (times, winners, rate) in contended.items():
        print(f"| {name} | {_p50_p99(times)} | {rate:,.0f} | {winners / (n // 4):.2f} |")
