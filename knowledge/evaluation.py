"""Retrieval evaluation: index a corpus into a throw-away knowledge base, ask every question,
score the ranking of distinct sources (hit@1, hit@k, MRR@10) and time the searches.

Set format (see the shared eval README): `DIR/corpus/` and `DIR/questions.jsonl`, one
`{"question": str, "sources": [path relative to corpus/], "answer": str}` per line. A question
is a hit at k when any gold source is among the first k distinct sources retrieved.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.config import KnowledgeConfig
from knowledge.errors import KnowledgeError
from knowledge.models import Hit

if TYPE_CHECKING:
    from knowledge.index import KnowledgeBase

RANKING_DEPTH = 30  # chunks fetched to rank distinct sources (enough for 10 distinct)


class EvalSetError(KnowledgeError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class Question:
    question: str
    sources: tuple[str, ...]
    answer: str = ""


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    ranked: tuple[str, ...]  # distinct sources, best first, relative to corpus/
    latency_ms: float

    @property
    def rank(self) -> int | None:
        """1-based rank of the first gold source, or None when not retrieved."""
        for i, source in enumerate(self.ranked, start=1):
            if source in self.question.sources:
                return i
        return None


@dataclass(frozen=True)
class SourceScore:
    questions: int
    hit_at_1: float
    hit_at_k: float
    mrr_at_10: float


@dataclass
class EvalReport:
    questions: int
    k: int
    hit_at_1: float
    hit_at_5: float
    hit_at_k: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    per_source: dict[str, SourceScore] = field(default_factory=dict)
    documents: int = 0
    chunks: int = 0
    embedding: str = ""

    def summary(self) -> dict[str, float | int]:
        """The documented JSON keys, plus k and hit@k."""
        return {
            "questions": self.questions,
            "hit_at_1": round(self.hit_at_1, 4),
            "hit_at_5": round(self.hit_at_5, 4),
            "mrr_at_10": round(self.mrr_at_10, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "k": self.k,
            "hit_at_k": round(self.hit_at_k, 4),
        }


def load_questions(path: Path) -> list[Question]:
    if not path.is_file():
        raise EvalSetError(str(path), "questions.jsonl not found")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            sources = row["sources"]
            if not isinstance(row["question"], str) or not isinstance(sources, list):
                raise TypeError("question must be a string and sources a list")
            questions.append(
                Question(row["question"], tuple(str(s) for s in sources), row.get("answer", ""))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalSetError(f"{path}:{number}", f"bad question line ({exc})") from exc
    if not questions:
        raise EvalSetError(str(path), "no questions")
    return questions


def distinct_sources(hits: Sequence[Hit], corpus: Path) -> tuple[str, ...]:
    """Sources of the hits in first-seen order, relative to the corpus folder."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(relative_source(hit.chunk.source, corpus), None)
    return tuple(seen)


def relative_source(source: str, corpus: Path) -> str:
    """A chunk's source as the set names it: relative to the corpus folder."""
    path = Path(source)
    return path.relative_to(corpus).as_posix() if path.is_relative_to(corpus) else str(path)


def _hit_rate(results: Sequence[QuestionResult], k: int) -> float:
    return sum(1 for r in results if r.rank is not None and r.rank <= k) / len(results)


def _mrr(results: Sequence[QuestionResult], depth: int = 10) -> float:
    return sum(1 / r.rank for r in results if r.rank is not None and r.rank <= depth) / len(results)


def percentile(values: Sequence[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def summarize(results: Sequence[QuestionResult], k: int) -> EvalReport:
    """Pure: the figures for a list of per-question results."""
    by_source: dict[str, list[QuestionResult]] = {}
    for r in results:
        for source in r.question.sources:
            by_source.setdefault(source, []).append(r)
    latencies = [r.latency_ms for r in results]
    return EvalReport(
        questions=len(results),
        k=k,
        hit_at_1=_hit_rate(results, 1),
        hit_at_5=_hit_rate(results, 5),
        hit_at_k=_hit_rate(results, k),
        mrr_at_10=_mrr(results),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        per_source={
            source: SourceScore(len(rs), _hit_rate(rs, 1), _hit_rate(rs, k), _mrr(rs))
            for source, rs in sorted(by_source.items())
        },
    )


def run_retrieval_eval(
    folder: Path,
    config: KnowledgeConfig,
    *,
    k: int = 5,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Index `folder/corpus` into a temporary data dir and score every question.

    `config` supplies embeddings and chunking; its data dir and Chroma server are ignored
    (the eval never touches a real knowledge base). Latency is that of the bot's own call,
    `search(question, k)`; the ranking uses a deeper search so MRR@10 sees 10 sources.
    """
    questions = load_questions(questions_of(folder))
    with scratch_knowledge_base(folder, config, progress) as (kb, corpus):
        return retrieval_report(kb, corpus, questions, k=k, progress=progress)


def retrieval_report(
    kb: KnowledgeBase,
    corpus: Path,
    questions: Sequence[Question],
    *,
    k: int = 5,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Score `questions` against an indexed `kb` whose documents came from `corpus`."""
    results = []
    for i, q in enumerate(questions, start=1):
        start = time.perf_counter()
        kb.search(q.question, k=k)
        latency = (time.perf_counter() - start) * 1000
        ranked = distinct_sources(kb.search(q.question, k=RANKING_DEPTH), corpus)
        results.append(QuestionResult(q, ranked[:10], latency))
        if progress:
            progress("questions", i, len(questions))
    report = summarize(results, k)
    stats = kb.stats()
    report.documents, report.chunks, report.embedding = (
        stats.documents,
        stats.chunks,
        stats.embedding,
    )
    return report


@contextmanager
def scratch_knowledge_base(
    folder: Path,
    config: KnowledgeConfig,
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[tuple[KnowledgeBase, Path]]:
    """`folder/corpus` indexed into a throw-away knowledge base (embedded Chroma in a
    temporary dir, whatever `config` says about data dir and server), warmed up; yields it
    with the resolved corpus path."""
    from knowledge.index import KnowledgeBase  # Chroma loads only when an eval runs

    corpus = corpus_of(folder)
    with tempfile.TemporaryDirectory(prefix="avatarbot-eval-") as tmp:
        scratch = config.model_copy(update={"data_dir": Path(tmp), "chroma_host": None})
        kb = KnowledgeBase(scratch)
        kb.add(
            [corpus],
            progress=(lambda d, t, _s: progress("index", d, t)) if progress else None,
        )
        kb.search("warm up")  # model load and BM25 build are not search latency
        yield kb, corpus


def corpus_of(folder: Path) -> Path:
    """The set's corpus folder, resolved; EvalSetError when it is missing."""
    corpus = (folder / "corpus").resolve()
    if not corpus.is_dir():
        raise EvalSetError(str(folder), "no corpus/ folder")
    return corpus


def questions_of(folder: Path) -> Path:
    """The set's questions file. The corpus is checked first, and may be a link to another
    set's corpus (a second question set over the same pages): the questions stay this set's."""
    corpus_of(folder)
    return folder / "questions.jsonl"
