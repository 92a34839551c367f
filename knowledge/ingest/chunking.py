"""Heading-aware chunking: Document -> Chunks that each know their title, section and deep link.

Pure logic, no I/O. Sections come from langchain's ExperimentalMarkdownSyntaxTextSplitter: it
splits on `#` headings like MarkdownHeaderTextSplitter but keeps the text byte for byte
(the classic splitter strips every line, flattening code indentation and paragraph breaks,
which then defeats the paragraph-first splitting below). Long sections are split again with
RecursiveCharacterTextSplitter (paragraphs, then lines, then sentences).

Headings stay in the chunk text (strip_headers=False): a passage shown to a reader or an LLM
keeps its structure, and when a near-empty section is merged into the next one, both
headings remain visible in the merged text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from urllib.parse import quote

from langchain_text_splitters import (
    ExperimentalMarkdownSyntaxTextSplitter,
    RecursiveCharacterTextSplitter,
)

from knowledge.models import Chunk, Document

_LEVELS = [("#" * n, f"Header {n}") for n in range(1, 7)]
# Heading and fence syntax exactly as ExperimentalMarkdownSyntaxTextSplitter reads it, so that
# the k-th heading seen here is the k-th section it starts.
_HEADING = re.compile(r"^(#{1,6}) (.*?)[ \t]*$")
_ANCHORED_HEADING = re.compile(r"^(#{1,6} .*?)[ \t]*\{#([^}\s]+)\}[ \t]*$")
_FENCE = re.compile(r"^(```|~~~)")
# Characters str.splitlines() (used by the splitter) breaks on besides "\n"; PDFs emit \f.
_OTHER_LINE_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Paragraphs first, then lines, then sentence and clause ends, then words.
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]
# Characters a URL fragment keeps as they are; everything else in an anchor is %-encoded, so
# an id written by a hostile page (`feed"><!channel><https://evil`) cannot end the link.
_FRAGMENT_SAFE = "-._~:@/?!$*+,;="
FIELD_LIMIT = 300  # characters of a title or heading path kept on a chunk


@dataclass
class _Section:
    path: tuple[str, ...]  # heading texts, outermost first
    text: str
    anchor: str | None = None  # link target of the section's own heading

    @property
    def body_chars(self) -> int:
        """Characters of content, not counting heading lines."""
        return sum(len(line) for line in self.text.split("\n") if not _HEADING.match(line))


def chunk_document(
    doc: Document,
    *,
    datasource: str = "default",
    chunk_size: int = 1000,
    chunk_overlap: int = 150,
    min_section_chars: int | None = None,
) -> list[Chunk]:
    """Split a document into chunks of at most `chunk_size` characters.

    Sections with less than `min_section_chars` of content (default chunk_size // 8, about a
    heading and one line) are merged into the following section, or the previous one at the
    end of the document, instead of becoming near-empty chunks.
    """
    if chunk_overlap >= chunk_size:
        raise ValueError("chunk_overlap must be smaller than chunk_size")
    min_chars = chunk_size // 8 if min_section_chars is None else min_section_chars
    text, anchors = _take_anchors(_normalise(doc.text))
    sections = _sections(text, _anchors(text, anchors), headings=doc.format != "txt")
    sections = _merge_tiny(sections, min_chars)
    base_id = hashlib.sha1(f"{datasource}\x00{doc.source}".encode()).hexdigest()[:16]
    chunks: list[Chunk] = []
    title = plain_field(doc.title)
    for section in sections:
        path = _without_title(section.path, doc.title)
        link = _link(doc.url, section.anchor if path else None)
        for piece in _split_section(
            section.text, chunk_size=chunk_size, overlap=chunk_overlap, min_chars=min_chars
        ):
            chunks.append(
                Chunk(
                    id=f"{base_id}-{len(chunks)}",
                    source=doc.source,
                    title=title,
                    section=plain_field(" > ".join(path)),
                    link=link,
                    text=piece,
                    datasource=datasource,
                    ordinal=len(chunks),
                    content_hash=doc.content_hash,
                )
            )
    return chunks


def _splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=_SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )


def index_text(chunk: Chunk) -> str:
    """What to embed and index lexically: title and heading path first, so a question that
    names the document or the section finds chunks whose own text never repeats it."""
    header = f"{chunk.title}\n{chunk.section}" if chunk.section else chunk.title
    return f"{header}\n\n{chunk.text}"


def github_slug(heading: str) -> str:
    """The anchor GitHub (and most markdown renderers) give a heading: lower case, spaces to
    hyphens, punctuation dropped. Duplicates are numbered by the caller."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- sections --------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """One kind of line break, and every code fence closed: the splitter drops everything
    after a fence that never closes."""
    text = _OTHER_LINE_BREAKS.sub("\n", text)
    fences = sum(1 for line in text.split("\n") if _FENCE.match(line))
    return f"{text}\n```" if fences % 2 else text


def _take_anchors(text: str) -> tuple[str, list[str | None]]:
    """Strip `{#id}` suffixes off headings; return the text and each heading's id (or None),
    in document order, for headings outside code fences."""
    lines = text.split("\n")
    anchors: list[str | None] = []
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not _HEADING.match(line):
            continue
        anchored = _ANCHORED_HEADING.match(line)
        if anchored:
            lines[i] = anchored.group(1)
        anchors.append(anchored.group(2) if anchored else None)
    return "\n".join(lines), anchors


def _sections(text: str, anchors: list[str], *, headings: bool) -> list[_Section]:
    """Sections in document order; the k-th one that starts with a heading gets anchors[k]."""
    if not headings:
        return [_Section((), text)] if text.strip() else []
    splitter = ExperimentalMarkdownSyntaxTextSplitter(
        headers_to_split_on=_LEVELS, strip_headers=False
    )
    sections: list[_Section] = []
    heading_anchors = iter(anchors)
    for piece in splitter.split_text(text):
        path = tuple(
            _plain_heading(piece.metadata[name]) for _, name in _LEVELS if piece.metadata.get(name)
        )
        starts_section = "Code" not in piece.metadata and _HEADING.match(
            piece.page_content.split("\n", 1)[0]
        )
        if sections and not starts_section and sections[-1].path == path:
            sections[-1].text += piece.page_content  # code block or text after it
            continue
        anchor = None
        if starts_section and path:
            anchor = next(heading_anchors, None) or github_slug(path[-1])
        sections.append(_Section(path, piece.page_content, anchor))
    return [section for section in sections if section.text.strip()]


def _merge_tiny(sections: list[_Section], min_chars: int) -> list[_Section]:
    """Fold sections with (almost) no content into the next section, which keeps its own path:
    its heading line is in the merged text and it carries most of the content."""
    merged: list[_Section] = []
    pending, pending_anchor = "", None
    for section in sections:
        if pending:
            section = _Section(
                section.path, f"{pending.rstrip()}\n\n{section.text.lstrip()}", section.anchor
            )
            pending = ""
        if section.body_chars < min_chars:
            pending, pending_anchor = section.text, section.anchor
        else:
            merged.append(section)
    if pending:
        if merged:
            last = merged[-1]
            merged[-1] = _Section(
                last.path, f"{last.text.rstrip()}\n\n{pending.lstrip()}", last.anchor
            )
        elif pending.strip():
            merged.append(_Section(_path_of_first_heading(pending), pending, pending_anchor))
    return merged


def _split_section(text: str, *, chunk_size: int, overlap: int, min_chars: int) -> list[str]:
    """Split one section; then put back scraps the recursive splitter leaves alone (a short
    paragraph, often a heading and one line, whose next paragraph was too long to join it)
    with a neighbour. A scrap before a full piece gets room by splitting that piece again a
    little smaller. Merged chunks are cut from the section text itself, so nothing is
    repeated or lost between them."""
    pieces = [piece for piece in _splitter(chunk_size, overlap).split_text(text) if piece.strip()]
    spans = _spans(text, pieces)
    if spans is None:
        return pieces
    out: list[tuple[int, int]] = []
    queue = deque(spans)
    while queue:
        start, end = queue.popleft()
        if out:
            prev_start, prev_end = out[-1]
            scrap_before = prev_end - prev_start < min_chars
            if (scrap_before or end - start < min_chars) and end - prev_start <= chunk_size:
                out[-1] = (prev_start, end)
                continue
            room = chunk_size - (start - prev_start)
            if scrap_before and room >= chunk_size // 2:
                head = _splitter(room, min(overlap, room // 2)).split_text(text[start:end])
                sub = _spans(text[start:end], head)
                if sub:
                    out[-1] = (prev_start, start + sub[0][1])
                    queue.extendleft(reversed([(start + a, start + b) for a, b in sub[1:]]))
                    continue
        out.append((start, end))
    return [text[a:b].strip() for a, b in out]


def _spans(text: str, pieces: list[str]) -> list[tuple[int, int]] | None:
    """Where each piece sits in text (pieces are in order and may overlap), or None."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in pieces:
        at = text.find(piece, cursor)
        if at < 0:
            return None
        spans.append((at, at + len(piece)))
        cursor = at + 1
    return spans


