"""Site crawls against a loopback docs site: robots.txt, sitemaps that lie, loops, traps,
endless and stalled pages, redirects, and conditional re-fetches (ETag -> 304)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from knowledge.sources import SourceError, UrlPolicy
from knowledge.sources.crawl import CrawlLimits, CrawlReport, KnownPage, crawl_site
from tests.fakes.docs_site import DocsSite
from tests.fakes.server import serve

LOOPBACK_ONLY = UrlPolicy(allowed_networks=("127.0.0.1/32",))
PAGE_CAP = 256 * 1024
FAST = CrawlLimits(page_timeout=1.0, max_seconds=30)


@pytest.fixture
async def site() -> AsyncIterator[DocsSite]:
    docs = DocsSite()
    async with serve(docs.app) as base:
        docs.base = base
        yield docs


async def crawl(site: DocsSite, limits: CrawlLimits = FAST, **kw: object) -> CrawlReport:
    return await crawl_site(
        f"{site.base}/docs/",
        limits=limits,
        policy=LOOPBACK_ONLY,
        max_document_bytes=PAGE_CAP,
        **kw,  # type: ignore[arg-type]
    )


def paths(site: DocsSite, urls: object) -> set[str]:
    return {str(u).removeprefix(site.base) for u in urls}  # type: ignore[attr-defined]


async def test_a_crawl_indexes_the_site_and_says_why_it_left_pages_out(site: DocsSite) -> None:
    report = await crawl(site, CrawlLimits(max_depth=3, page_timeout=1.0, max_seconds=30))
    got = paths(site, (d.source for d in report.documents))
    assert {"/docs/", "/docs/setup.html", "/docs/deploy.html", "/docs/faq.html"} <= got
    assert report.used_sitemap  # the FAQ is linked from the sitemap only
    reasons = {s.source.removeprefix(site.base): s.reason for s in report.skipped}
    assert reasons["/docs/private/salaries.html"] == "disallowed by robots.txt"
    assert reasons["https://elsewhere.example/docs/a.html"] == "outside the crawled site"
    assert reasons["/docs/leaves"] == "redirects outside the crawled site"
    assert "/docs/never-existed.html" in paths(site, report.gone)  # the sitemap lied
    assert site.hits["/docs/private/salaries.html"] == 0  # never requested
    # the loop (setup <-> deploy <-> index) fetched each page once, the redirect to one too
    assert site.bodies["/docs/setup.html"] == 1 and site.bodies["/docs/deploy.html"] == 1
    # the trap stopped at the depth limit, and the report says the crawl was cut short
    assert site.bodies["/docs/trap"] <= 3
    assert not report.complete and "depth" in report.stopped
    doc = next(d for d in report.documents if d.source.endswith("/docs/"))
    assert doc.origin is not None and doc.origin.root == f"{site.base}/docs/"
    assert doc.etag and f"{site.base}/docs/setup.html" in doc.links


async def test_a_page_limit_bounds_the_crawl(site: DocsSite) -> None:
    report = await crawl(site, CrawlLimits(max_pages=3, page_timeout=1.0))
    assert len(report.documents) + len(report.gone) + len(report.skipped) >= 3
    assert report.requests <= 3
    assert not report.complete and report.stopped == "page limit (3)"


async def test_endless_and_stalled_pages_cost_their_caps_and_no_more(site: DocsSite) -> None:
    extra = '<a href="/docs/endless">e</a><a href="/docs/stall">s</a></ul>'
    site.pages["/docs/"] = site.pages["/docs/"].replace("</ul>", extra)
    report = await crawl(site, CrawlLimits(max_depth=1, page_timeout=1.0, max_seconds=30))
    reasons = {s.source.removeprefix(site.base): s.reason for s in report.skipped}
    assert reasons["/docs/endless"].startswith("too large")
    assert reasons["/docs/stall"] == "timed out after 1 s"
    assert any(d.source.endswith("/docs/setup.html") for d in report.documents)


async def test_unchanged_pages_cost_a_conditional_request_and_the_crawl_goes_on(
    site: DocsSite,
) -> None:
    first = await crawl(site, CrawlLimits(max_depth=2, page_timeout=1.0))
    known = {d.source: KnownPage(d.etag, d.last_modified, d.links) for d in first.documents}
    bodies_before = sum(site.bodies[p] for p in site.pages)
    site.pages["/docs/deploy.html"] = site.pages["/docs/deploy.html"].replace("Tuesday", "Friday")
    again = await crawl(site, CrawlLimits(max_depth=2, page_timeout=1.0), known=known)
    changed = paths(site, (d.source for d in again.documents))
    # pages with validators answer 304 unless changed; the trap sends none, so it is fetched
    assert changed - {"/docs/trap/1", "/docs/trap/2"} == {"/docs/deploy.html"}
    assert {"/docs/", "/docs/setup.html", "/docs/faq.html"} <= paths(site, again.unchanged)
    assert sum(site.bodies[p] for p in site.pages) == bodies_before + 1


async def test_robots_txt_that_fails_with_5xx_means_crawl_nothing(site: DocsSite) -> None:
    site.robots = "503"
    report = await crawl(site)
    assert report.documents == [] and not report.start_reached
    assert any("HTTP 503" in s.reason for s in report.skipped)


async def test_without_robots_or_sitemap_the_links_are_followed(site: DocsSite) -> None:
    site.robots = None
    report = await crawl(site, CrawlLimits(max_depth=1, page_timeout=1.0))
    assert not report.used_sitemap
    got = paths(site, (d.source for d in report.documents))
    assert {"/docs/", "/docs/setup.html", "/docs/private/salaries.html"} <= got
    assert "/docs/faq.html" not in got  # linked from nowhere but the sitemap


async def test_the_ssrf_guard_holds_for_every_page() -> None:
    docs = DocsSite()
    async with serve(docs.app) as base:
        docs.base = base
        report = await crawl_site(
            f"{base}/docs/", limits=FAST, policy=UrlPolicy(), max_document_bytes=PAGE_CAP
        )
    assert report.documents == [] and sum(docs.hits.values()) == 0


async def test_a_start_that_is_not_an_http_url_is_refused() -> None:
    for bad in ("ftp://example.com/", "docs/", "http://"):
        with pytest.raises(SourceError):
            await crawl_site(bad, limits=FAST, policy=LOOPBACK_ONLY, max_document_bytes=1)
