"""The shapes that flow through the knowledge library: documents, chunks, search hits."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class OriginKind(StrEnum):
    """How a document came in: what `knowledge sync` does to check it again."""

    FILE = "file"  # one file on disk: re-hashed
    FOLDER = "folder"  # walked from a folder: the folder is walked again
    URL = "url"  # one URL: a conditional GET
    CRAWL = "crawl"  # a page of a crawled site: the site is crawled again, conditionally
    UPLOAD = "upload"  # bytes handed over (a Slack file): nothing to re-check
    SLACK = "slack"  # a Slack thread: followed through Slack's events by the bot, not by sync


class Origin(BaseModel):
    """Where a document came from: `root` is the file, folder, URL or crawl start."""

    model_config = ConfigDict(frozen=True)

    kind: OriginKind
    root: str


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
    # Freshness: how the document was added, and what makes its next fetch conditional.
    origin: Origin | None = Field(default=None, description="How it was added (for sync).")
    etag: str = Field(default="", description="The server's ETag, for If-None-Match.")
    last_modified: str = Field(default="", description="Last-Modified, for If-Modified-Since.")
    links: tuple[str, ...] = Field(
        default=(), description="Same-site pages it links to (a crawl goes on from a 304)."
    )


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
