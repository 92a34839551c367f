"""`avatarbot knowledge …` commands: add (files, folders, URLs, site crawls), sync, list,
remove, base-url, stats, reindex, search.

Every error the knowledge library raises becomes one line via `fail()`; never a traceback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer
from chromadb.errors import ChromaError
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bot.cli.output import console, fail, failures, settings
from bot.wording import count
from knowledge.index import AddReport, KnowledgeBase
from knowledge.models import Hit
from knowledge.sources import UrlPolicy, fetch_urls
from knowledge.sync import SyncReport, crawl_into
from knowledge.sync import sync as sync_sources

app = typer.Typer(no_args_is_help=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Our error types in user words (`bot.failures`), plus a store lost mid-operation."""
    try:
        with failures():
            yield
    except (ChromaError, httpx.HTTPError, ConnectionError) as exc:
        # The store failed mid-operation (e.g. the Chroma server went away).
        fail(f"vector store: {type(exc).__name__}: {str(exc)[:200]}")


def _open() -> KnowledgeBase:
    config = settings().knowledge_config()
    with _errors():
        return KnowledgeBase(config)


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[current]}[/]"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@app.command()
def add(
    inputs: Annotated[
        list[str], typer.Argument(metavar="PATH_OR_URL", help="Files, folders, URLs.")
    ],
    datasource: str = typer.Option("default", "--datasource", help="Datasource to add to."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if already loaded."),
    crawl: bool = typer.Option(
        False, "--crawl", help="Crawl each URL's site (sitemap, same-site links; CRAWL_*)."
    ),
) -> None:
    """Index documents (idempotent: unchanged documents are skipped without work)."""
    kb = _open()
    with _errors():
        if if_empty and not kb.is_empty():
            console.print(
                f"Knowledge base already has {kb.stats().documents} documents; nothing to do."
            )
            return
        urls = [i for i in inputs if i.startswith(("http://", "https://"))]
        paths = [i for i in inputs if i not in urls]
        if crawl:
            if not urls:
                fail("--crawl needs at least one http(s) URL to start from")
            report = asyncio.run(_crawl_all(kb, urls, datasource))
            if paths:
                report.absorb(kb.add(paths, datasource=datasource))
            _print_sync(report)
            if not report.ok:
                raise typer.Exit(1)
            return
        with console.status("Fetching URLs…", spinner="dots") if urls else _nothing():
            policy = UrlPolicy.from_allow_list(kb.config.url_allow_hosts)
            docs, url_skips = asyncio.run(
                fetch_urls(urls, max_bytes=kb.config.max_document_bytes, policy=policy)
            )
        with _progress("Indexing") as bar:
            task = bar.add_task("add", total=None, current="")

            def on_progress(done: int, total: int, source: str) -> None:
                bar.update(task, completed=done, total=total, current=source[-60:])

            report = kb.add([*paths, *docs], datasource=datasource, progress=on_progress)
    report.skipped[:0] = url_skips
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


async def _crawl_all(kb: KnowledgeBase, urls: list[str], datasource: str) -> SyncReport:
    limits = settings().crawl_limits()
    report = SyncReport()
    with _progress("Crawling") as bar:
        for url in urls:
            task = bar.add_task(url, total=None, current="")

            def on_page(done: int, queued: int, page: str, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=queued, current=page[-60:])

            one = await crawl_into(kb, url, datasource=datasource, limits=limits, progress=on_page)
            report.absorb_sync(one)
    return report


@app.command()
def sync(
    datasource: str | None = typer.Option(None, "--datasource", help="Only this datasource."),
) -> None:
    """Check every source again: changed ones re-indexed, vanished ones removed.

    Files are re-hashed, folders walked again, URLs and crawled sites fetched with
    conditional requests (unchanged pages cost a 304); uploads are kept as they are.
    """
    kb = _open()
    with _errors(), console.status("Checking sources…", spinner="dots") as status:
        report = asyncio.run(
            sync_sources(
                kb,
                datasource=datasource,
                limits=settings().crawl_limits(),
                progress=lambda what: status.update(f"Checking {escape(what[-70:])}"),
            )
        )
    _print_sync(report)
    if not report.ok and report.skipped:
        raise typer.Exit(1)


def _print_lines(report: AddReport | SyncReport) -> None:
    # One line per input, the path whole (a table would fold it mid-word), then the reason.
    for status, sources in (
        ("added", report.added),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
    ):
        for source in sources:
            console.out(f"{status:<9} {source}", highlight=False)
    dropped = [("red", "removed", r) for r in getattr(report, "removed", [])]
    for colour, status, skip in [*dropped, *(("yellow", "skipped", r) for r in report.skipped)]:
        console.print(
            f"[{colour}]{status}[/]   {escape(skip.source)}  [dim]({escape(skip.reason)})[/]",
            highlight=False,
            soft_wrap=True,
        )


def _print_sync(report: SyncReport) -> None:
    _print_lines(report)
    for crawl in report.crawls:
        how = "sitemap and links" if crawl.used_sitemap else "links"
        cut = f"; stopped early: {crawl.stopped}" if crawl.stopped else ""
        console.print(
            f"crawled {escape(crawl.start)} by {how}: {count(crawl.requests, 'request')}, "
            f"{crawl.bytes / 1024 / 1024:.1f} MB{cut}",
            highlight=False,
        )
    console.print(
        f"added {len(report.added)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, removed {len(report.removed)}, "
        f"skipped {len(report.skipped)}; {count(report.chunks, 'chunk')} written"
    )


def _print_report(report: AddReport) -> None:
    _print_lines(report)
    console.print(
        f"added {len(report.added)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, skipped {len(report.skipped)}; "
        f"{count(report.chunks, 'chunk')} written"
    )


@app.command("list")
def list_documents(
    datasource: str | None = typer.Option(None, "--datasource", help="Only this datasource."),
    as_json: bool = typer.Option(False, "--json", help="One JSON array."),
) -> None:
    """List indexed documents."""
    with _errors():
        docs = _open().list_documents(datasource)
    if as_json:
        print(json.dumps([d.as_json() for d in docs], indent=2))
        return
    # Not a table: a table folds long paths mid-word, and a path must stay whole to be
    # copied into `avatarbot knowledge remove`. The path on its own line, the rest below.
    for d in docs:
        added = datetime.fromtimestamp(d.added_at, UTC).strftime("%Y-%m-%d %H:%M")
        console.out(d.source, highlight=False)
        details = f"  {d.datasource} · {d.title} · {count(d.chunks, 'chunk')} · added {added}"
        console.print(f"[dim]{escape(details)}[/]", highlight=False, soft_wrap=True)
    console.print(count(len(docs), "document"))


@app.command()
def remove(
    sources: Annotated[
        list[str] | None, typer.Argument(metavar="SOURCE", help="Paths or URLs.")
    ] = None,
    datasource: str | None = typer.Option(None, "--datasource", help="Remove a datasource."),
) -> None:
    """Remove documents by source, or a whole datasource."""
    if not sources and not datasource:
        fail("give SOURCE... to remove, or --datasource NAME")
    kb = _open()
    with _errors():
        if sources:
            removed = kb.remove(sources, datasource=datasource)
        else:
            removed = kb.remove_datasource(datasource or "")
    for source in removed:
        console.print(f"removed {escape(source)}")
    if not removed:
        fail("nothing matched: " + (", ".join(sources) if sources else f"datasource {datasource}"))


@app.command("base-url")
def base_url(
    datasource: Annotated[str, typer.Argument(help="The datasource whose files to link.")],
    url: Annotated[str, typer.Argument(help="Where they are published, or 'off'.")],
    root: str | None = typer.Option(
        None, "--root", help="The local folder URL maps to (default: the files' common folder)."
    ),
) -> None:
    """Link a datasource's files from disk to where they are published (e.g. a handbook
    site or `https://github.com/acme/handbook/blob/main/`): a source's link becomes URL +
    its path under ROOT + the section anchor. Without it, files are cited by title alone."""
    kb = _open()
    with _errors():
        if datasource not in kb.stats().datasources:
            fail(f"no datasource called {datasource!r}; `avatarbot knowledge stats` lists them")
        off = url.lower() == "off"
        used = kb.set_base_url(datasource, "" if off else url, root=root)
    if off:
        console.print(f"files of {escape(datasource)} are cited by title alone")
    else:
        console.print(f"files of {escape(datasource)} under {escape(used)} link to {escape(url)}")


@app.command()
def stats(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Documents, chunks, datasources and the embedding in use."""
    with _errors():
        s = _open().stats()
    if as_json:
        print(json.dumps(s.__dict__))
        return
    console.print(f"documents   {s.documents}\nchunks      {s.chunks}\nembedding   {s.embedding}")
    for name, documents in sorted(s.datasources.items()):
        console.print(f"datasource  {escape(name)} ({count(documents, 'document')})")


@app.command()
def reindex() -> None:
    """Rebuild every vector with the configured EMBEDDINGS."""
    kb = _open()
    with _errors(), _progress("Re-embedding") as bar:
        task = bar.add_task("reindex", total=None, current="")
        done = kb.reindex(lambda done, total, _: bar.update(task, completed=done, total=total))
    console.print(f"re-indexed {count(done, 'chunk')} with embeddings '{kb.embedding_name}'")


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "-k", min=1, max=100, help="How many passages."),
    datasource: Annotated[
        list[str] | None, typer.Option("--datasource", help="Repeatable.")
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="One JSON array."),
) -> None:
    """Search the knowledge base (dense + BM25, fused)."""
    with _errors():
        hits = _open().search(query, k=k, datasources=datasource or None)
    if as_json:
        print(json.dumps([_hit_json(h) for h in hits], indent=2))
        return
    if not hits:
        console.print("no results")
        return
    for rank, hit in enumerate(hits, start=1):
        console.print(
            f"[bold]{rank}. {escape(hit.citation)}[/]  "
            f"[dim]score {hit.score:.4f} · relevance {hit.relevance:.2f}[/]"
        )
        snippet = " ".join(hit.chunk.text.split())
        console.print("   " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")))


def _hit_json(hit: Hit) -> dict[str, object]:
    c = hit.chunk
    return {
        "source": c.source,
        "title": c.title,
        "section": c.section,
        "link": c.link,
        "datasource": c.datasource,
        "score": hit.score,
        "relevance": hit.relevance,
        "dense_score": hit.dense_score,
        "lexical_score": hit.lexical_score,
        "text": c.text,
    }
