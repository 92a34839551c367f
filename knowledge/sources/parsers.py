"""Raw bytes + a file name -> Document, dispatched on the extension. Pure: no file or network I/O.

Every format ends up as markdown-ish text with `#` headings where the format has structure,
so the chunker treats them all alike.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from knowledge.models import Document
from knowledge.sources.errors import SourceError, too_large
from knowledge.sources.limits import check_html_depth
from knowledge.sources.markdown_text import first_h1, setext_to_atx, split_front_matter, tidy
from knowledge.sources.rst_text import rst_to_markdown
from knowledge.sources.text_decoding import decode_text

FORMATS: dict[str, str] = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(FORMATS)


def unsupported_reason(filename: str) -> str | None:
    """Why a file name cannot be loaded, or None when its extension is supported."""
    ext = PurePosixPath(filename).suffix.lower()
    if ext in SUPPORTED_EXTENSIONS:
        return None
    return f"unsupported file type {ext}" if ext else "unsupported file type (no extension)"


def parse_bytes(
    data: bytes,
    filename: str,
    *,
    source: str | None = None,
    url: str | None = None,
    max_bytes: int,
    charset: str | None = None,
) -> Document:
    """Parse one document. `charset` is a hint for text formats (e.g. from Content-Type).

    Raises SourceError with a short reason for anything that cannot become useful text.
    CPU-bound (PDF parsing, HTML extraction): call it via asyncio.to_thread from async code.
    """
    source = source or url or filename
    reason = unsupported_reason(filename)
    if reason:
        raise SourceError(source, reason)
    ext = PurePosixPath(filename).suffix.lower()
    fmt = FORMATS[ext]
    if len(data) > max_bytes:
        raise too_large(source, len(data), max_bytes)
    if not data.strip():
        raise SourceError(source, "empty file")

    # The PDF, Word and HTML readers (pypdf, python-docx, trafilatura, bs4: ~50 MB resident
    # together) are imported by the first file that needs them, not by every process that
    # may parse something: a server or a folder of markdown never loads them.
    hint: str | None = None
    if fmt == "pdf":
        from knowledge.sources.pdf_text import pdf_to_markdown

        text, hint = pdf_to_markdown(data, source=source)
    elif fmt == "docx":
        from knowledge.sources.docx_text import docx_to_markdown

        text, hint = docx_to_markdown(data, source=source, max_bytes=max_bytes)
    else:
        if fmt == "html":
            from bs4.dammit import EncodingDetector

            from knowledge.sources.html_text import html_to_markdown

            charset = charset or EncodingDetector.find_declared_encoding(data[:4096], is_html=True)
        text = decode_text(data, ext=ext, source=source, charset=charset)
        if fmt == "html":
            check_html_depth(data, source=source)
            try:
                text, hint = html_to_markdown(text)
            except RecursionError:  # a second line behind the depth check
                raise SourceError(source, "HTML nested too deeply to read") from None
        elif fmt == "rst":
            text = rst_to_markdown(tidy(text))
        elif fmt == "md":
            text, hint = split_front_matter(tidy(text))
            text = setext_to_atx(text)
    text = tidy(text)
    if not text.strip():
        raise SourceError(source, "empty file" if fmt != "html" else "no readable text in page")

    stem = PurePosixPath(filename).stem or filename
    if fmt == "txt":
        # A .txt file's `#` lines are as often comments as headings: its title is its name.
        title = stem
    elif fmt == "pdf":
        # A PDF's H1s come from its bookmarks (chapters); its metadata names the whole file.
        title = hint or first_h1(text) or stem
    else:
        title = first_h1(text) or hint or stem
    return Document(
        source=source,
        title=" ".join(title.split()),
        text=text,
        format=fmt,
        url=url,
        content_hash=hashlib.sha256(data).hexdigest(),
    )
