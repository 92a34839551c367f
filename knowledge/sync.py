"""Keeping the knowledge base fresh: crawl a site into it, and re-check every source.

    report = await crawl_into(kb, "https://docs.example.com/", datasource="default")
    report = await sync(kb)                      # or sync(kb, datasource="handbook")

Each document remembers how it came in (`Origin`, stored with it), and `sync` checks each
the cheapest way that origin allows:

| origin | checked by | removed when |
|---|---|---|
| file | re-hashing it (the add's own unchanged check: no parsing, no embedding) | it is gone |
| folder | walking the folder again: new files added, changed ones re-indexed | it left the folder |
| url | a conditional GET (If-None-Match / If-Modified-Since): 304 costs no body | 404 or 410 |
| crawl | crawling the site again, conditionally, page by page | 404/410, or no longer linked |
| upload | nothing: bytes handed over once cannot be fetched again | (never) |
| slack | nothing here: the bot follows the channel's events (and `/knowledge sync`) | by the bot |

Absence is trusted only from a crawl that finished and reached its start page: a site that is
down, or a crawl cut short by a limit, removes nothing it did not see answer 404 or 410.
Documents added before origins were recorded are treated as a file or a URL by their source.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.index import AddReport, DocumentInfo, KnowledgeBase
from knowledge.models import Document, Origin, OriginKind
from knowledge.sources import Skipped, SourceError, UrlPolicy, open_session, walk_folder
from knowledge.sources.crawl import CrawlLimits, CrawlReport, KnownPage, crawl_site
from knowledge.sources.errors import HttpStatusError
from knowledge.sources.web import fetch_raw, parse_fetched

URL_CHECKS_AT_ONCE = 8

Progress = Callable[[str], None]  # one line about what is being checked


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[Skipped] = field(default_factory=list)  # source, and why it went
    skipped: list[Skipped] = field(default_factory=list)  # could not be checked or read
    chunks: int = 0
    crawls: list[CrawlReport] = field(default_factory=list)

    def absorb(self, add: AddReport) -> None:
        self.added += add.added
        self.updated += add.updated
        self.unchanged += add.unchanged
        self.skipped += add.skipped
        self.chunks += add.chunks

    def absorb_sync(self, other: SyncReport) -> None:
        self.absorb(AddReport(other.added, other.updated, other.unchanged, other.skipped))
        self.chunks += other.chunks
        self.removed += other.removed
        self.crawls += other.crawls

    def changes(self) -> list[tuple[str, list[str]]]:
        return [("added", self.added), ("updated", self.updated), ("unchanged", self.unchanged)]

    @property
    def ok(self) -> bool:
        return bool(self.added or self.updated or self.unchanged or self.removed)


@dataclass
class _Plan:
    """What one datasource's sync will hand to add and remove."""

    inputs: list[str | Document] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removals: list[Skipped] = field(default_factory=list)


def origin_of(doc: DocumentInfo) -> Origin:
    if doc.origin is not None:
        return doc.origin
    kind = OriginKind.URL if doc.source.startswith(("http://", "https://")) else OriginKind.FILE
    return Origin(kind=kind, root=doc.source)