def _path_of_first_heading(text: str) -> tuple[str, ...]:
    for line in text.split("\n"):
        match = _HEADING.match(line)
        if match:
            return (_plain_heading(match.group(2)),)
    return ()


# --- links -----------------------------------------------------------------------------------


def _anchors(text: str, ids: list[str | None]) -> list[str]:
    """Each heading's anchor in document order: the page's own id when known, else the
    GitHub slug, numbered like GitHub numbers repeated headings (tokens, tokens-1, ...)."""
    anchors: list[str] = []
    seen: dict[str, int] = {}
    explicit = iter(ids)
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(_plain_heading(match.group(2)))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.append(next(explicit, None) or (slug if count == 0 else f"{slug}-{count}"))
    return anchors


def _link(url: str | None, anchor: str | None) -> str | None:
    if not url:
        return None
    base = url.split("#", 1)[0]
    return f"{base}#{quote(anchor, safe=_FRAGMENT_SAFE)}" if anchor else base


def plain_field(text: str) -> str:
    """A title or heading as one line of plain text: control and format characters (bidi
    overrides, zero-width marks) removed, whitespace collapsed, at most FIELD_LIMIT chars.
    Documents are untrusted; every surface that shows these fields escapes them as well."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )
    return " ".join(kept.split())[:FIELD_LIMIT]


def _without_title(path: tuple[str, ...], title: str) -> tuple[str, ...]:
    """The document's own H1 is its title; repeating it in every section path adds nothing
    (docs often repeat it once more as the first H2)."""
    while path and _same(path[0], title):
        path = path[1:]
    return path


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _plain_heading(text: str) -> str:
    """Heading text as a reader sees it: no closing #s, links, code or emphasis marks."""
    text = re.sub(r"[ \t]+#+[ \t]*$", "", text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|`)", "", text)
    return " ".join(text.split())
