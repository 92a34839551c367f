"""HTML -> markdown: the page's main content with its headings, anchored to the page's ids.

trafilatura finds the main content (dropping navigation, footers, cookie banners) and writes
markdown; markdownify over the body is the fallback when it finds nothing. Heading ids from
the page are kept as `{#id}` after the heading so deep links use the page's real anchors.
"""

from __future__ import annotations

import re

import trafilatura
from bs4 import BeautifulSoup, Tag
from markdownify import markdownify

_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*$")
# Permalink marks that docs generators put at the end of headings (Sphinx, mkdocs).
_PERMALINK = re.compile(r"\s*[¶§#🔗]+\s*$")
_ESCAPED = re.compile(r"\\([_*\[\]])")
# What an anchor taken from the page may hold (HTML ids in practice: letters, digits and
# `-_.:`); any other id is not trusted as a link target and the heading's slug is used instead.
_SAFE_ANCHOR = re.compile(r"[A-Za-z0-9][\w.:-]{0,127}")
_NOISE = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg"]


def html_to_markdown(html: str) -> tuple[str, str | None]:
    """(markdown, the page <title> if any)."""
    soup = BeautifulSoup(html, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    anchors = _heading_anchors(soup)
    _drop_permalinks(soup)
    markdown = trafilatura.extract(
        str(soup),
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        deduplicate=False,
    )
    if not markdown or not markdown.strip() or _lost_headings(markdown, soup):
        markdown = _markdownify_body(soup)
    return _tidy_markdown(markdown, anchors), title or None


def _drop_permalinks(soup: BeautifulSoup) -> None:
    """Remove the '¶' links docs generators add to headings: extractors trip over them."""
    for heading in soup.find_all(_HEADINGS):
        for link in heading.find_all("a"):
            if not _PERMALINK.sub("", link.get_text(strip=True)):
                link.decompose()


def _lost_headings(markdown: str, soup: BeautifulSoup) -> bool:
    """trafilatura sometimes falls back to a flat text on short pages; headings are what the
    chunker needs, so a page that has headings must keep some."""
    has_markdown_headings = any(_ATX.match(line) for line in markdown.split("\n"))
    return not has_markdown_headings and soup.find(_HEADINGS) is not None


def _heading_anchors(soup: BeautifulSoup) -> dict[str, str]:
    """Heading text -> the id a link can target (the heading's, or an anchor inside it)."""
    anchors: dict[str, str] = {}
    for heading in soup.find_all(_HEADINGS):
        anchor = heading.get("id")
        if not anchor:
            inner = heading.find(lambda tag: tag.has_attr("id") or tag.has_attr("name"))
            if isinstance(inner, Tag):
                anchor = inner.get("id") or inner.get("name")
        if not anchor:
            # Sphinx and others put the id on the <section> the heading opens.
            parent = heading.parent
            if isinstance(parent, Tag) and parent.find(True) is heading:
                anchor = parent.get("id")
        text = _norm(heading.get_text(" ", strip=True))
        if isinstance(anchor, str) and anchor and text and text not in anchors:
            anchors[text] = anchor
    return anchors


def _markdownify_body(soup: BeautifulSoup) -> str:
    for tag in soup.find_all(_NOISE):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    return markdownify(str(root), heading_style="ATX", strip=["a", "img"])


def _tidy_markdown(markdown: str, anchors: dict[str, str]) -> str:
    lines = markdown.split("\n")
    in_fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence:
            continue
        # Extractors escape `_` and `*` for markdown; people (and BM25) read ACME_TOKEN.
        line = lines[i] = _ESCAPED.sub(r"\1", line)
        match = _ATX.match(line)
        if not match:
            continue
        heading = _PERMALINK.sub("", match.group(2)) or match.group(2)
        anchor = anchors.get(_norm(heading))
        if anchor and _SAFE_ANCHOR.fullmatch(anchor):
            heading = f"{heading} {{#{anchor}}}"
        lines[i] = f"{match.group(1)} {heading}"
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Markdown inline syntax off a heading: emphasis, code marks, links."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]", "", text)


def _norm(text: str) -> str:
    return " ".join(_PERMALINK.sub("", _plain(text)).split()).casefold()
