"""What the visibility rule costs a search: retrieval with `asking` (search 3x deeper, then
filter out other conversations' private files) beside plain retrieval, in the same run.

    python -m bench visibility [--quick]

Corpus: the public eval docs as workspace knowledge plus a copy of each as a DM's private
file — the worst case: about half of every search's hits belong to the DM and are filtered
away, so every question searches twice (a corpus whose private files rarely match pays one
search); questions: the eval questions. Lexical retrieval
only (EMBEDDINGS=none), so the figure is the search and filter cost, not the model's.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from knowledge.answering.answer import Answerer
from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase, Upload
from knowledge.visibility import Asking

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "anthropic-docs"


def _questions(limit: int) -> list[str]:
    lines = (EVAL / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:limit]


async def _timed(answerer: Answerer, questions: list[str], asking: Asking | None) -> list[float]:
    out = []
    for q in questions:
        started = time.perf_counter()
        await answerer.retrieve(q, asking=asking)
        out.append((time.perf_counter() - started) * 1000)
    return out


def run(quick: bool = False) -> None:
    files = sorted(p for p in (EVAL / "corpus").rglob("*") if p.is_file())[: 20 if quick else None]
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(KnowledgeConfig(data_dir=Path(tmp), embeddings="none"))
        kb.add(files)
        kb.add(
            [
                Upload(p.name, p.read_bytes(), source=f"slack:F{i}/{p.name}", place="D1")
                for i, p in enumerate(files)
            ]
        )
        answerer = Answerer(kb)
        questions = _questions(10 if quick else 50)
        asyncio.run(_timed(answerer, questions[:3], None))  # warm the index
        plain = asyncio.run(_timed(answerer, questions, None))
        ruled = asyncio.run(_timed(answerer, questions, Asking(place="C1")))
        # Asked in the DM itself: nothing is filtered away, one search (the usual case).
        own = asyncio.run(_timed(answerer, questions, Asking(place="D1")))
        chunks = kb.stats().chunks
    p50, r50, o50 = statistics.median(plain), statistics.median(ruled), statistics.median(own)
    print(
        f"visibility: {len(questions)} questions, {chunks} chunks "
        f"({len(files)} docs + as many private copies)"
    )
    print(f"  retrieve, plain (baseline)       p50 {p50:7.1f} ms")
    print(f"  retrieve, rule, nothing filtered p50 {o50:7.1f} ms  ({o50 / p50:.2f}x)")
    print(f"  retrieve, rule, half filtered    p50 {r50:7.1f} ms  ({r50 / p50:.2f}x)")


if __name__ == "__main__":
    run()
