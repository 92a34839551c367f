"""Answer evaluation: answer every question of a set through the bot's own `Answerer` and
score the answers against the reference answers, beside a lead baseline from the same run.

Per question, with stemmed content words (stop words dropped, counts clipped as in ROUGE-1):
- recall: the share of the reference answer's words the answer contains (ROUGE-1 R);
- precision: the share of the answer's words found in the reference;
- gold_cited: one of the cited sources is one of the question's gold pages;
- grounded: `Answer.grounded` (cited passages, not a refusal or failure);
- words: the answer's length, citation marks left out.

The baseline reads the same retrieval (the same search the answerer made, in the same run):
the first words of the top passage, cut to the answer's own length, so the two differ only in
which words they chose. Latency is the whole `Answerer.answer` call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from knowledge.answering.answer import Answer, Answerer, AnswerStatus
from knowledge.config import AnswerConfig, KnowledgeConfig
from knowledge.evaluation import (
    EvalSetError,
    Question,
    load_questions,
    percentile,
    questions_of,
    relative_source,
    scratch_knowledge_base,
)
from knowledge.models import Hit
from knowledge.spoken_eval import SpokenReport, spoken_figures

if TYPE_CHECKING:
    from knowledge.index import KnowledgeBase

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_STOP = frozenset(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def tokens(text: str) -> Counter[str]:
    """Stemmed content words of `text`, citation marks left out."""
    words = [w.lower() for w in _TOKEN.findall(_CITATION.sub("", text))]
    return Counter(_stemmer().stemWords([w for w in words if w not in _STOP]))


def overlap(answer: str, reference: str) -> tuple[float, float]:
    """(recall, precision) of `answer`'s stemmed words against `reference` (ROUGE-1)."""
    have, want = tokens(answer), tokens(reference)
    common = sum((have & want).values())
    recall = common / sum(want.values()) if want else 0.0
    precision = common / sum(have.values()) if have else 0.0
    return recall, precision


def word_count(text: str) -> int:
    return len(_CITATION.sub("", text).split())


def lead_baseline(hits: Sequence[Hit], words: int) -> str:
    """The first `words` words of the top passage, as they are."""
    if not hits or words <= 0:
        return ""
    return " ".join(hits[0].chunk.text.split()[:words])


@dataclass(frozen=True)
class AnswerResult:
    question: Question
    answer: Answer
    baseline: str
    latency_ms: float
    cited_sources: tuple[str, ...]  # relative to corpus/

    @property
    def text(self) -> str:
        """What counts as the answer: nothing when none was given (nothing found, a refusal,
        a failure), so saying "I couldn't find it" earns no words and no recall."""
        return self.answer.text if self.answer.status is AnswerStatus.ANSWERED else ""

    @property
    def scores(self) -> tuple[float, float]:
        return overlap(self.text, self.question.answer)

    @property
    def baseline_scores(self) -> tuple[float, float]:
        return overlap(self.baseline, self.question.answer)

    @property
    def gold_cited(self) -> bool:
        return any(s in self.question.sources for s in self.cited_sources)

    def row(self) -> dict[str, object]:
        """One question's figures and texts, as `eval answers --per-question --json` prints."""
        return {
            "question": self.question.question,
            "recall": round(self.scores[0], 4),
            "baseline_recall": round(self.baseline_scores[0], 4),
            "words": word_count(self.text),
            "gold_cited": self.gold_cited,
            "answer": self.text,
            "baseline": self.baseline,
            "reference": self.question.answer,
        }


