"""`python -m bench slack`: the Slack app under load, as an operator runs it.

`avatarbot serve` runs as its own process in HTTP mode (SQLite store, the bundled sample
knowledge, EMBEDDINGS=none, a language model served by the loopback OpenAI fake) against the
loopback fake Slack; this process signs and sends the requests and watches the fake.

1. Burst: 50 mentions sent at once, each followed by a Slack retry of the same event:
   ack p50/p99 (HTTP response time), mention -> answer posted p50/p99 (until the finished
   message with its blocks reaches Slack), duplicates (answers beyond one per question),
   the server's peak RSS.
2. Soak with faults: 1,000 questions (32 in flight), while Slack answers some calls with 429
   (Retry-After: 1) or 500 and the model fails some answers: lost answers (questions with no
   reply in their thread), duplicates, RSS growth from question 100 to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil

from tests.fakes.faults import Fault
from tests.fakes.openai_server import API_KEY, FakeOpenAI, Reply
from tests.fakes.server import serve
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.slack_harness import envelope, sign

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "Run `avatarbot knowledge add PATH` to index a folder or file [1]. Re-adding is safe [2]."


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Run:
    def __init__(
        self,
        slack: FakeSlack,
        port: int,
        http: aiohttp.ClientSession,
        questions: list[str] | None = None,
    ) -> None:
        self.slack, self.port, self.http = slack, port, http
        self.sent: dict[str, float] = {}
        self.questions = questions  # one per mention, in turn; None: the same question each

    def text(self, n: int) -> str:
        if self.questions:
            return f"<@UBOT> {self.questions[n % len(self.questions)]}"
        return f"<@UBOT> how do I add documents? (#{n})"

    def request(self, n: int, *, retry: bool = False) -> tuple[str, str, dict[str, str]]:
        """Mention number `n` as Slack sends it (ts, signed body, headers)."""
        ts = f"{1700000000 + n}.000100"
        event = {
            "type": "app_mention",
            "user": f"U{n:05d}",
            "channel": "C1",
            "ts": ts,
            "team": "T0TEAM",
            "text": self.text(n),
        }
        body = json.dumps(envelope(event, event_id=f"Ev{n:08d}"))
        headers = {"Content-Type": "application/json", **sign(body)}
        if retry:
            headers |= {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        return ts, body, headers

    async def mention(self, n: int, *, retry: bool = False) -> float:
        ts, body, headers = self.request(n, retry=retry)
        if not retry:
            self.sent[ts] = time.monotonic()
        start = time.monotonic()
        async with self.http.post(
            f"http://127.0.0.1:{self.port}/slack/events", data=body, headers=headers
        ) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return time.monotonic() - start

    async def burst(self, n: int) -> list[float]:
        """`n` mentions and a retry of each, sent at once from another process (bench.
        ack_sender) on connections opened beforehand; returns the ack times."""
        wanted = [self.request(i) for i in range(n)] + [
            self.request(i, retry=True) for i in range(n)
        ]
        raw = [
            "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
            for _, body, headers in wanted
        ]
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.ack_sender",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await sender.communicate(json.dumps({"port": self.port, "requests": raw}).encode())
        if sender.returncode != 0:
            raise RuntimeError("the burst sender failed (see its error above)")
        timings = json.loads(out)
        for (ts, _, _), (sent_at, _) in zip(wanted[:n], timings[:n], strict=True):
            self.sent[ts] = sent_at
        return [took for _, took in timings]

    async def answered(self, ts: str, limit: float = 120.0) -> None:
        await self.slack.wait_for(lambda: ts in self.slack.finished, limit)


async def _start_server(
    env: dict[str, str], data: Path, *, base: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, int]:
    """`avatarbot serve` with `env` over `base` (default: this process's environment)."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        *_cli("serve"),
        cwd=data,
        env={**(os.environ if base is None else base), **env, "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    async with asyncio.timeout(180):
        while b"serving on port" not in (line := await proc.stderr.readline()):
            if not line:
                raise RuntimeError("avatarbot serve exited before it was ready")
    asyncio.get_running_loop().create_task(_drain(proc.stderr))
    return proc, port


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def bench(quick: bool) -> None:
    burst, soak = (20, 200) if quick else (50, 1000)
    data = Path(tempfile.mkdtemp(prefix="bench-slack-"))
    env_kb = {**os.environ, "AVATARBOT_DATA_DIR": str(data), "EMBEDDINGS": "none"}
    load = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("avatarbot")),
        "knowledge",
        "add",
        str(ROOT / "knowledge" / "sample"),
        env=env_kb,
        cwd=data,
        stdout=asyncio.subprocess.DEVNULL,
    )
    await load.wait()
    slack, llm = FakeSlack(), FakeOpenAI(default=Reply(text=ANSWER))
    async with serve(slack.app()) as slack_url, serve(llm.app()) as llm_url:
        slack.base_url = slack_url
        env = {
            "AVATARBOT_DATA_DIR": str(data),
            "EMBEDDINGS": "none",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{slack_url}/api/",
            "LLM_MODEL": "openai:gpt-4o-mini",
            "LLM_BASE_URL": f"{llm_url}/v1",
            "LLM_API_KEY": API_KEY,
            "SLACK_MAX_CONCURRENT_ANSWERS": "64",
            "LOG_LEVEL": "INFO",
        }
        proc, port = await _start_server(env, data)
        ps = psutil.Process(proc.pid)
        peak = ps.memory_info().rss
        try:
            async with aiohttp.ClientSession() as http:
                run = Run(slack, port, http)
                # 0. warm-up (first-request costs: bolt's auth.test, lazy imports), then
                # acks one at a time: the server's own cost, no queueing
                serial = []
                for n in range(10):
                    serial.append(await run.mention(100_000 + n))
                    await run.answered(f"{1700000000 + 100_000 + n}.000100")
                run.sent.clear()
                # 1. burst
                acks = await asyncio.gather(
                    *(run.mention(n) for n in range(burst)),
                    *(run.mention(n, retry=True) for n in range(burst)),
                )
                for ts in list(run.sent):
                    await run.answered(ts)
                    peak = max(peak, ps.memory_info().rss)
                latency = [slack.finished[ts][0] - run.sent[ts] for ts in run.sent]
                dupes = sum(len(slack.finished[ts]) - 1 for ts in run.sent)
                print(f"\nslack burst: {burst} concurrent mentions (+{burst} retries), HTTP mode")
                print(
                    f"  ack, one by one p50 {_pct(serial, 50) * 1000:5.1f} ms   "
                    f"max {max(serial) * 1000:6.1f} ms"
                )
                print(
                    f"  ack            p50 {_pct(acks, 50) * 1000:6.1f} ms   "
                    f"p99 {_pct(acks, 99) * 1000:6.1f} ms"
                )
                print(
                    f"  answer posted  p50 {_pct(latency, 50) * 1000:6.0f} ms   "
                    f"p99 {_pct(latency, 99) * 1000:6.0f} ms"
                )
                print(f"  duplicates     {dupes}")
                print(f"  peak RSS       {peak / 2**20:.0f} MB (the serve process)")
                # 2. soak with faults
                gate = asyncio.Semaphore(32)
                rss_warm = 0

                async def one(n: int) -> None:
                    nonlocal rss_warm, peak
                    async with gate:
                        if n % 25 == 0:
                            slack.faults.add("chat.startStream", Fault.rate_limited("1"))
                        if n % 25 == 10:
                            slack.faults.add("chat.stopStream", Fault.server_error(503))
                        if n % 20 == 5:
                            llm.replies.append(Reply(text="Partial answer", status=500))
                        await run.mention(n)
                        await run.answered(f"{1700000000 + n}.000100")
                        if n == burst + 100:
                            rss_warm = ps.memory_info().rss
                        peak = max(peak, ps.memory_info().rss)

                start = time.monotonic()
                await asyncio.gather(*(one(n) for n in range(burst, burst + soak)))
                took = time.monotonic() - start
                rss_end = ps.memory_info().rss
                asked = [f"{1700000000 + n}.000100" for n in range(burst, burst + soak)]
                lost = sum(1 for ts in asked if ts not in slack.finished)
                dupes = sum(len(slack.finished[ts]) - 1 for ts in asked if ts in slack.finished)
                injected_429 = len(
                    [r for r in slack.faults.log if r.route == "chat.startStream"]
                ) - len(slack.calls("chat.startStream"))
                print(
                    f"\nslack soak: {soak} questions, 32 in flight, {took:.0f} s "
                    f"({soak / took:.0f} answers/s)"
                )
                print(
                    f"  faults         {injected_429} Slack 429s, {soak // 25} Slack 503s, "
                    f"{soak // 20} model 500s"
                )
                print(f"  lost answers   {lost}")
                print(f"  duplicates     {dupes}")
                growth = (rss_end - rss_warm) / rss_warm * 100 if rss_warm else float("nan")
                print(
                    f"  RSS            {rss_warm / 2**20:.0f} MB after 100 -> "
                    f"{rss_end / 2**20:.0f} MB at the end ({growth:+.1f} %)"
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


# --- `--defaults`: what a team running the default settings gets --------------------------

EVAL_SET = ROOT.parent / "shared" / "eval" / "anthropic-docs"
CORPUS = Path(os.environ.get("BENCH_CORPUS", EVAL_SET / "corpus"))
# To iterate on the serving side only: a data folder that already holds CORPUS, indexed.
INDEXED = os.environ.get("BENCH_INDEXED", "")


def _defaults_env(tree: Path, data: Path) -> dict[str, str]:
    """The environment with every avatarbot setting removed (so each takes its default),
    the tree under test first on the path."""
    from bot.config import Settings

    ours = {name.upper() for name in Settings.model_fields} | {"EMBEDDINGS", "RERANKER"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    return env | {"PYTHONPATH": str(tree), "AVATARBOT_DATA_DIR": str(data)}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def _ingest(tree: Path, data: Path, corpus: Path) -> tuple[float, int]:
    """`avatarbot knowledge add CORPUS` as its own process: (seconds, max RSS in bytes from
    the kernel's rusage of that child, the figure `/usr/bin/time -v` prints)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        _cli("knowledge", "add", str(corpus)),
        env=_defaults_env(tree, data),
        cwd=data,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"knowledge add failed ({proc.returncode}): {err[-500:]}")
    return took, usage.ru_maxrss * 1024  # Linux reports KiB


def _hwm(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes, as the kernel keeps it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _eval_questions() -> list[str]:
    """The shared eval set's questions, as people would ask them in a burst of different ones."""
    lines = (EVAL_SET / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


async def _burst(
    tree: Path, burst: int, label: str, questions: list[str] | None = None
) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix=f"bench-slack-{label}-"))
    if INDEXED:  # a data folder indexed earlier: only the burst is measured
        await asyncio.to_thread(shutil.copytree, INDEXED, data, dirs_exist_ok=True)
        took, ingest_rss = float("nan"), float("nan")
    else:
        took, ingest_rss = await asyncio.to_thread(_ingest, tree, data, CORPUS)
    slack = FakeSlack()
    async with serve(slack.app()) as slack_url:
        slack.base_url = slack_url
        slack_env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{slack_url}/api/",
        }
        proc, port = await _start_server(slack_env, data, base=_defaults_env(tree, data))
        try:
            async with aiohttp.ClientSession() as http:
                run = Run(slack, port, http, questions)
                # Cold, as a team gets it right after a start: no warm-up request.
                cpu_before = sum(psutil.Process(proc.pid).cpu_times()[:2])
                acks = await run.burst(burst)
                asked = list(run.sent)
                with contextlib.suppress(TimeoutError):
                    await slack.wait_for(lambda: all(ts in slack.finished for ts in asked), 120)
                cpu = sum(psutil.Process(proc.pid).cpu_times()[:2]) - cpu_before
                await asyncio.sleep(1.0)  # time for a late duplicate to show
                rss = _hwm(proc.pid)
                workers = sum(_hwm(c.pid) for c in psutil.Process(proc.pid).children(True))
                starts = [slack.started[ts] - run.sent[ts] for ts in asked if ts in slack.started]
                done = [
                    slack.finished[ts][0] - run.sent[ts] for ts in asked if ts in slack.finished
                ]
                notices = sum(1 for ts in asked if _notice(slack, ts))
                # then one question at a time: the latency of a question alone
                run.sent.clear()
                alone_ack, alone_start = [], []
                for n in range(5):
                    alone_ack.append(await run.mention(10_000 + n))
                    ts = f"{1700000000 + 10_000 + n}.000100"
                    await run.answered(ts)
                    alone_start.append(slack.started[ts] - run.sent[ts])
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    shutil.rmtree(data, ignore_errors=True)
    ms = 1000.0
    return {
        "ack p50 (ms)": _pct(acks, 50) * ms,
        "ack p99 (ms)": _pct(acks, 99) * ms,
        "answer started p50 (ms)": _pct(starts, 50) * ms,
        "answer started p99 (ms)": _pct(starts, 99) * ms,
        "answer finished p99 (ms)": _pct(done, 99) * ms,
        "serve CPU per burst answer (ms)": cpu / burst * ms,
        "alone: ack p50 (ms)": _pct(alone_ack, 50) * ms,
        "alone: answer started p50 (ms)": _pct(alone_start, 50) * ms,
        "serve max RSS (MB)": rss / 2**20,
        "serve worker processes max RSS (MB)": workers / 2**20,
        "duplicates": sum(len(slack.finished[ts]) - 1 for ts in asked if ts in slack.finished),
        "missing answers": burst - len(done),
        "refusals (busy/error notices)": notices,
        "ingest seconds": took,
        "ingest max RSS (MB)": ingest_rss / 2**20,
    }


