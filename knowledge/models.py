"""The shapes that flow through the knowledge library: documents, chunks, search hits."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Document(BaseModel):
    """One loaded source, before chunking."""

    source: str = Field(description="Upsert key: absolute file path, URL, or upload name.")
    title: str
    text: str = Field(description="Normalised text; markdown headings where the format has them.")
    format: str = Field(description="md | txt | rst | html | pdf | docx")
    url: str | None = Field(default=None, description="Base link for deep links, if any.")
    place: str = Field(
        default="",
        description="The private conversation it was shared in ('' = no restriction); "
        "see knowledge.visibility.",
    )
    content_hash: str = Field(description="sha256 of the raw bytes; unchanged hash = no work.")


class Chunk(BaseModel):
    """A retrievable piece of a document, with everything needed to cite it."""

    id: str
    source: str
    title: str
    section: str = Field(default="", description="Heading path, e.g. 'Setup > Tokens'.")
    link: str | None = Field(default=None, description="Deep link (URL#anchor) when known.")
    text: str
    datasource: str = "default"
    place: str = Field(default="", description="As Document.place.")
    ordinal: int = 0
    content_hash: str = ""


class Hit(BaseModel):
    """A search result: a chunk, its fused score, and the per-retriever evidence."""

    chunk: Chunk
    score: float = Field(description="Fused ranking score (higher is better); only for ordering.")
    relevance: float = Field(
        default=0.0,
        description="Absolute relevance in [0, 1], comparable across queries: what a "
        "'nothing relevant found' threshold is applied to.",
    )
    dense_score: float | None = None
    lexical_score: float | None = None

    @property
    def citation(self) -> str:
        c = self.chunk
        where = f"{c.title} — {c.section}" if c.section else c.title
        return f"{where} ({c.link or c.source})"
