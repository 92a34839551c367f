"""Answer latency: time to the first complete sentence and to the full answer.

    python -m bench.answer [--embeddings none|onnx-minilm] [--questions 30] [--token-ms 20]

Two paths, each next to a non-streaming baseline measured in the same run:

- extractive (no LLM) over a ~10k-chunk knowledge base: the eval corpus replicated with
  per-copy variations (built once under data/bench-answer-<embeddings>, reused after);
- LLM through the real LangChain OpenAI client against the loopback fake server, which
  produces tokens at a fixed pace (`--token-ms`) whether streaming or not.

"Streamed" feeds the text deltas through `knowledge.answering.sentences.sentences` (what the live
avatar consumes); the baseline waits for the whole answer, then splits it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from knowledge.answering.answer import Answerer, TextDelta
from knowledge.answering.llm import LLMConfig, create_chat_model
from knowledge.answering.sentences import sentences, split_sentences
from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase
from knowledge.models import Document
from knowledge.sources import load_file

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval" / "anthropic-docs"
TARGET_CHUNKS = 10_000
# Per-copy wording changes, so copies are distinct documents with distinct chunks.
VARIANTS = [
    "", "the assistant", "the model", "our assistant", "the AI", "the system",
    "the agent", "the helper", "the bot", "the service", "the engine", "the tool",
]  # fmt: skip
Row = tuple[str, float, float]  # name, first-sentence p50 ms, full-answer p50 ms

LLM_ANSWER = (
    "To add documents, run `avatarbot knowledge add` with files, folders or URLs [1]. "
    "Folders are read recursively, and hidden or unsupported files are skipped with a "
    "reason [1]. Re-adding a document is safe: unchanged files are not processed again [2]. "
    "Admins can also drop a file into a direct message with the bot [3]. Use datasources, "
    "for example `--datasource hr`, to keep each team's documents apart [2]."
)


def build_kb(embeddings: str, target: int = TARGET_CHUNKS) -> KnowledgeBase:
    data = ROOT / "data" / f"bench-answer-{embeddings}-{target}"
    kb = KnowledgeBase(KnowledgeConfig(data_dir=data, embeddings=embeddings))
    if kb.stats().chunks >= target:
        return kb
    pages = [load_file(p, max_bytes=50_000_000) for p in sorted((EVAL / "corpus").glob("*"))]
    started = time.perf_counter()
    copy = 0
    while kb.stats().chunks < target:
        name = VARIANTS[copy % len(VARIANTS)]
        docs = [
            Document(
                source=f"{d.source}#copy{copy}",
                title=f"{d.title} ({copy})" if copy else d.title,
                text=re.sub(r"\bClaude\b", name, d.text) if name else d.text,
                format=d.format,
                url=d.url,
                content_hash=f"{d.content_hash}-{copy}",
            )
            for d in pages
        ]
        kb.add(docs)
        copy += 1
        print(f"  indexed copy {copy}: {kb.stats().chunks} chunks", flush=True)
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    return kb


async def _deltas(answerer: Answerer, question: str) -> AsyncIterator[str]:
    async for event in answerer.stream(question):
        if isinstance(event, TextDelta):
            yield event.text


async def streamed(answerer: Answerer, question: str) -> tuple[float, float]:
    """Seconds to the first complete sentence and to the end, consuming the stream."""
    start = time.perf_counter()
    first = None
    async for _ in sentences(_deltas(answerer, question)):
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total), total


async def whole(answerer: Answerer, question: str) -> tuple[float, float]:
    """Baseline: the whole answer, then split into sentences."""
    start = time.perf_counter()
    answer = await answerer.answer(question)
    split_sentences(answer.text)
    total = time.perf_counter() - start
    return total, total


async def measure(
    fn: Callable[[Answerer, str], Awaitable[tuple[float, float]]],
    answerer: Answerer,
    questions: list[str],
) -> tuple[float, float]:
    firsts, totals = [], []
    for q in questions:
        first, total = await fn(answerer, q)
        firsts.append(first)
        totals.append(total)
    return statistics.median(firsts) * 1000, statistics.median(totals) * 1000


async def llm_rows(kb: KnowledgeBase, questions: list[str], token_ms: float) -> list[Row]:
    from tests.fakes.openai_server import API_KEY, FakeOpenAI, Reply
    from tests.fakes.server import serve

    fake = FakeOpenAI(default=Reply(text=LLM_ANSWER, token_delay=token_ms / 1000))
    async with serve(fake.app()) as base_url:
        config = LLMConfig(model="openai:gpt-4o-mini", base_url=f"{base_url}/v1", api_key=API_KEY)
        model = create_chat_model(config)
        answerer = Answerer(kb, chat_model=model, min_relevance=0.0)
        await whole(answerer, questions[0])  # warm up the client and connection pool
        s = await measure(streamed, answerer, questions)
        # Baseline: the same client with streaming off, one chat.completion after the same
        # generation time (LangChain's `disable_streaming` turns astream into ainvoke).
        unstreamed = model.model_copy(update={"disable_streaming": True})
        batch = Answerer(kb, chat_model=unstreamed, min_relevance=0.0)
        b = await measure(whole, batch, questions)
    return [("LLM streamed (astream)", *s), ("LLM whole answer, then split", *b)]


def print_table(rows: list[Row], pairs: list[tuple[int, int]]) -> None:
    print(f"{'path':<34} {'first sentence p50':>19} {'full answer p50':>16}")
    for name, first, total in rows:
        print(f"{name:<34} {first:>16.1f} ms {total:>13.1f} ms")
    for a, b in pairs:
        ratio = rows[a][1] / rows[b][1] if rows[b][1] else float("nan")
        print(f"first-sentence ratio, {rows[a][0]} / {rows[b][0]}: {ratio:.2f}x")


async def run(args: argparse.Namespace) -> None:
    kb = build_kb(args.embeddings, args.chunks)
    stats = kb.stats()
    questions = [
        json.loads(line)["question"]
        for line in (EVAL / "questions.jsonl").read_text().splitlines()[: args.questions]
    ]
    print(
        f"knowledge base: {stats.chunks} chunks, embeddings={stats.embedding}; "
        f"{len(questions)} questions; LLM fake at {args.token_ms:g} ms/token"
    )
    extractive = Answerer(kb)
    await whole(extractive, questions[0])  # warm up (model load, lexical index)
    searches = []
    for q in questions:
        started = time.perf_counter()
        await kb.asearch(q, k=5)
        searches.append((time.perf_counter() - started) * 1000)
    search_ms = statistics.median(searches)
    rows: list[Row] = [
        ("retrieval alone (asearch, part)", search_ms, search_ms),
        ("extractive streamed", *await measure(streamed, extractive, questions)),
        ("extractive whole, then split", *await measure(whole, extractive, questions)),
    ]
    rows += await llm_rows(kb, questions, args.token_ms)
    print_table(rows, [(1, 2), (3, 4)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", default="onnx-minilm")
    parser.add_argument("--chunks", type=int, default=TARGET_CHUNKS)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--token-ms", type=float, default=20.0)
    return parser


def run_bench(quick: bool = False) -> None:
    """Entry point for `python -m bench answer [--quick]`."""
    argv = ["--chunks", "2000", "--questions", "10"] if quick else []
    asyncio.run(run(_parser().parse_args(argv)))


def main() -> None:
    asyncio.run(run(_parser().parse_args()))


if __name__ == "__main__":
    main()
