"""DOCX -> markdown with python-docx: Title/Heading styles become headings, tables rows."""

from __future__ import annotations

import io
import re

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from knowledge.sources.errors import SourceError
from knowledge.sources.limits import check_docx_inflation

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def docx_to_markdown(data: bytes, *, source: str, max_bytes: int) -> tuple[str, str | None]:
    """(markdown, core-properties title). A zip bomb is refused before anything inflates."""
    if data.startswith(_OLE_MAGIC):
        # Word 97-2003 files and password-protected DOCX files are both OLE containers.
        raise SourceError(source, "not a DOCX: old .doc format or password-protected")
    check_docx_inflation(data, max_bytes=max_bytes, source=source)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [_block(item) for item in document.iter_inner_content()]
        title = document.core_properties.title
    except Exception as exc:  # python-docx surfaces zip, xml and key errors for bad files
        raise SourceError(source, "corrupt or unreadable DOCX") from exc
    return "\n\n".join(block for block in blocks if block), (title or "").strip() or None


def _block(item: Paragraph | Table) -> str:
    if isinstance(item, Table):
        return _table(item)
    text = item.text.strip()
    if not text:
        return ""
    style = item.style.name if item.style is not None else ""
    if style == "Title":
        return f"# {text}"
    heading = _HEADING_STYLE.match(style or "")
    if heading:
        return f"{'#' * min(int(heading.group(1)), 6)} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _table(table: Table) -> str:
    rows = [
        "| " + " | ".join(cell.text.strip().replace("\n", " ") for cell in row.cells) + " |"
        for row in table.rows
    ]
    if not rows:
        return ""
    width = rows[0].count("|") - 1
    return "\n".join([rows[0], "|" + "---|" * width, *rows[1:]])
