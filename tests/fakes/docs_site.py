"""A docs site on loopback that plays the HTTP parts a crawler meets, the awkward ones too.

- robots.txt (RFC 9309) with a Disallow, and a Sitemap line (or none, or a 503);
- a sitemap index -> a sitemap that lies: an off-site URL, a page that 404s, the index
  listing itself (a loop);
- pages that link in a loop, a trap of endless unique URLs, a page that streams without end,
  a page that stalls, a redirect to another page and one off the site;
- ETag + Last-Modified on every page, answering 304 to a matching conditional request.

Edit `pages` (path -> HTML body) to change or delete a page between crawls; `hits` counts
requests per path and `bodies` the responses that carried a page body (not 304).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from email.utils import formatdate

from aiohttp import web


def page(title: str, body: str, *links: str) -> str:
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>{body}</p><ul>{anchors}</ul></body></html>"
    )


def default_pages() -> dict[str, str]:
    return {
        "/docs/": page(
            "Handbook",
            "Welcome to the handbook of the example company.",
            "setup.html",
            "/docs/deploy.html",
            "/docs/private/salaries.html",
            "https://elsewhere.example/x",
            "/docs/trap/1",
            "/docs/moved",
            "/docs/leaves",
            "mailto:help@example.com",
            "#top",
        ),
        "/docs/setup.html": page(
            "Setup",
            "Install the agent with the installer, then sign in with your work account.",
            "/docs/",
            "deploy.html#step-2",
        ),
        "/docs/deploy.html": page(
            "Deploy",
            "Deploys go out every Tuesday after the release review meeting.",
            "setup.html",
        ),
        "/docs/faq.html": page("FAQ", "Only the sitemap links to the questions page."),
        "/docs/private/salaries.html": page("Salaries", "Robots.txt forbids this page."),
    }


class DocsSite:
    def __init__(self, *, robots: str | None = "default", sitemap: bool = True) -> None:
        self.pages = default_pages()
        self.robots = robots
        self.sitemap = sitemap
        self.hits: Counter[str] = Counter()
        self.bodies: Counter[str] = Counter()
        self.base = ""  # set once served
        self.app = web.Application()
        self.app.router.add_get("/robots.txt", self.robots_txt)
        self.app.router.add_get("/sitemap_index.xml", self.sitemap_index)
        self.app.router.add_get("/sitemap-docs.xml", self.sitemap_docs)
        self.app.router.add_get("/docs/trap/{n}", self.trap)
        self.app.router.add_get("/docs/endless", self.endless)
        self.app.router.add_get("/docs/stall", self.stall)
        self.app.router.add_get("/docs/moved", self.moved)
        self.app.router.add_get("/docs/leaves", self.leaves)
        self.app.router.add_get("/{path:.*}", self.serve_page)

    async def robots_txt(self, request: web.Request) -> web.Response:
        self.hits["/robots.txt"] += 1
        if self.robots is None:
            raise web.HTTPNotFound()
        if self.robots == "503":
            raise web.HTTPServiceUnavailable()
        lines = ["User-agent: *", "Disallow: /docs/private/"]
        if self.sitemap:
            lines.append(f"Sitemap: {self.base}/sitemap_index.xml")
        return web.Response(text="\n".join(lines) + "\n")

    async def sitemap_index(self, request: web.Request) -> web.Response:
        self.hits["/sitemap_index.xml"] += 1
        return _xml(
            "sitemapindex",
            [f"{self.base}/sitemap-docs.xml", f"{self.base}/sitemap_index.xml"],
            item="sitemap",
        )

    async def sitemap_docs(self, request: web.Request) -> web.Response:
        self.hits["/sitemap-docs.xml"] += 1
        listed = [f"{self.base}{p}" for p in self.pages if not p.startswith("/docs/private")]
        lies = [f"{self.base}/docs/never-existed.html", "https://elsewhere.example/docs/a.html"]
        return _xml("urlset", listed + lies, item="url")

    async def serve_page(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        body = self.pages.get(path)
        if body is None:
            raise web.HTTPNotFound()
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
        modified = formatdate(1_700_000_000 + len(body), usegmt=True)
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag, "Last-Modified": modified})
        self.bodies[path] += 1
        return web.Response(
            text=body,
            content_type="text/html",
            headers={"ETag": etag, "Last-Modified": modified},
        )

    async def trap(self, request: web.Request) -> web.Response:
        """A calendar-style trap: every page links to one more, for ever."""
        n = int(request.match_info["n"])
        self.hits["/docs/trap"] += 1
        self.bodies["/docs/trap"] += 1
        text = page(f"Day {n}", f"Nothing happens on day {n}.", f"/docs/trap/{n + 1}")
        return web.Response(text=text, content_type="text/html")

    async def endless(self, request: web.Request) -> web.StreamResponse:
        self.hits["/docs/endless"] += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        try:
            while True:
                await resp.write(b"<p>more and more text</p>" * 400)
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def stall(self, request: web.Request) -> web.Response:
        self.hits["/docs/stall"] += 1
        await asyncio.Event().wait()  # never answers; the crawler's page timeout ends it
        raise AssertionError("unreachable")

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/docs/deploy.html")

    async def leaves(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("https://elsewhere.example/landing")


def _xml(root: str, locs: list[str], *, item: str) -> web.Response:
    ns = "http://www.sitemaps.org/schemas/sitemap/0.9"
    entries = "".join(f"<{item}><loc>{loc}</loc></{item}>" for loc in locs)
    text = f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{ns}">{entries}</{root}>'
    return web.Response(text=text, content_type="application/xml")
