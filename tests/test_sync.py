"""`knowledge sync`: each source checked again the way it came in, against a loopback site
and a real folder; changed documents re-indexed, vanished ones removed, nothing else touched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase
from knowledge.models import OriginKind
from knowledge.sources import UrlPolicy, fetch_urls
from knowledge.sources.crawl import CrawlLimits
from knowledge.sync import crawl_into, sync
from tests.fakes.docs_site import DocsSite
from tests.fakes.server import serve

LOOPBACK = "127.0.0.1/32"
LIMITS = CrawlLimits(max_depth=3, page_timeout=1.0, max_seconds=30)


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    return KnowledgeBase(
        KnowledgeConfig(data_dir=tmp_path / "data", embeddings="none", url_allow_hosts=(LOOPBACK,))
    )


@pytest.fixture
async def site() -> AsyncIterator[DocsSite]:
    docs = DocsSite()
    # no trap: a crawl that finishes can tell an unlinked page from one it did not reach
    docs.pages["/docs/"] = docs.pages["/docs/"].replace('href="/docs/trap/1"', 'href="setup.html"')
    async with serve(docs.app) as base:
        docs.base = base
        yield docs


def titles(kb: KnowledgeBase) -> dict[str, str]:
    return {d.source.rsplit("/", 1)[-1] or "index": d.title for d in kb.list_documents()}


async def test_a_crawled_site_stays_in_step_with_the_site(
    kb: KnowledgeBase, site: DocsSite
) -> None:
    added = await crawl_into(kb, f"{site.base}/docs/", limits=LIMITS)
    assert added.crawls[0].complete
    assert {"index", "setup.html", "deploy.html", "faq.html"} <= set(titles(kb))
    assert all(d.origin and d.origin.kind is OriginKind.CRAWL for d in kb.list_documents())

    # nothing changed: every page is a 304, nothing parsed, nothing re-embedded
    bodies = sum(site.bodies.values())
    quiet = await sync(kb, limits=LIMITS)
    assert sum(site.bodies.values()) == bodies
    assert not quiet.added and not quiet.updated and not quiet.removed

    # a page edited, a page deleted, a page no longer linked from anywhere
    site.pages["/docs/deploy.html"] = (
        site.pages["/docs/deploy.html"]
        .replace("<h1>Deploy</h1>", "<h1>Shipping</h1>")
        .replace("<title>Deploy</title>", "<title>Shipping</title>")
    )
    del site.pages["/docs/setup.html"]
    site.sitemap = False  # the FAQ is still served, but nothing links to it any more
    site.pages["/docs/"] = site.pages["/docs/"].replace('href="setup.html"', 'href="deploy.html"')
    report = await sync(kb, limits=LIMITS)
    assert sorted(s.rsplit("/", 1)[-1] for s in report.updated) == ["", "deploy.html"]
    removed = {r.source.rsplit("/", 1)[-1]: r.reason for r in report.removed}
    assert removed["setup.html"] == "the page is gone (HTTP 404/410)"
    assert removed["faq.html"] == "no longer linked from the site"
    assert titles(kb)["deploy.html"] == "Shipping"
    assert "setup.html" not in titles(kb)
    hits = kb.search("When do deploys go out?", k=1)
    assert hits and hits[0].chunk.source.endswith("/docs/deploy.html")


async def test_a_site_that_is_down_loses_nothing(kb: KnowledgeBase, site: DocsSite) -> None:
    await crawl_into(kb, f"{site.base}/docs/", limits=LIMITS)
    before = len(kb.list_documents())
    site.robots = "503"  # RFC 9309: a server error on robots.txt means crawl nothing
    report = await sync(kb, limits=LIMITS)
    assert len(kb.list_documents()) == before and not report.removed


async def test_a_single_url_is_checked_with_a_conditional_request(
    kb: KnowledgeBase, site: DocsSite
) -> None:
    policy = UrlPolicy(allowed_networks=(LOOPBACK,))
    docs, _ = await fetch_urls([f"{site.base}/docs/faq.html"], max_bytes=1 << 20, policy=policy)
    await kb.aadd(docs)
    assert kb.list_documents()[0].origin.kind is OriginKind.URL  # type: ignore[union-attr]
    bodies = site.bodies["/docs/faq.html"]
    assert not (await sync(kb)).updated
    assert site.bodies["/docs/faq.html"] == bodies  # a 304
    del site.pages["/docs/faq.html"]
    report = await sync(kb)
    assert [r.reason for r in report.removed] == ["the page is gone (HTTP 404)"]
    assert kb.list_documents() == []


async def test_a_folder_is_walked_again(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nAsk your manager two weeks ahead.\n")
    (folder / "travel.md").write_text("# Travel\n\nBook trains through the portal.\n")
    single = tmp_path / "policy.md"
    single.write_text("# Policy\n\nBe kind.\n")
    await kb.aadd([folder, single])
    (folder / "leave.md").write_text("# Leave\n\nAsk your manager four weeks ahead.\n")
    (folder / "travel.md").unlink()
    (folder / "expenses.md").write_text("# Expenses\n\nKeep every receipt.\n")
    single.unlink()
    report = await sync(kb)
    assert [Path(s).name for s in report.added] == ["expenses.md"]
    assert [Path(s).name for s in report.updated] == ["leave.md"]
    removed = {Path(r.source).name: r.reason for r in report.removed}
    assert removed == {"travel.md": "no longer in its folder", "policy.md": "the file is gone"}
    again = await sync(kb)
    assert not again.added and not again.updated and not again.removed