async def crawl_into(
    kb: KnowledgeBase,
    start: str,
    *,
    datasource: str = "default",
    limits: CrawlLimits | None = None,
    policy: UrlPolicy | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> SyncReport:
    """Crawl a site and index its pages (pages indexed before are fetched conditionally).

    Raises SourceError when `start` is not a usable http(s) URL.
    """
    policy = policy or UrlPolicy.from_allow_list(kb.config.url_allow_hosts)
    docs = await kb.alist_documents(datasource)
    plan = _Plan()
    report = SyncReport()
    crawl = await _crawl(kb, start, docs, plan, limits, policy, progress, remove_absent=False)
    report.crawls.append(crawl)
    report.skipped += crawl.skipped
    await _apply(kb, datasource, plan, report)
    return report


async def sync(
    kb: KnowledgeBase,
    *,
    datasource: str | None = None,
    limits: CrawlLimits | None = None,
    policy: UrlPolicy | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Re-check every source (of one datasource, or all) and bring the index in line."""
    policy = policy or UrlPolicy.from_allow_list(kb.config.url_allow_hosts)
    report = SyncReport()
    by_datasource: dict[str, list[DocumentInfo]] = defaultdict(list)
    for doc in await kb.alist_documents(datasource):
        by_datasource[doc.datasource].append(doc)
    for name, docs in sorted(by_datasource.items()):
        plan = await _plan(kb, docs, report, limits, policy, progress)
        await _apply(kb, name, plan, report)
    return report


async def _plan(
    kb: KnowledgeBase,
    docs: list[DocumentInfo],
    report: SyncReport,
    limits: CrawlLimits | None,
    policy: UrlPolicy,
    progress: Progress | None,
) -> _Plan:
    plan = _Plan()
    groups: dict[Origin, list[DocumentInfo]] = defaultdict(list)
    for doc in docs:
        groups[origin_of(doc)].append(doc)
    urls: list[DocumentInfo] = []
    for origin, members in groups.items():
        if progress:
            progress(f"{origin.kind.value} {origin.root}")
        if origin.kind is OriginKind.FILE:
            _plan_files(members, plan)
        elif origin.kind is OriginKind.FOLDER:
            await asyncio.to_thread(_plan_folder, origin.root, members, plan)
        elif origin.kind is OriginKind.URL:
            urls += members
        elif origin.kind is OriginKind.CRAWL:
            crawl = await _crawl(kb, origin.root, members, plan, limits, policy, None)
            report.crawls.append(crawl)
            report.skipped += crawl.skipped
        else:
            plan.unchanged += [d.source for d in members]  # uploads, Slack threads: kept
    if urls:
        await _plan_urls(kb, urls, plan, report, policy)
    return plan


def _plan_files(members: list[DocumentInfo], plan: _Plan) -> None:
    for doc in members:
        if Path(doc.source).is_file():
            plan.inputs.append(doc.source)
        else:
            plan.removals.append(Skipped(doc.source, "the file is gone"))


def _plan_folder(root: str, members: list[DocumentInfo], plan: _Plan) -> None:
    folder = Path(root)
    if not folder.is_dir():
        plan.removals += [Skipped(d.source, f"the folder {root} is gone") for d in members]
        return
    present = {
        str(p.resolve() if p.is_symlink() else p)
        for p in walk_folder(folder)
        if isinstance(p, Path)
    }
    plan.inputs.append(root)  # the add walks it again: new files in, changed re-indexed
    plan.removals += [
        Skipped(d.source, "no longer in its folder") for d in members if d.source not in present
    ]


async def _plan_urls(
    kb: KnowledgeBase,
    docs: list[DocumentInfo],
    plan: _Plan,
    report: SyncReport,
    policy: UrlPolicy,
) -> None:
    limit = asyncio.Semaphore(URL_CHECKS_AT_ONCE)
    max_bytes = kb.config.max_document_bytes
    async with open_session(policy) as session:

        async def check(doc: DocumentInfo) -> None:
            async with limit:
                try:
                    fetched = await fetch_raw(
                        session,
                        doc.source,
                        source=doc.source,
                        policy=policy,
                        max_bytes=max_bytes,
                        validators=(doc.etag, doc.last_modified),
                    )
                    if fetched.status == 304:
                        plan.unchanged.append(doc.source)
                        return
                    page = await parse_fetched(fetched, source=doc.source, max_bytes=max_bytes)
                except HttpStatusError as exc:
                    if exc.gone:
                        plan.removals.append(
                            Skipped(doc.source, f"the page is gone ({exc.reason})")
                        )
                    else:
                        report.skipped.append(Skipped(doc.source, f"kept: {exc.reason}"))
                    return
                except SourceError as exc:
                    report.skipped.append(Skipped(doc.source, f"kept: {exc.reason}"))
                    return
                origin = Origin(kind=OriginKind.URL, root=doc.source)
                plan.inputs.append(page.model_copy(update={"origin": origin}))

        await asyncio.gather(*(check(d) for d in docs))


async def _crawl(
    kb: KnowledgeBase,
    root: str,
    members: list[DocumentInfo],
    plan: _Plan,
    limits: CrawlLimits | None,
    policy: UrlPolicy,
    progress: Callable[[int, int, str], None] | None,
    *,
    remove_absent: bool = True,
) -> CrawlReport:
    known = {
        d.source: KnownPage(d.etag, d.last_modified, d.links)
        for d in members
        if origin_of(d).kind is OriginKind.CRAWL
    }
    crawl = await crawl_site(
        root,
        limits=limits or CrawlLimits(),
        policy=policy,
        max_document_bytes=kb.config.max_document_bytes,
        known=known,
        progress=progress,
    )
    plan.inputs += crawl.documents
    plan.unchanged += crawl.unchanged
    plan.removals += [
        Skipped(u, "the page is gone (HTTP 404/410)") for u in crawl.gone if u in known
    ]
    if remove_absent and crawl.complete and crawl.start_reached:
        failed = {s.source for s in crawl.skipped}
        absent = set(known) - crawl.reached - set(crawl.gone) - failed
        plan.removals += [Skipped(u, "no longer linked from the site") for u in sorted(absent)]
    return crawl


async def _apply(kb: KnowledgeBase, datasource: str, plan: _Plan, report: SyncReport) -> None:
    report.unchanged += plan.unchanged
    if plan.inputs:
        report.absorb(await kb.aadd(plan.inputs, datasource=datasource))
    if plan.removals:
        reasons = {r.source: r.reason for r in plan.removals}
        gone = await kb.aremove(list(reasons), datasource=datasource)
        report.removed += [Skipped(s, reasons.get(s, "removed")) for s in gone]
