"""Sitemaps (sitemaps.org protocol 0.9) and robots.txt (RFC 9309), parsed from fetched bytes.

Fetching stays with the crawler, so every request goes through the SSRF guard: the parsers
here never open a connection. robots.txt is read by Protego (Scrapy's parser, modern
conventions: wildcards, `Allow`, longest match). Sitemaps are read with lxml's XML parser
with entities and network access off; trafilatura's sitemap helper was not used because it
drops IP-address hosts and insists on fetching through its own, unguarded client.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from lxml import etree
from protego import Protego

from knowledge.sources.errors import SourceError
from knowledge.sources.limits import check_declared_size

_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
# A sitemap holds at most 50,000 URLs (sitemaps.org); more is a sitemap that lies.
MAX_SITEMAP_URLS = 50_000


@dataclass(frozen=True)
class SitemapEntries:
    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)  # a sitemap index's children


def parse_sitemap(body: bytes, *, source: str, max_bytes: int) -> SitemapEntries:
    """Page URLs and child sitemaps from a sitemap (XML, gzipped XML, or plain text)."""
    data = _gunzip(body, source=source, max_bytes=max_bytes) if body[:2] == b"\x1f\x8b" else body
    stripped = data.lstrip()
    if not stripped.startswith(b"<"):
        lines = (line.strip() for line in data.decode("utf-8", "replace").splitlines())
        pages = [line for line in lines if line.startswith(("http://", "https://"))]
        return SitemapEntries(pages=pages[:MAX_SITEMAP_URLS])
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, recover=True, dtd_validation=False
    )
    try:
        root = etree.fromstring(stripped, parser)
    except etree.XMLSyntaxError as exc:
        raise SourceError(source, "not a sitemap (malformed XML)") from exc
    if root is None:
        raise SourceError(source, "not a sitemap (empty)")
    tag = etree.QName(root).localname
    if tag not in ("urlset", "sitemapindex"):
        raise SourceError(source, f"not a sitemap (<{tag}>)")
    locs: list[str] = []
    for loc in root.iter(f"{_NS}loc", "loc"):
        text = (loc.text or "").strip()
        if text.startswith(("http://", "https://")):
            locs.append(text)
        if len(locs) >= MAX_SITEMAP_URLS:
            break
    if tag == "sitemapindex":
        return SitemapEntries(sitemaps=locs)
    return SitemapEntries(pages=locs)


def _gunzip(body: bytes, *, source: str, max_bytes: int) -> bytes:
    """A .xml.gz sitemap, inflated to at most max_bytes (a gzip bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise SourceError(source, "not a sitemap (bad gzip data)") from exc
    check_declared_size(len(data), max_bytes=max_bytes, source=source)
    return data


class Robots:
    """What robots.txt lets us fetch. No file (4xx) allows everything; a server error or no
    answer disallows everything (RFC 9309 section 2.3.1.4)."""

    def __init__(self, text: str | None, *, user_agent: str) -> None:
        self._rules = Protego.parse(text) if text is not None else None
        self._agent = user_agent

    @classmethod
    def allow_all(cls, *, user_agent: str) -> Robots:
        return cls("", user_agent=user_agent)

    @classmethod
    def disallow_all(cls, *, user_agent: str) -> Robots:
        return cls(None, user_agent=user_agent)

    def allowed(self, url: str) -> bool:
        return self._rules is not None and bool(self._rules.can_fetch(url, self._agent))

    @property
    def crawl_delay(self) -> float:
        delay = self._rules.crawl_delay(self._agent) if self._rules is not None else None
        return float(delay or 0.0)

    @property
    def sitemaps(self) -> list[str]:
        return list(self._rules.sitemaps) if self._rules is not None else []
