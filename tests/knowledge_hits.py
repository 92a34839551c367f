"""Hits made from real documents, for answer tests that need passages without an index."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from knowledge.models import Chunk, Hit
from knowledge.sources import load_file

SAMPLE = Path(__file__).resolve().parents[1] / "knowledge" / "sample"
EVAL_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "anthropic-docs" / "corpus"


def sections(path: Path) -> dict[str, Chunk]:
    """A real document cut at its `## ` headings, one chunk per section."""
    doc = load_file(path, max_bytes=10_000_000)
    out: dict[str, Chunk] = {}
    for i, part in enumerate(re.split(r"(?m)^(?=## )", doc.text)):
        first_line = part.splitlines()[0]
        heading = first_line.lstrip("# ").split(" {#")[0] if part.startswith("## ") else ""
        out[heading] = Chunk(
            id=f"{path.name}:{i}",
            source=str(path),
            title=doc.title,
            section=heading,
            text=part,
            link=f"https://docs.example.com/{path.stem}#{i}",
        )
    return out


def hits(*chunks: Chunk, relevance: float = 0.6) -> list[Hit]:
    return [Hit(chunk=c, score=1.0 / (i + 1), relevance=relevance) for i, c in enumerate(chunks)]


class StaticRetriever:
    """Returns fixed hits and records each query, standing in for a KnowledgeBase."""

    def __init__(self, found: Sequence[Hit]) -> None:
        self.found = list(found)
        self.queries: list[tuple[str, list[str] | None]] = []

    async def asearch(
        self, query: str, k: int = 5, datasources: Sequence[str] | None = None
    ) -> list[Hit]:
        self.queries.append((query, list(datasources) if datasources else None))
        return self.found[:k]
