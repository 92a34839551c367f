"""A bounded, polite crawl of one docs site: its sitemap and its same-site links.

    report = await crawl_site("https://docs.example.com/handbook/", limits=CrawlLimits(),
                              policy=policy, max_document_bytes=20 << 20, known=known)

- Scope: the start URL's scheme, host and port, under the start URL's folder
  (`/handbook/` above). Anything else a page or the sitemap names is skipped, so a sitemap
  that lies about which site it belongs to cannot send the crawl elsewhere.
- Order: robots.txt first (Disallow, Crawl-delay and its Sitemap lines), then the sitemap's
  pages (robots.txt's, else `/sitemap.xml`), then the links of every page fetched, breadth
  first; a sitemap that leaves pages out does not hide them from the link walk.
- Bounds: depth, pages, total bytes and wall time (`CrawlLimits`); each page is also capped
  at the per-document size, so a page that grows without end costs that much and no more.
  A crawl cut short by a bound says so (`complete=False`), and a sync then removes nothing
  it did not reach.
- Every request, robots.txt and sitemaps included, goes through the SSRF guard
  (`open_session(policy)`), redirect hops too.
- `known` holds what an earlier crawl stored per page (ETag, Last-Modified, its links):
  unchanged pages answer 304 to a conditional request and the crawl goes on from the links
  it kept, so a no-change sync downloads and parses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import aiohttp
from lxml import etree
from lxml import html as lxml_html
from yarl import URL

from knowledge.models import Document, Origin, OriginKind
from knowledge.sources.errors import HttpStatusError, Skipped, SourceError
from knowledge.sources.sitemaps import Robots, parse_sitemap
from knowledge.sources.urlguard import UrlPolicy
from knowledge.sources.web import USER_AGENT, Fetched, fetch_raw, open_session, parse_fetched

# Kept per page so a crawl can go on from a 304 (links are stored with the document).
MAX_LINKS_KEPT = 500
MAX_SITEMAPS = 20
MAX_ROBOTS_BYTES = 512 * 1024  # Google reads the first 500 KiB of a robots.txt
MAX_CRAWL_DELAY = 10.0  # a robots.txt asking for more is obeyed at this pace
_NOT_PAGES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".webp",
        ".ico",
        ".bmp",
        ".css",
        ".js",
        ".mjs",
        ".json",
        ".xml",
        ".zip",
        ".gz",
        ".tgz",
        ".tar",
        ".mp3",
        ".mp4",
        ".webm",
        ".mov",
        ".avi",
        ".woff",
        ".woff2",
        ".ttf",
        ".eot",
        ".otf",
        ".exe",
        ".dmg",
        ".iso",
    ]
)


@dataclass(frozen=True)
class CrawlLimits:
    max_pages: int = 200  # requests for pages (sitemaps and robots.txt not counted)
    max_depth: int = 5  # link hops from the start URL (sitemap pages count as one hop)
    max_bytes: int = 100 * 1024 * 1024  # all page bodies together
    max_seconds: float = 600.0
    concurrency: int = 4
    page_timeout: float = 20.0


@dataclass(frozen=True)
class KnownPage:
    """What the last crawl stored for a page: the validators and the links it had."""

    etag: str = ""
    last_modified: str = ""
    links: tuple[str, ...] = ()


@dataclass
class CrawlReport:
    start: str
    documents: list[Document] = field(default_factory=list)  # new or changed pages
    unchanged: list[str] = field(default_factory=list)  # answered 304
    gone: list[str] = field(default_factory=list)  # answered 404/410
    skipped: list[Skipped] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)  # in-scope pages that answered
    start_reached: bool = False  # the start page answered (the site is up)
    complete: bool = True
    stopped: str = ""  # which bound cut the crawl short
    used_sitemap: bool = False
    requests: int = 0
    bytes: int = 0


Progress = Callable[[int, int, str], None]  # (pages done, pages queued, current URL)


class _Scope:
    def __init__(self, start: URL) -> None:
        self.origin = start.origin()
        path = start.path
        self.prefix = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"

    def __contains__(self, url: URL) -> bool:
        return url.origin() == self.origin and url.path.startswith(self.prefix)


def normalise(url: URL) -> URL:
    """One spelling per page: no fragment, no credentials, `/` for an empty path."""
    url = url.with_fragment(None).with_user(None).with_password(None)
    return url.with_path("/") if not url.path else url


def start_url(raw: str) -> URL:
    """The crawl's start URL, or SourceError when it is not an absolute http(s) URL."""
    try:
        url = URL(raw.strip())
    except ValueError as exc:
        raise SourceError(raw, "invalid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise SourceError(raw, "a crawl starts from an http(s) URL")
    return normalise(url)


async def crawl_site(
    start: str,
    *,
    limits: CrawlLimits,
    policy: UrlPolicy,
    max_document_bytes: int,
    known: dict[str, KnownPage] | None = None,
    progress: Progress | None = None,
    session: aiohttp.ClientSession | None = None,
) -> CrawlReport:
    """Crawl one site; never raises for a page (each failure is a Skipped with a reason).

    Raises SourceError only when the start URL itself is unusable.
    """
    first = start_url(start)
    crawl = _Crawl(first, limits, policy, max_document_bytes, known or {}, progress)
    own = session is None
    active = session or open_session(policy)
    try:
        try:
            async with asyncio.timeout(limits.max_seconds):
                await crawl.run(active)
        except TimeoutError:
            crawl.stop(f"time limit ({limits.max_seconds:g} s)")
    finally:
        if own:
            await active.close()
    return crawl.report


class _Crawl:
    def __init__(
        self,
        first: URL,
        limits: CrawlLimits,
        policy: UrlPolicy,
        max_document_bytes: int,
        known: dict[str, KnownPage],
        progress: Progress | None,
    ) -> None:
        self.first = first
        self.scope = _Scope(first)
        self.limits = limits
        self.policy = policy
        self.max_document_bytes = max_document_bytes
        self.known = known
        self.progress = progress
        self.origin = Origin(kind=OriginKind.CRAWL, root=str(first))
        self.report = CrawlReport(start=str(first))
        self.robots = Robots.allow_all(user_agent=USER_AGENT)
        self.queue: asyncio.Queue[tuple[URL, int]] = asyncio.Queue()
        self.queued: set[str] = set()  # every URL seen, in scope or not
        self.pages: set[str] = set()  # the pages put in the queue (bounded by max_pages)
        self.done = 0
        self._pace = asyncio.Lock()
        self._last_request = 0.0

    def stop(self, why: str) -> None:
        if self.report.complete:
            self.report.complete = False
            self.report.stopped = why

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.robots = await self._robots(session)
        self._enqueue(self.first, 0, referrer="")
        for page in await self._sitemap_pages(session):
            self._enqueue(page, 1, referrer="the sitemap")
        workers = [
            asyncio.create_task(self._worker(session)) for _ in range(self.limits.concurrency)
        ]
        try:
            await self.queue.join()
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    # --- the frontier ------------------------------------------------------------------

    def _enqueue(self, url: URL, depth: int, *, referrer: str) -> None:
        url = normalise(url)
        key = str(url)
        if key in self.queued:
            return
        self.queued.add(key)
        if url not in self.scope:
            if referrer == "the sitemap":  # page links off-site are normal; say so only here
                self.report.skipped.append(Skipped(key, "outside the crawled site"))
            return
        if PurePosixPath(url.path).suffix.lower() in _NOT_PAGES:
            return
        if not self.robots.allowed(key):
            self.report.skipped.append(Skipped(key, "disallowed by robots.txt"))
            return
        if depth > self.limits.max_depth:
            self.stop(f"depth limit ({self.limits.max_depth})")
            return
        if len(self.pages) >= self.limits.max_pages:
            self.stop(f"page limit ({self.limits.max_pages})")
            return
        self.pages.add(key)
        self.queue.put_nowait((url, depth))

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while True:
            url, depth = await self.queue.get()
            try:
                await self._visit(session, url, depth)
            finally:
                self.done += 1
                if self.progress:
                    self.progress(self.done, len(self.pages), str(url))
                self.queue.task_done()

    # --- one page ----------------------------------------------------------------------

    async def _visit(self, session: aiohttp.ClientSession, url: URL, depth: int) -> None:
        key = str(url)
        if self.report.bytes >= self.limits.max_bytes:
            self.stop(f"size limit ({self.limits.max_bytes // (1024 * 1024)} MB)")
            self.report.skipped.append(Skipped(key, "not fetched: the crawl's size limit"))
            return
        before = self.known.get(key, KnownPage())
        try:
            fetched = await self._get(session, url, validators=(before.etag, before.last_modified))
        except HttpStatusError as exc:
            if exc.gone:
                self.report.gone.append(key)
            else:
                self.report.skipped.append(Skipped(key, exc.reason))
            return
        except SourceError as exc:
            self.report.skipped.append(Skipped(key, exc.reason))
            return
        final = normalise(fetched.url)
        self.report.reached.add(str(final))
        self.report.start_reached |= url == self.first
        if fetched.status == 304:
            self.report.unchanged.append(key)
            links = [URL(link) for link in before.links]
        else:
            self.report.bytes += len(fetched.body)
            try:
                doc, links = await self._parse(fetched, source=str(final))
            except SourceError as exc:
                self.report.skipped.append(Skipped(str(final), exc.reason))
                return
            self.report.documents.append(doc)
        for link in links:
            self._enqueue(link, depth + 1, referrer=str(final))

    async def _parse(self, fetched: Fetched, *, source: str) -> tuple[Document, list[URL]]:
        doc = await parse_fetched(fetched, source=source, max_bytes=self.max_document_bytes)
        links: list[URL] = []
        if fetched.content_type in ("text/html", "application/xhtml+xml"):
            links = await asyncio.to_thread(page_links, fetched.body, fetched.url)
        kept = tuple(dict.fromkeys(str(u) for u in links if normalise(u) in self.scope))
        update = {"origin": self.origin, "links": kept[:MAX_LINKS_KEPT]}
        return doc.model_copy(update=update), links

    async def _get(
        self, session: aiohttp.ClientSession, url: URL, *, validators: tuple[str, str] = ("", "")
    ) -> Fetched:
        """A page: counted against the page limit; redirects only to pages not yet crawled."""
        self.report.requests += 1
        return await self._fetch(
            session, url, self.max_document_bytes, self._redirect_refusal, validators
        )

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        cap: int,
        hop_refusal: Callable[[URL], str | None],
        validators: tuple[str, str] = ("", ""),
    ) -> Fetched:
        await self._wait_turn()
        try:
            async with asyncio.timeout(self.limits.page_timeout):
                return await fetch_raw(
                    session,
                    url,
                    source=str(url),
                    policy=self.policy,
                    max_bytes=cap,
                    validators=validators,
                    hop_refusal=hop_refusal,
                )
        except TimeoutError as exc:
            raise SourceError(str(url), f"timed out after {self.limits.page_timeout:g} s") from exc

    def _redirect_refusal(self, url: URL) -> str | None:
        """A redirect is followed only to a page of the site not already crawled (claimed
        here, so the page is fetched once however many URLs lead to it)."""
        target = normalise(url)
        if target not in self.scope:
            return "redirects outside the crawled site"
        if str(target) in self.pages:
            return f"the same page as {target}"
        self.pages.add(str(target))
        self.queued.add(str(target))
        return None

    def _off_origin(self, url: URL) -> str | None:
        return None if url.origin() == self.scope.origin else "redirects off the crawled site"

    async def _wait_turn(self) -> None:
        """Honour robots.txt's Crawl-delay between request starts (capped)."""
        delay = min(self.robots.crawl_delay, MAX_CRAWL_DELAY)
        if delay <= 0:
            return
        async with self._pace:
            wait = self._last_request + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_request = time.monotonic()

    # --- robots.txt and sitemaps ---------------------------------------------------------

    async def _robots(self, session: aiohttp.ClientSession) -> Robots:
        url = self.first.origin().with_path("/robots.txt")
        try:
            fetched = await self._get_small(session, url, MAX_ROBOTS_BYTES)
        except HttpStatusError as exc:
            if exc.status < 500:
                return Robots.allow_all(user_agent=USER_AGENT)  # no robots.txt: no rules
            self.report.skipped.append(Skipped(str(url), f"{exc.reason}: crawling nothing"))
            return Robots.disallow_all(user_agent=USER_AGENT)
        except SourceError as exc:
            self.report.skipped.append(Skipped(str(url), f"{exc.reason}: crawling nothing"))
            return Robots.disallow_all(user_agent=USER_AGENT)
        return Robots(fetched.body.decode("utf-8", "replace"), user_agent=USER_AGENT)

    async def _sitemap_pages(self, session: aiohttp.ClientSession) -> list[URL]:
        listed = self.robots.sitemaps
        todo = [URL(u) for u in listed] or [self.first.origin().with_path("/sitemap.xml")]
        seen: set[str] = set()
        pages: list[URL] = []
        while todo and len(seen) < MAX_SITEMAPS:
            url = normalise(todo.pop(0))
            if str(url) in seen:
                continue  # a sitemap index that lists itself
            seen.add(str(url))
            if url.origin() != self.scope.origin:
                self.report.skipped.append(Skipped(str(url), "sitemap outside the crawled site"))
                continue
            try:
                fetched = await self._get_small(session, url, self.max_document_bytes)
                entries = await asyncio.to_thread(
                    parse_sitemap, fetched.body, source=str(url), max_bytes=self.max_document_bytes
                )
            except HttpStatusError as exc:
                if listed:  # robots.txt promised it; a missing /sitemap.xml is normal
                    self.report.skipped.append(Skipped(str(url), exc.reason))
                continue
            except SourceError as exc:
                self.report.skipped.append(Skipped(str(url), exc.reason))
                continue
            todo += [URL(u) for u in entries.sitemaps]
            pages += [URL(u) for u in entries.pages]
        self.report.used_sitemap = bool(pages)
        return pages

    async def _get_small(self, session: aiohttp.ClientSession, url: URL, cap: int) -> Fetched:
        """robots.txt or a sitemap: not a page, so not counted; redirects stay on the site."""
        return await self._fetch(session, url, cap, self._off_origin)


def page_links(body: bytes, base: URL) -> list[URL]:
    """The http(s) links of an HTML page, resolved against its <base>; none when the page
    says `nofollow` (<meta name="robots">). Links marked rel="nofollow" are left out."""
    try:
        root = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    for meta in root.iter("meta"):
        name = (meta.get("name") or "").lower()
        if name in ("robots", "avatarbot") and "nofollow" in (meta.get("content") or "").lower():
            return []
    href_base = base
    for tag in root.iter("base"):
        if tag.get("href"):
            with contextlib.suppress(ValueError):
                href_base = base.join(URL(tag.get("href", "")))
            break
    links: list[URL] = []
    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or "nofollow" in (a.get("rel") or "").lower():
            continue
        try:
            link = href_base.join(URL(href))
        except ValueError:
            continue
        if link.scheme in ("http", "https") and link.host:
            links.append(link)
    return links
