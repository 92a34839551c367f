"""Heading-aware chunking: section paths, deep links, stable ids, sizes, no near-empty chunks."""

from __future__ import annotations

import itertools
import re

import pytest

from knowledge.ingest.chunking import chunk_document, github_slug, index_text
from knowledge.models import Chunk, Document
from knowledge.sources import parse_bytes
from tests.fixtures.documents import DEPLOY_PAGE, handbook_pdf, policy_docx

LIMIT = 10 * 1024 * 1024


def md(text: str, *, url: str | None = None, source: str = "/kb/guide.md") -> Document:
    return parse_bytes(text.encode(), "guide.md", source=source, url=url, max_bytes=LIMIT)


def sentences(n: int, topic: str) -> str:
    return " ".join(f"Sentence {i} explains how {topic} behaves in case {i}." for i in range(n))


GUIDE = f"""# Admin Guide

This guide is for the people who run the bot for their workspace every day. It covers
installing the package, rotating tokens and what to do when something breaks at night.

## Install

{sentences(3, "installing")}

### Linux

{sentences(4, "the Linux package")}

```bash
# not a heading: a shell comment
    indented --flag
```

## Tokens

{sentences(40, "token rotation")}

## Tokens

{sentences(3, "the second token section")}
"""


def by_section(chunks: list[Chunk]) -> dict[str, list[Chunk]]:
    grouped: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        grouped.setdefault(chunk.section, []).append(chunk)
    return grouped


def test_sections_are_heading_paths_without_the_title() -> None:
    chunks = chunk_document(md(GUIDE))
    sections = list(by_section(chunks))
    assert sections == ["", "Install", "Install > Linux", "Tokens"]
    assert all(chunk.title == "Admin Guide" for chunk in chunks)
    intro = by_section(chunks)[""][0]
    assert intro.text.startswith("# Admin Guide\n\nThis guide is for the people")
    assert intro.link is None


def test_headings_and_code_stay_in_the_text_verbatim() -> None:
    linux = by_section(chunk_document(md(GUIDE)))["Install > Linux"][0]
    assert linux.text.startswith("### Linux\n\nSentence 0 explains how the Linux package")
    assert "```bash\n# not a heading: a shell comment\n    indented --flag\n```" in linux.text


def test_url_documents_link_to_github_style_anchors() -> None:
    doc = md(GUIDE, url="https://docs.example.com/admin.md#old-fragment")
    chunks = chunk_document(doc)
    links: dict[str, str | None] = {}
    for chunk in chunks:
        links.setdefault(chunk.section, chunk.link)
    assert links[""] == "https://docs.example.com/admin.md"
    assert links["Install"] == "https://docs.example.com/admin.md#install"
    assert links["Install > Linux"] == "https://docs.example.com/admin.md#linux"
    assert links["Tokens"] == "https://docs.example.com/admin.md#tokens"
    second = [c for c in chunks if "second token section" in c.text]
    assert second[0].link == "https://docs.example.com/admin.md#tokens-1"  # numbered repeat


def test_html_documents_link_to_the_pages_own_ids() -> None:
    doc = parse_bytes(
        DEPLOY_PAGE, "deploy.html", url="https://docs.example.com/deploy", max_bytes=LIMIT
    )
    chunks = chunk_document(doc, min_section_chars=0)
    assert [(c.section, c.link) for c in chunks] == [
        ("", "https://docs.example.com/deploy"),
        ("HTTP mode", "https://docs.example.com/deploy#http-mode"),
    ]
    assert all("{#" not in chunk.text for chunk in chunks)


def test_file_documents_have_no_links() -> None:
    assert all(chunk.link is None for chunk in chunk_document(md(GUIDE)))


def test_ids_are_deterministic_and_scoped_by_datasource_and_source() -> None:
    first = chunk_document(md(GUIDE))
    again = chunk_document(md(GUIDE))
    assert [c.id for c in first] == [c.id for c in again]
    assert [c.ordinal for c in first] == list(range(len(first)))
    assert all(re.fullmatch(r"[0-9a-f]{16}-\d+", c.id) for c in first)
    assert all(c.id.endswith(f"-{c.ordinal}") for c in first)
    assert len({c.id for c in first}) == len(first)
    other_ds = chunk_document(md(GUIDE), datasource="hr")
    other_src = chunk_document(md(GUIDE, source="/kb/other.md"))
    assert not {c.id for c in first} & {c.id for c in other_ds}
    assert not {c.id for c in first} & {c.id for c in other_src}
    assert all(c.datasource == "hr" for c in other_ds)


def test_chunks_carry_the_document_identity() -> None:
    doc = md(GUIDE)
    for chunk in chunk_document(doc):
        assert (chunk.source, chunk.title, chunk.content_hash) == (
            doc.source,
            doc.title,
            doc.content_hash,
        )


@pytest.mark.parametrize(("size", "overlap"), [(1000, 150), (300, 60), (200, 0)])
def test_size_limit_respected_and_long_sections_overlap(size: int, overlap: int) -> None:
    chunks = chunk_document(md(GUIDE), chunk_size=size, chunk_overlap=overlap)
    assert all(0 < len(chunk.text) <= size for chunk in chunks)
    assert all(chunk.text.strip() == chunk.text for chunk in chunks)
    tokens = by_section(chunks)["Tokens"]
    assert len(tokens) >= 2
    pairs = list(itertools.pairwise(tokens))
    shared = [_shared_text(a.text, b.text) for a, b in pairs]
    if overlap:
        assert all(0 < n <= overlap for n in shared[:-1])  # consecutive pieces overlap
    else:
        assert not any(shared)


def _shared_text(previous: str, following: str) -> int:
    for size in range(min(len(previous), len(following)), 0, -1):
        if previous.endswith(following[:size]):
            return size
    return 0


