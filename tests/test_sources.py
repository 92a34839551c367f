"""Loading files and bytes into Documents: every format, and every bad input with its reason."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from knowledge.sources import (
    SUPPORTED_EXTENSIONS,
    Skipped,
    SourceError,
    load_file,
    parse_bytes,
    walk_folder,
)
from tests.fixtures.documents import blank_pdf, encrypted_pdf, handbook_pdf, policy_docx

MB = 1024 * 1024
LIMIT = 20 * MB


def parse(data: bytes, name: str, **kwargs: object) -> object:
    return parse_bytes(data, name, max_bytes=LIMIT, **kwargs)  # type: ignore[arg-type]


def reason_of(data: bytes, name: str, *, max_bytes: int = LIMIT) -> str:
    with pytest.raises(SourceError) as caught:
        parse_bytes(data, name, max_bytes=max_bytes)
    assert caught.value.source == name
    return caught.value.reason


# --- formats ---------------------------------------------------------------------------------


def test_supported_extensions_are_the_documented_set() -> None:
    assert {".md", ".markdown", ".txt", ".rst", ".html", ".htm", ".pdf", ".docx"} == set(
        SUPPORTED_EXTENSIONS
    )


def test_markdown_keeps_text_and_takes_title_from_first_h1() -> None:
    data = b"Intro line.\n\n# Admin Guide\n\n## Install\n\nRun `make demo`.\n"
    doc = parse_bytes(data, "guide.md", source="/kb/guide.md", max_bytes=LIMIT)
    assert doc.title == "Admin Guide"
    assert doc.format == "md"
    assert doc.source == "/kb/guide.md"
    assert "## Install\n\nRun `make demo`." in doc.text
    assert doc.content_hash == hashlib.sha256(data).hexdigest()
    assert doc.url is None


def test_markdown_setext_headings_and_front_matter() -> None:
    data = (
        b"---\ntitle: 'From Front Matter'\ntags: [a]\n---\n"
        b"Setext Title\n============\n\nBody.\n\nPart two\n--------\n\nMore body.\n"
    )
    doc = parse(data, "page.markdown")
    assert doc.title == "Setext Title"
    assert doc.text.startswith("# Setext Title\n\nBody.")
    assert "## Part two\n\nMore body." in doc.text
    assert "tags:" not in doc.text


def test_markdown_front_matter_title_when_no_h1() -> None:
    doc = parse(b"---\ntitle: Release notes\n---\nSome notes.\n", "notes.md")
    assert doc.title == "Release notes"


def test_markdown_without_title_falls_back_to_file_stem() -> None:
    assert parse(b"just words\n", "faq-answers.md").title == "faq-answers"


def test_text_file_title_is_stem_and_text_kept() -> None:
    doc = parse(b"# not a heading, a comment\nline two\r\nline three\n", "notes.txt")
    assert doc.title == "notes"
    assert doc.format == "txt"
    assert doc.text == "# not a heading, a comment\nline two\nline three"


def test_text_in_legacy_encodings_is_decoded() -> None:
    assert parse("Café crème".encode("cp1252"), "menu.txt").text == "Café crème"
    assert parse("Grüße".encode("utf-16"), "hello.txt").text == "Grüße"
    assert parse("\ufeffBOM text".encode(), "bom.md").text == "BOM text"


def test_rst_headings_become_markdown_headings_in_order_of_appearance() -> None:
    data = b"""=========
 Handbook
=========

Welcome to the handbook.

Install
=======

Run ``pip install avatarbot``.

Tokens
------

Create a token.

Upgrade
=======

Stop first.

.. code-block:: python

    # not a heading
    x = 1