@dataclass(frozen=True)
class AnswerReport:
    questions: int
    recall: float
    precision: float
    gold_cited: float
    grounded: float
    words: float
    baseline_recall: float
    baseline_precision: float
    baseline_words: float  # the answer's length, or less when the top passage is shorter
    p50_ms: float
    p95_ms: float
    path: str  # "extractive" or the model string
    lead_words: int | None = None  # the baseline's fixed length; None: the answer's length
    spoken: SpokenReport | None = None  # the avatar's scripts (knowledge/spoken_eval.py)

    def summary(self) -> dict[str, float | int]:
        """Exactly the documented JSON keys."""
        return {
            "questions": self.questions,
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
            "gold_cited": round(self.gold_cited, 4),
            "grounded": round(self.grounded, 4),
            "words": round(self.words, 1),
            "baseline_recall": round(self.baseline_recall, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            **(self.spoken.summary() if self.spoken else {}),
        }


def summarize_answers(
    results: Sequence[AnswerResult], path: str, lead_words: int | None = None
) -> AnswerReport:
    """Pure: the figures for a list of per-question results."""
    n = len(results)
    mean = lambda values: sum(values) / n  # noqa: E731
    latencies = [r.latency_ms for r in results]
    return AnswerReport(
        questions=n,
        recall=mean([r.scores[0] for r in results]),
        precision=mean([r.scores[1] for r in results]),
        gold_cited=mean([float(r.gold_cited) for r in results]),
        grounded=mean([float(r.answer.grounded) for r in results]),
        words=mean([word_count(r.text) for r in results]),
        baseline_recall=mean([r.baseline_scores[0] for r in results]),
        baseline_precision=mean([r.baseline_scores[1] for r in results]),
        baseline_words=mean([word_count(r.baseline) for r in results]),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        path=path,
        lead_words=lead_words,
        spoken=spoken_figures([r.text for r in results]),
    )


def run_answer_eval(
    folder: Path,
    config: KnowledgeConfig,
    answer_config: AnswerConfig,
    *,
    limit: int | None = None,
    lead_words: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[AnswerReport, list[AnswerResult]]:
    """Index `folder/corpus` into a temporary data dir and answer every question that has a
    reference answer (the first `limit` of them), through `Answerer.from_config`. The lead
    baseline has the answer's length, or `lead_words` words when given (how long a lead must
    be to match the answer's recall)."""
    questions = load_questions(questions_of(folder))
    questions = [q for q in questions if q.answer.strip()]
    if not questions:
        raise EvalSetError(str(folder / "questions.jsonl"), "no question has an 'answer' field")
    questions = questions[:limit] if limit else questions
    with scratch_knowledge_base(folder, config, progress) as (kb, corpus):
        return answer_report(kb, corpus, questions, answer_config, lead_words, progress)


def answer_report(
    kb: KnowledgeBase,
    corpus: Path,
    questions: Sequence[Question],
    answer_config: AnswerConfig,
    lead_words: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[AnswerReport, list[AnswerResult]]:
    """Answer `questions` (those with a reference answer) from an indexed `kb` whose
    documents came from `corpus`, and score them beside the lead baseline."""
    answerer = Answerer.from_config(kb, answer_config)
    results = asyncio.run(_answer_all(answerer, questions, corpus, lead_words, progress))
    path = answer_config.llm.model if answer_config.llm else "extractive"
    return summarize_answers(results, path, lead_words), results


async def _answer_all(
    answerer: Answerer,
    questions: Sequence[Question],
    corpus: Path,
    lead_words: int | None,
    progress: Callable[[str, int, int], None] | None,
) -> list[AnswerResult]:
    await answerer.answer("warm up")  # model loads are not answer latency
    results = []
    for i, q in enumerate(questions, start=1):
        start = time.perf_counter()
        answer = await answerer.answer(q.question)
        latency = (time.perf_counter() - start) * 1000
        # The same search the answerer made (deterministic), for the baseline.
        hits = await answerer.retrieve(answer.standalone_question)
        cited = tuple(relative_source(s.source, corpus) for s in answer.sources)
        result = AnswerResult(q, answer, "", latency, cited)
        baseline = lead_baseline(hits, lead_words or word_count(result.text))
        results.append(dataclasses.replace(result, baseline=baseline))
        if progress:
            progress("questions", i, len(questions))
    return results