def test_no_text_is_lost() -> None:
    chunks = chunk_document(md(GUIDE), chunk_size=300, chunk_overlap=50)
    joined = "\n".join(chunk.text for chunk in chunks)
    for sentence in re.findall(r"Sentence \d+ explains how [^.]+\.", GUIDE):
        assert sentence in joined


def test_tiny_sections_are_merged_forward_not_emitted_alone() -> None:
    text = f"""# Handbook

## Support
Ask in #help.

## Escalation

{sentences(6, "escalation")}

## Contacts
See the wiki.
"""
    chunks = chunk_document(md(text), chunk_size=500, chunk_overlap=50)
    assert all(len(chunk.text) > 60 for chunk in chunks)
    assert not any(chunk.text.strip() in {"## Support", "Ask in #help."} for chunk in chunks)
    first = next(chunk for chunk in chunks if "Ask in #help." in chunk.text)
    assert first.section == "Escalation"  # the bulk of the merged chunk
    assert "## Support\nAsk in #help.\n\n## Escalation" in first.text
    last = next(chunk for chunk in chunks if "See the wiki." in chunk.text)
    assert "## Contacts\nSee the wiki." in last.text  # folded back into the last section


def test_heading_and_one_line_before_a_long_paragraph_is_not_a_scrap() -> None:
    text = "# T\n\n## Rotation\n\nShort intro.\n\n" + "Rotate tokens every month. " * 60
    chunks = chunk_document(md(text), chunk_size=500, chunk_overlap=50)
    assert chunks[0].text.startswith("# T\n\n## Rotation\n\nShort intro.\n\nRotate tokens")
    assert chunks[0].section == "Rotation"
    assert all(len(chunk.text) <= 500 for chunk in chunks)
    assert all(len(chunk.text) >= 60 for chunk in chunks)


def test_plain_text_without_headings_chunks_by_paragraph() -> None:
    paragraphs = [sentences(5, f"topic {n}") for n in range(6)]
    text = "# not a heading in a .txt\n\n" + "\n\n".join(paragraphs)
    doc = parse_bytes(text.encode(), "notes.txt", max_bytes=LIMIT)
    chunks = chunk_document(doc, chunk_size=700, chunk_overlap=100)
    assert len(chunks) >= 3
    assert all(chunk.section == "" and chunk.title == "notes" for chunk in chunks)
    assert all(len(chunk.text) <= 700 for chunk in chunks)
    assert chunks[0].text.startswith("# not a heading in a .txt")
    for paragraph in paragraphs:  # paragraphs are split at their own boundaries
        assert any(paragraph in chunk.text for chunk in chunks)


def test_whitespace_only_content_gives_no_chunks() -> None:
    doc = Document(source="s", title="t", text="\n\n   \n", format="md", content_hash="h")
    assert chunk_document(doc) == []


def test_parsed_formats_keep_their_structure() -> None:
    pdf = parse_bytes(handbook_pdf(), "handbook.pdf", max_bytes=LIMIT)
    assert {c.section for c in chunk_document(pdf, min_section_chars=0)} == {
        "Installing the bot",
        "Installing the bot > Tokens",
        "Upgrading",
    }
    docx = parse_bytes(policy_docx(), "travel.docx", max_bytes=LIMIT)
    hotels = [c for c in chunk_document(docx, min_section_chars=0) if "150 EUR" in c.text]
    assert hotels[0].section == "Booking > Hotels"
    rst = parse_bytes(
        b"Guide\n=====\n\nIntro.\n\nSetup\n-----\n\nDo the setup.\n", "g.rst", max_bytes=LIMIT
    )
    assert [c.section for c in chunk_document(rst, min_section_chars=0)] == ["", "Setup"]


def test_index_text_puts_title_and_section_first() -> None:
    chunk = by_section(chunk_document(md(GUIDE)))["Install > Linux"][0]
    assert index_text(chunk).startswith("Admin Guide\nInstall > Linux\n\n### Linux\n")
    intro = chunk_document(md(GUIDE))[0]
    assert index_text(intro) == f"Admin Guide\n\n{intro.text}"


def test_github_slugs() -> None:
    assert github_slug("Bot tokens") == "bot-tokens"
    assert github_slug("What's new in v2.0?") == "whats-new-in-v20"
    assert github_slug("Setup & run_it") == "setup--run_it"
    assert github_slug("Überblick") == "überblick"


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError):
        chunk_document(md(GUIDE), chunk_size=100, chunk_overlap=100)


def test_unclosed_code_fence_and_form_feeds_lose_nothing() -> None:
    text = "# T\n\nIntro that is long enough to stand on its own as a chunk of text.\n\n"
    text += "## Example\n\n```python\nprint('never closed')\n\nAfter the fence.\fNext page."
    doc = Document(source="s", title="T", text=text, format="md", content_hash="h")
    joined = "\n".join(c.text for c in chunk_document(doc, min_section_chars=0))
    for part in ("Intro that is long", "print('never closed')", "After the fence.", "Next page."):
        assert part in joined


def test_a_heading_repeated_at_the_start_of_its_paragraph_is_kept() -> None:
    # The heading's last word starts the next paragraph: it must not be taken for overlap.
    body = "Latency, in the context of language models, is the time to respond. " * 8
    text = f"# Glossary\n\n## Latency\n\n{body}\n\n## LLM\n\n" + "Large models. " * 30
    doc = Document(source="s", title="Glossary", text=text, format="md", content_hash="h")
    chunks = chunk_document(doc, chunk_size=400, chunk_overlap=50)
    assert "## Latency\n\nLatency, in the context" in chunks[0].text
    joined = " ".join(c.text for c in chunks)
    assert joined.count("Latency, in the context") >= 8