"""
    doc = parse(data, "handbook.rst")
    assert doc.title == "Handbook"
    assert doc.format == "rst"
    lines = doc.text.split("\n")
    assert "# Handbook" in lines
    assert "## Install" in lines
    assert "### Tokens" in lines
    assert "## Upgrade" in lines
    assert "Run `pip install avatarbot`." in lines
    assert "    # not a heading" in lines  # indented code untouched


HTML_PAGE = b"""<!doctype html><html><head><title>Setup | Acme Docs</title></head><body>
<nav><a href="/">Home</a> | <a href="/pricing">Pricing menu entry</a></nav>
<main>
<h1 id="setup">Setup guide</h1>
<p>This guide explains how to set up the Acme bot on your own server in ten minutes.</p>
<h2 id="bot-tokens">Bot tokens <a class="headerlink" href="#bot-tokens">\xc2\xb6</a></h2>
<p>Create a bot token in the admin panel and store it in the environment as ACME_TOKEN.</p>
<h3><a id="rotate-anchor"></a>Rotating tokens</h3>
<p>Rotate tokens every ninety days; the old token stays valid for one more hour.</p>
</main>
<footer>Copyright 2026 Acme Corporation, all rights reserved.</footer>
</body></html>"""


def test_html_main_content_becomes_markdown_with_headings_and_anchors() -> None:
    doc = parse(HTML_PAGE, "setup.html", url="https://docs.example.com/setup.html")
    assert doc.format == "html"
    assert doc.title == "Setup guide"
    assert doc.url == "https://docs.example.com/setup.html"
    assert doc.source == "https://docs.example.com/setup.html"
    assert "# Setup guide {#setup}" in doc.text
    assert "## Bot tokens {#bot-tokens}" in doc.text  # permalink mark dropped
    assert "### Rotating tokens {#rotate-anchor}" in doc.text
    assert "store it in the environment as ACME_TOKEN" in doc.text
    assert "Pricing menu entry" not in doc.text
    assert "Copyright" not in doc.text


def test_html_without_h1_takes_title_from_title_tag() -> None:
    data = b"<html><head><title>Changelog</title></head><body><p>" + b"Fixed things. " * 20
    data += b"</p></body></html>"
    doc = parse(data, "changes.htm")
    assert doc.title == "Changelog"
    assert "Fixed things." in doc.text


def test_pdf_text_title_and_bookmark_headings() -> None:
    doc = parse(handbook_pdf(), "handbook.pdf")
    assert doc.format == "pdf"
    assert doc.title == "Operator Handbook"
    lines = doc.text.split("\n")
    assert "# Installing the bot" in lines
    assert "## Tokens" in lines
    assert "# Upgrading" in lines
    assert "Stop the service before upgrading to a new release." in doc.text


def test_pdf_without_metadata_title_uses_first_chapter_then_stem() -> None:
    assert parse(handbook_pdf(title=""), "x.pdf").title == "Installing the bot"


def test_docx_heading_styles_lists_tables_and_title() -> None:
    doc = parse(policy_docx(), "travel.docx")
    assert doc.format == "docx"
    assert doc.title == "Travel Policy"  # the Title paragraph beats the core property
    lines = doc.text.split("\n")
    assert "# Travel Policy" in lines
    assert "# Booking" in lines
    assert "## Hotels" in lines
    assert "- Hotels up to 150 EUR per night are approved." in lines
    assert "| Berlin | 180 EUR |" in lines


# --- bad input -------------------------------------------------------------------------------


def test_corrupt_pdf_is_refused() -> None:
    assert reason_of(b"%PDF-1.7\n this is not really a pdf \x00\x01", "x.pdf") == (
        "corrupt or unreadable PDF"
    )
    truncated = handbook_pdf()[:300]
    assert reason_of(truncated, "cut.pdf") == "corrupt or unreadable PDF"


def test_encrypted_pdf_is_refused() -> None:
    assert reason_of(encrypted_pdf(), "locked.pdf") == "encrypted PDF"


def test_pdf_without_text_says_so() -> None:
    assert "no extractable text in PDF" in reason_of(blank_pdf(), "scan.pdf")


def test_corrupt_docx_is_refused() -> None:
    assert reason_of(b"PK\x03\x04 not a zip at all", "x.docx") == "corrupt or unreadable DOCX"
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512)
    assert reason_of(ole, "old.docx") == "not a DOCX: old .doc format or password-protected"


def test_binary_content_named_md_is_refused() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    assert reason_of(png, "image.md") == "not text: binary content in a .md file"
    no_nul = bytes(range(1, 32)) * 10 + b"\x81\x8d\x8f"
    assert reason_of(no_nul, "notes.txt") == "not text: binary content in a .txt file"


def test_empty_and_whitespace_only_files_are_refused() -> None:
    assert reason_of(b"", "empty.md") == "empty file"
    assert reason_of(b"  \n\t\r\n  ", "blank.txt") == "empty file"
    assert reason_of(b"", "empty.pdf") == "empty file"


def test_over_the_size_limit_is_refused_before_parsing() -> None:
    data = b"a" * (2 * 1024 + 512)
    assert reason_of(data, "big.md", max_bytes=2 * 1024) == "too large: 2.5 KB > 2 KB limit"


def test_unsupported_extension_is_refused() -> None:
    assert reason_of(b"a,b\n1,2\n", "sheet.xlsx") == "unsupported file type .xlsx"
    assert reason_of(b"data", "Makefile") == "unsupported file type (no extension)"


# --- files on disk ---------------------------------------------------------------------------


def test_load_file_uses_resolved_absolute_path_as_source(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.md").write_text("# FAQ\n\nAsk away.\n")
    relative = Path(os.path.relpath(tmp_path / "kb" / "faq.md"))
    doc = load_file(relative, max_bytes=LIMIT)
    assert doc.source == str((tmp_path / "kb" / "faq.md").resolve())
    assert doc.title == "FAQ"


def test_load_file_refuses_large_file_from_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    with big.open("wb") as handle:  # sparse: 31.2 MB on paper, nothing written
        handle.truncate(int(31.2 * MB))
    with pytest.raises(SourceError) as caught:
        load_file(big, max_bytes=LIMIT)
    assert caught.value.reason == "too large: 31.2 MB > 20 MB limit"
    assert caught.value.source == str(big.resolve())


def test_load_file_bad_inputs_have_reasons(tmp_path: Path) -> None:
    (tmp_path / "report.xlsx").write_bytes(b"PK")
    (tmp_path / "empty.md").write_bytes(b"")
    cases = {
        tmp_path / "report.xlsx": "unsupported file type .xlsx",
        tmp_path / "empty.md": "empty file",
        tmp_path / "missing.md": "no such file or folder",
        tmp_path / "missing-folder": "no such file or folder",
    }
    for path, reason in cases.items():
        with pytest.raises(SourceError) as caught:
            load_file(path, max_bytes=LIMIT)
        assert caught.value.reason == reason


# --- folders ---------------------------------------------------------------------------------


def test_walk_folder_sorted_recursive_with_skips(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.md").write_text("z")
    (tmp_path / "b" / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "c.xlsx").write_text("c")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.md").write_text("secret")
    (tmp_path / ".draft.md").write_text("d")
    results = list(walk_folder(tmp_path))
    assert results == [
        Skipped(str(tmp_path / ".draft.md"), "hidden"),
        Skipped(str(tmp_path / ".git"), "hidden"),
        tmp_path / "a.txt",
        tmp_path / "b" / "a.pdf",
        tmp_path / "b" / "z.md",
        Skipped(str(tmp_path / "c.xlsx"), "unsupported file type .xlsx"),
    ]


def test_walk_folder_survives_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("p")
    (tmp_path / "docs" / "loop").symlink_to(tmp_path)
    (tmp_path / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    results = list(walk_folder(tmp_path))
    assert tmp_path / "docs" / "page.md" in results
    assert Skipped(str(tmp_path / "docs" / "loop"), "folder already visited (symlink loop)") in (
        results
    )
    assert Skipped(str(tmp_path / "dangling.md"), "broken symlink") in results


def test_walk_folder_streams_ten_thousand_files(tmp_path: Path) -> None:
    for part in range(10):
        folder = tmp_path / f"part{part}"
        folder.mkdir()
        for i in range(1000):
            (folder / f"doc{i:04d}.md").write_bytes(b"x")
    walk = walk_folder(tmp_path)
    first = next(walk)  # yields before the whole tree is listed
    assert first == tmp_path / "part0" / "doc0000.md"
    rest = list(walk)
    assert len(rest) + 1 == 10_000
    assert rest[-1] == tmp_path / "part9" / "doc0999.md"
    assert all(isinstance(item, Path) for item in rest)


def test_sphinx_style_page_with_declared_charset() -> None:
    data = (
        '<html><head><meta charset="windows-1252"><title>x</title></head><body>'
        "<nav>Menu</nav><section id='install-it'><h2>Install "
        "<a class='headerlink' href='#install-it'>\u00b6</a></h2>"
        "<p>Caf\u00e9 owners install the bot on a small server in the back office.</p>"
        "</section></body></html>"
    ).encode("cp1252")
    doc = parse(data, "install.html")
    assert doc.text.startswith("## Install {#install-it}\n\nCafé owners install the bot")