def _notice(slack: FakeSlack, ts: str) -> bool:
    """Whether the bot's reply in thread `ts` is a refusal or failure notice, not an answer."""
    replies = [m for m in slack.posted("C1") if m.get("thread_ts") == ts]
    return any(m["text"].startswith(NOTICES) for m in replies)


NOTICES = ("I'm answering a lot", "You're asking faster", "Sorry,", "Something went wrong")


@contextlib.contextmanager
def _checkout(ref: str) -> Iterator[Path]:
    """A detached git worktree of `ref`, removed afterwards."""
    where = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), ref], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)])


async def defaults_bench(quick: bool, baseline: str | None, distinct: bool = False) -> None:
    burst = 20 if quick else 50
    questions = _eval_questions()[:burst] if distinct else None
    if not CORPUS.is_dir():  # noqa: ASYNC240 (once, before anything runs)
        raise SystemExit(f"corpus not found: {CORPUS} (set BENCH_CORPUS to a folder)")
    asked = "different questions (the shared eval set)" if distinct else "the same question"
    print(f"\nslack --defaults: {burst} signed mentions at once (+{burst} Slack retries),")
    print(f"  {asked}, default settings, `avatarbot serve` in HTTP mode, corpus {CORPUS}")
    columns: list[tuple[str, dict[str, float]]] = []
    if baseline:
        with _checkout(baseline) as tree:
            baseline_figures = await _burst(tree, burst, "baseline", questions)
            columns.append((f"baseline {baseline}", baseline_figures))
    columns.append(("this tree", await _burst(ROOT, burst, "tree", questions)))
    head = f"  {'measure':<38}" + "".join(f"{name:>20}" for name, _ in columns)
    print(head + ("      ratio" if len(columns) == 2 else ""))
    for key in columns[-1][1]:
        values = [figures[key] for _, figures in columns]
        line = f"  {key:<38}" + "".join(f"{v:>20.1f}" for v in values)
        if len(values) == 2 and values[0]:
            line += f"   {values[1] / values[0]:7.2f}x"
        print(line)


def run(
    quick: bool = False,
    defaults: bool = False,
    baseline: str | None = None,
    distinct: bool = False,
) -> None:
    asyncio.run(defaults_bench(quick, baseline, distinct) if defaults else bench(quick))


if __name__ == "__main__":
    run(
        quick="--quick" in sys.argv,
        defaults="--defaults" in sys.argv,
        distinct="--distinct" in sys.argv,
    )
