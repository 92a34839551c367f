"""Extractive answer quality on the public question set, beside a naive baseline.

    python -m bench.answer_quality [--data-dir DIR] [--show]

Every question of shared/eval/anthropic-docs/questions.jsonl is answered from the same
retrieved passages (BM25 only, EMBEDDINGS=none; a throw-away index is built when no
`--data-dir` holding one is given) twice: by the composer, and by a baseline that takes the
first sentences of the top passage up to the composer's length budget ("lead"). Counted per
answer: code-like text, a dangling lead-in, a run of headings or link labels, a heading
glued to the next word, the length in words, and the share of the reference answer's stemmed
content words that the answer contains (ROUGE-1 recall). The detectors are deliberately
independent of the composer's own rules, and crude: read the answers with `--show`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import Stemmer

from knowledge.answering.composer import compose
from knowledge.answering.sentences import split_sentences
from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase
from knowledge.models import Hit

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval" / "anthropic-docs"
MIN_RELEVANCE = 0.2  # the ANSWER_MIN_SCORE default

_CITATION = re.compile(r"\s*\[\d+\]")
_CODE = re.compile(
    r">>>|^\s*\$ |\b\w+\s*=\s*[\w\"'{\[]|\w\.\w+\(|[{};]\s*$|```|\{\s*\"|\bdef \w+\s*\(", re.M
)
_DANGLING = re.compile(r"(?::|\binclude|\bincludes|\bfollowing|\bas follows)\s*\[\d+\]", re.I)
_GLUED = re.compile(r"[a-z]{2}[A-Z][a-z]+ [a-z]")
_SMALL = frozenset(
    [
        "the",
        "a",
        "an",
        "is",
        "are",
        "to",
        "of",
        "and",
        "in",
        "for",
        "with",
        "that",
        "it",
        "can",
        "be",
        "you",
        "this",
        "on",
        "or",
        "as",
        "by",
    ]
)
_STEM = Stemmer.Stemmer("english")


def _stems(text: str) -> list[str]:
    return _STEM.stemWords(re.findall(r"[a-z0-9]+", text.lower()))


def _is_nav(sentence: str) -> bool:
    words = re.findall(r"[A-Za-z][\w'-]*", sentence)
    if len(words) < 8:
        return False
    capitalised = sum(w[0].isupper() for w in words) / len(words)
    small = sum(w.lower() in _SMALL for w in words) / len(words)
    return capitalised >= 0.5 and small < 0.15


@dataclass
class Tally:
    answers: int = 0
    empty: int = 0
    code: int = 0
    dangling: int = 0
    nav: int = 0
    glued: int = 0
    words: int = 0
    recall: float = 0.0
    texts: list[str] = field(default_factory=list)

    def add(self, text: str, reference: str) -> None:
        plain = _CITATION.sub("", text)
        self.answers += 1
        self.empty += not text
        self.code += bool(_CODE.search(plain))
        self.dangling += bool(_DANGLING.search(text))
        self.nav += any(_is_nav(s) for s in re.split(r"(?<=[.!?])\s+", plain))
        self.glued += bool(_GLUED.search(plain))
        self.words += len(plain.split())
        have = set(_stems(plain))
        wanted = [t for t in _stems(reference) if t not in _SMALL]
        self.recall += sum(t in have for t in wanted) / max(1, len(wanted))
        self.texts.append(text)


def lead(question: str, hits: Sequence[Hit], max_chars: int = 600) -> str:
    """The baseline: the top passage's first sentences, as they are, with one citation."""
    if not hits:
        return ""
    out: list[str] = []
    for sentence in split_sentences(" ".join(hits[0].chunk.text.split())):
        if out and len(" ".join(out)) + len(sentence) > max_chars:
            break
        out.append(sentence)
    return " ".join(out) + " [1]"


async def _retrieve(kb: KnowledgeBase, questions: list[dict[str, str]]) -> list[list[Hit]]:
    found = []
    for q in questions:
        hits = await kb.asearch(q["question"], k=5)
        found.append([h for h in hits if h.relevance >= MIN_RELEVANCE])
    return found


def run(data_dir: Path | None, show: bool) -> None:
    questions = [
        json.loads(line)
        for line in (EVAL / "questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        kb = KnowledgeBase(KnowledgeConfig(data_dir=data_dir or Path(tmp), embeddings="none"))
        if kb.is_empty():
            kb.add(sorted((EVAL / "corpus").iterdir()))
        retrieved = asyncio.run(_retrieve(kb, questions))

    writers: dict[str, Callable[[str, Sequence[Hit]], str]] = {
        "lead (baseline)": lead,
        "composer": lambda q, hits: compose(q, hits).text if hits else "",
    }
    tallies = {name: Tally() for name in writers}
    for q, hits in zip(questions, retrieved, strict=True):
        for name, write in writers.items():
            tallies[name].add(write(q["question"], hits), q["answer"])

    base, ours = tallies["lead (baseline)"], tallies["composer"]
    n = base.answers
    print(f"{n} questions, BM25 top-5 passages (relevance >= {MIN_RELEVANCE})")
    print(f"{'answers with …':30} {'lead':>8} {'composer':>9}")
    for label, attr in [
        ("code-like text", "code"),
        ("a dangling lead-in", "dangling"),
        ("a nav run", "nav"),
        ("a glued heading", "glued"),
        ("no text (nothing found)", "empty"),
    ]:
        print(f"{label:30} {getattr(base, attr):8d} {getattr(ours, attr):9d}")
    print(f"{'mean length (words)':30} {base.words / n:8.1f} {ours.words / n:9.1f}")
    print(
        f"{'ROUGE-1 recall (stemmed)':30} {base.recall / n:8.3f} {ours.recall / n:9.3f}"
        f"   ratio {ours.recall / max(base.recall, 1e-9):.2f}"
    )
    if show:
        for q, text in zip(questions, ours.texts, strict=True):
            print(f"\nQ: {q['question']}\nA: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.answer_quality", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="an index of the eval corpus to reuse")
    parser.add_argument("--show", action="store_true", help="print every composed answer")
    args = parser.parse_args()
    run(args.data_dir, args.show)


if __name__ == "__main__":
    main()
