"""Limits that keep hostile documents cheap to refuse: size, inflation, pages, nesting.

Every limit is checked before the expensive step it protects (reading the whole body,
inflating a zip member, extracting text from every page, building a recursive tree), and a
document past one is skipped with a SourceError whose reason names the limit.

`read_capped` is the streaming half for any byte source (an HTTP body, a Slack file
download): it stops reading as soon as the cap is passed, so a lying or missing
Content-Length costs at most `max_bytes` of memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterable

from lxml import etree

from knowledge.sources.errors import SourceError, human_size, too_large

# A DOCX is a zip of XML. Real documents inflate by ~5-30x; a member over 1 MB that inflates
# by more than 100x is a zip bomb, and no DOCX needs more than 8x the file-size limit of XML.
DOCX_MAX_RATIO = 100
DOCX_RATIO_FLOOR = 1024 * 1024
DOCX_MAX_UNPACKED_FACTOR = 8
# Text extraction costs ~1 ms a page; a page tree past this is refused before walking it.
MAX_PDF_PAGES = 5000
# libxml2's HTML parser stops at 256 levels; recursive tree walks (BeautifulSoup, the
# extractors) fail near Python's recursion limit. Real pages nest well under 100 levels.
MAX_HTML_DEPTH = 200


async def read_capped(chunks: AsyncIterable[bytes], *, max_bytes: int, source: str) -> bytes:
    """Join a stream of byte chunks, raising SourceError as soon as it passes `max_bytes`."""
    body = bytearray()
    async for piece in chunks:
        body += piece
        if len(body) > max_bytes:
            raise SourceError(source, f"too large: over the {human_size(max_bytes)} limit")
    return bytes(body)


def check_declared_size(size: int | None, *, max_bytes: int, source: str) -> None:
    """Refuse before reading when the sender already says the body is too large."""
    if size is not None and size > max_bytes:
        raise too_large(source, size, max_bytes)


def check_docx_inflation(data: bytes, *, max_bytes: int, source: str) -> None:
    """Refuse a DOCX whose members would inflate past the limits, from the zip directory
    alone (zipfile then enforces the declared sizes while reading, so they cannot lie)."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip: the DOCX parser reports it as corrupt
    total = sum(m.file_size for m in members)
    if total > DOCX_MAX_UNPACKED_FACTOR * max_bytes:
        raise SourceError(
            source,
            f"DOCX inflates to {human_size(total)}, over the "
            f"{human_size(DOCX_MAX_UNPACKED_FACTOR * max_bytes)} limit (zip bomb?)",
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > DOCX_RATIO_FLOOR and ratio > DOCX_MAX_RATIO:
            raise SourceError(
                source, f"DOCX member {member.filename} inflates {ratio:.0f}:1 (zip bomb?)"
            )


def check_pdf_pages(count: int, *, source: str) -> None:
    if count > MAX_PDF_PAGES:
        raise SourceError(source, f"PDF has {count} pages, over the {MAX_PDF_PAGES} page limit")


def check_html_depth(html: bytes, *, source: str) -> None:
    """Refuse HTML nested deeper than MAX_HTML_DEPTH, measured with libxml2's iterative
    parser (it never recurses, and stops on its own at 256 levels)."""
    depth = deepest = 0
    events = etree.iterparse(
        io.BytesIO(html), events=("start", "end"), html=True, recover=True, huge_tree=False
    )
    try:
        for event, _ in events:
            depth += 1 if event == "start" else -1
            deepest = max(deepest, depth)
            if deepest > MAX_HTML_DEPTH:
                raise SourceError(source, f"HTML nested more than {MAX_HTML_DEPTH} levels deep")
    except etree.LxmlError:
        return  # unparseable here: the HTML pipeline decides what it can read
