"""Site crawls: throughput, and what a no-change `knowledge sync` costs against a re-crawl.

A docs site of HTML pages grown from the eval corpus (bench.corpus) is served with ETags by a
separate process on loopback; every page links to the index and its neighbours, and the
site has a sitemap. In one run, with the default settings (onnx-minilm embeddings):

1. crawl + index: `crawl_into` on an empty knowledge base (fetch, parse, chunk, embed, write);
2. full re-crawl: every page downloaded and parsed again, unconditionally (what a crawler
   without validators does); the writer finds each page unchanged by its hash;
3. no-change sync: `knowledge sync`, every page a conditional request answered 304.

Figures: pages/s for 1, seconds for 2 and 3, and the ratio 2/3 (same site, same run).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import multiprocessing
import resource
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import synthesize


def _page(title: str, text: str, links: list[str]) -> str:
    blocks = []
    for block in text.split("\n\n"):
        block = block.strip()
        if block.startswith("#"):
            level = min(len(block) - len(block.lstrip("#")), 6)
            blocks.append(f"<h{level}>{html.escape(block.lstrip('#').strip())}</h{level}>")
        elif block:
            blocks.append(f"<p>{html.escape(block)}</p>")
    nav = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body><article>"
        f"{''.join(blocks)}</article><nav>{nav}</nav></body></html>"
    )


def build_site(folder: Path, copies: int) -> dict[str, str]:
    files = synthesize(folder, copies)
    names = [f.stem + ".html" for f in files]
    pages = {"/docs/": _page("Docs", "All pages.", names)}
    for i, (path, name) in enumerate(zip(files, names, strict=True)):
        near = [names[(i + 1) % len(names)], names[i - 1], "/docs/"]
        pages[f"/docs/{name}"] = _page(path.stem, path.read_text(encoding="utf-8"), near)
    return pages


def _serve(pages: dict[str, str], port: int, ready: Any) -> None:
    from aiohttp import web

    tags = {p: '"' + hashlib.sha256(b.encode()).hexdigest()[:20] + '"' for p, b in pages.items()}

    async def page(request: web.Request) -> web.Response:
        body = pages.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        etag = tags[request.path]
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(text=body, content_type="text/html", headers={"ETag": etag})

    async def sitemap(request: web.Request) -> web.Response:
        base = f"http://127.0.0.1:{port}"
        locs = "".join(f"<url><loc>{base}{p}</loc></url>" for p in pages)
        xml = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        return web.Response(text=xml, content_type="application/xml")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/sitemap.xml", sitemap)
        app.router.add_get("/{path:.*}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _measure(base: str, data: Path, pages: int) -> dict[str, float]:
    from knowledge.config import KnowledgeConfig
    from knowledge.index import KnowledgeBase
    from knowledge.sources import UrlPolicy
    from knowledge.sources.crawl import CrawlLimits, crawl_site
    from knowledge.sync import crawl_into, sync

    kb = KnowledgeBase(KnowledgeConfig(data_dir=data, url_allow_hosts=("127.0.0.1",)))
    limits = CrawlLimits(max_pages=pages + 10, max_depth=3, concurrency=4)
    start = f"{base}/docs/"
    t = time.perf_counter()
    first = await crawl_into(kb, start, limits=limits)
    index_s = time.perf_counter() - t

    t = time.perf_counter()
    again = await crawl_site(
        start,
        limits=limits,
        policy=UrlPolicy(allowed_networks=("127.0.0.1/32",)),
        max_document_bytes=kb.config.max_document_bytes,
    )
    recrawl = await kb.aadd(again.documents)
    recrawl_s = time.perf_counter() - t

    t = time.perf_counter()
    quiet = await sync(kb, limits=limits)
    sync_s = time.perf_counter() - t
    assert not recrawl.added and not recrawl.updated, "a re-crawl changed pages"
    assert not quiet.added and not quiet.updated and not quiet.removed, "a sync changed pages"
    return {
        "pages": len(first.added),
        "chunks": first.chunks,
        "index_s": index_s,
        "recrawl_s": recrawl_s,
        "recrawl_mb": again.bytes / 1024 / 1024,
        "sync_s": sync_s,
        "sync_unchanged": len(quiet.unchanged),
    }


def run(quick: bool = False) -> dict[str, float]:
    copies = 2 if quick else 6
    with tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
        pages = build_site(Path(tmp) / "site", copies)
        port = _free_port()
        ready = multiprocessing.get_context("spawn").Event()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(pages, port, ready), daemon=True
        )
        server.start()
        try:
            if not ready.wait(30):
                raise SystemExit("the bench site did not start")
            figures = asyncio.run(
                _measure(f"http://127.0.0.1:{port}", Path(tmp) / "data", len(pages))
            )
        finally:
            server.terminate()
            server.join(5)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n== crawl: a docs site on loopback, default settings (onnx-minilm) ==")
    print(f"site: {figures['pages']} pages, {figures['chunks']} chunks")
    print(
        f"crawl + index          {figures['index_s']:7.2f} s   "
        f"{figures['pages'] / figures['index_s']:6.1f} pages/s"
    )
    print(
        f"full re-crawl          {figures['recrawl_s']:7.2f} s   "
        f"{figures['recrawl_mb']:.1f} MB downloaded and parsed again"
    )
    print(
        f"no-change sync         {figures['sync_s']:7.2f} s   "
        f"{figures['sync_unchanged']} pages answered 304"
    )
    print(f"re-crawl / sync        {figures['recrawl_s'] / figures['sync_s']:7.1f}x")
    print(f"bench process max RSS  {rss:7.0f} MB (getrusage)")
    return figures
