"""Synthetic corpora of a chosen size, grown from the eval corpus with word-level variations.

Copy i of a document replaces ~10% of its words (seeded by i) with other words from the
corpus, so copies are distinct documents to BM25, to the near-duplicate filter and to
hashing, while keeping the length and vocabulary of real technical docs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

EVAL_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "anthropic-docs"
_WORD = re.compile(r"[A-Za-z]{4,}")


def base_corpus() -> Path:
    """The eval set the bench grows from (sibling checkout, as in the README)."""
    for candidate in (EVAL_CORPUS, Path("/work/shared/eval/anthropic-docs")):
        if (candidate / "corpus").is_dir():
            return candidate
    raise SystemExit("bench needs ../shared/eval/anthropic-docs (the retrieval eval set)")


def synthesize(target: Path, copies: int) -> list[Path]:
    """Write `copies` varied copies of every base document under `target`; return the files."""
    sources = sorted((base_corpus() / "corpus").glob("*.md"))
    texts = [p.read_text(encoding="utf-8") for p in sources]
    vocabulary = sorted({w for t in texts for w in _WORD.findall(t)})
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(copies):
        rng = random.Random(i)
        for path, text in zip(sources, texts, strict=True):
            varied = text if i == 0 else _vary(text, rng, vocabulary)
            out = target / f"v{i:03d}-{path.name}"
            out.write_text(varied, encoding="utf-8")
            files.append(out)
    return files


def _vary(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    def swap(match: re.Match[str]) -> str:
        return rng.choice(vocabulary) if rng.random() < 0.1 else match.group(0)

    return _WORD.sub(swap, text)
