"""Bytes -> str for the text formats, refusing binary content that only wears a text name."""

from __future__ import annotations

import codecs

from knowledge.sources.errors import SourceError

# Control characters that never appear in real text files (tab, newlines, form feed, escape
# are allowed).
_ALLOWED_CONTROLS = {"\t", "\n", "\r", "\f", "\v", "\x1b"}
_MAX_CONTROL_RATIO = 0.01


def decode_text(data: bytes, *, ext: str, source: str, charset: str | None = None) -> str:
    """Decode a text file: BOM, then the declared charset, then UTF-8, then Windows-1252."""
    binary = SourceError(source, f"not text: binary content in a {ext} file")
    text = _decode_with_bom(data)
    if text is None:
        if b"\x00" in data:
            raise binary
        text = _decode_first_working(data, [charset, "utf-8", "cp1252"])
        if text is None:
            raise binary
    controls = sum(1 for ch in text if ch < " " and ch not in _ALLOWED_CONTROLS)
    if controls > max(2, len(text) * _MAX_CONTROL_RATIO):
        raise binary
    return text


def _decode_with_bom(data: bytes) -> str | None:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def _decode_first_working(data: bytes, encodings: list[str | None]) -> str | None:
    for encoding in encodings:
        if not encoding:
            continue
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return None
