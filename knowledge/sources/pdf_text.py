"""PDF -> text with pypdf; the outline (bookmarks), when present, becomes markdown headings."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader
from pypdf.generic import Destination

from knowledge.sources.errors import SourceError
from knowledge.sources.limits import check_pdf_pages


def pdf_to_markdown(data: bytes, *, source: str) -> tuple[str, str | None]:
    """(text, metadata title). Raises SourceError for corrupt, encrypted or image-only PDFs."""
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception as exc:  # pypdf raises many types for malformed files
        raise SourceError(source, "corrupt or unreadable PDF") from exc
    if encrypted and not _try_empty_password(reader):
        raise SourceError(source, "encrypted PDF")
    try:
        # The root's /Count first (free, but it may lie low), then the walked tree's size.
        claimed = reader.trailer["/Root"]["/Pages"].get("/Count")
        if isinstance(claimed, int):
            check_pdf_pages(int(claimed), source=source)
        check_pdf_pages(len(reader.pages), source=source)  # before any page is read
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
        outline = _outline(reader)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(source, "corrupt or unreadable PDF") from exc
    if not any(page.strip() for page in pages):
        raise SourceError(source, "no extractable text in PDF (scanned images? run OCR first)")
    for page_number, depth, heading in reversed(outline):
        pages[page_number] = _insert_heading(pages[page_number], depth, heading)
    return "\n\n".join(pages), (title.strip() if isinstance(title, str) else None) or None


def _try_empty_password(reader: PdfReader) -> bool:
    """PDFs locked only against editing open with an empty user password; read those."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _outline(reader: PdfReader) -> list[tuple[int, int, str]]:
    """(page index, depth from 1, title) for every bookmark, in document order."""
    found: list[tuple[int, int, str]] = []

    def walk(items: list, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            elif isinstance(item, Destination) and item.title:
                page = reader.get_destination_page_number(item)
                if page is not None and page >= 0:
                    found.append((page, depth, str(item.title).strip()))

    walk(reader.outline, 1)
    return sorted(found, key=lambda entry: entry[0])  # stable: keeps order within a page


def _insert_heading(page_text: str, depth: int, heading: str) -> str:
    """Turn the line that carries the bookmark title into a heading, else put one on top."""
    marker = "#" * min(depth, 6)
    pattern = re.compile(rf"^[ \t]*{re.escape(heading)}[ \t]*$", re.M | re.I)
    if pattern.search(page_text):
        return pattern.sub(f"{marker} {heading}", page_text, count=1)
    return f"{marker} {heading}\n\n{page_text}"
