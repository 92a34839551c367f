"""App Home: what the bot knows and how to ask; for admins, the dashboard and its actions.

    home = HomeService(services, admin)
    await home.publish(user)                      # app_home_opened -> views.publish
    await home.open_modal(action_id, trigger_id)  # an admin button -> views.open
    errors = await home.submit(callback_id, values, user=...)   # view_submission

Facts are gathered here (knowledge base, store, budgets), rendered in `blocks.home_view`.
What a member sees follows `knowledge.visibility`: App Home is not a conversation, so it
lists only workspace-wide knowledge (no conversation's private files).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from bot.avatar.budgets import ALL, LIVE_MINUTES, VIDEOS, day_of
from bot.slack import blocks
from bot.slack.admin import (
    DATASOURCE_NAME,
    NOT_ADMIN,
    KnowledgeAdmin,
    display_name,
    report_lines,
)
from bot.slack.mrkdwn import escape
from bot.slack.services import SlackServices
from knowledge.index import DocumentInfo
from knowledge.visibility import Asking, visible

MAX_SUGGESTIONS = 4
RECENT = 5
WORST = 5


@dataclass(frozen=True)
class DatasourceFacts:
    name: str
    documents: int
    chunks: int
    titles: list[str]
    channels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Recent:
    title: str
    datasource: str
    at: float


@dataclass(frozen=True)
class Rated:
    question: str
    good: int
    bad: int


@dataclass(frozen=True)
class AdminFacts:
    datasources: list[DatasourceFacts]
    recent: list[Recent]
    failures: list[str]
    live_minutes: float
    live_limit: float
    videos: float
    video_limit: int
    live_sessions: int
    feedback: dict[str, tuple[int, int]]
    worst: list[Rated]


@dataclass(frozen=True)
class HomeFacts:
    datasources: list[DatasourceFacts]
    suggestions: list[str]
    avatar: bool
    video: bool
    admin: AdminFacts | None = None


def distinct_titles(titles: list[str], limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The first `limit` titles, whitespace tidied, each once (case-insensitively)."""
    seen: dict[str, str] = {}
    for t in titles:
        t = " ".join(t.split())
        if t and t.lower() not in seen:
            seen[t.lower()] = t
    return list(seen.values())[:limit]


def suggested_question(title: str) -> str:
    """A question built from a document title (what the knowledge really covers)."""
    return f"What should I know about {title}?"


def datasource_facts(
    docs: list[DocumentInfo], asking: Asking | None, channels: dict[str, list[str]]
) -> list[DatasourceFacts]:
    """Per datasource: the documents visible to `asking` (None: all of them, for admins)."""
    by_ds: dict[str, list[DocumentInfo]] = {}
    for d in docs:
        if asking is None or visible(d.datasource, d.place, asking):
            by_ds.setdefault(d.datasource, []).append(d)
    return [
        DatasourceFacts(
            name=name,
            documents=len(ds_docs),
            chunks=sum(d.chunks for d in ds_docs),
            titles=[d.title for d in sorted(ds_docs, key=lambda d: -d.added_at)],
            channels=channels.get(name, []),
        )
        for name, ds_docs in sorted(by_ds.items())
    ]


def feedback_by_datasource(
    rated: list[tuple[Any, int, int]],
) -> tuple[dict[str, tuple[int, int]], list[Rated]]:
    """👍/👎 per datasource of the cited sources, and the worst-rated answers."""
    good: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    for record, g, b in rated:
        names = {s.get("datasource") or "" for s in record.sources} - {""}
        for ds in names or set(record.datasources) or {"(no sources)"}:
            good[ds] += g
            bad[ds] += b
    worst = sorted((r for r in rated if r[2] > r[1]), key=lambda r: (r[1] - r[2], -r[0].created_at))
    return (
        {ds: (good[ds], bad[ds]) for ds in good.keys() | bad.keys()},
        [Rated(r.question, g, b) for r, g, b in worst[:WORST]],
    )


def document_key(d: DocumentInfo) -> str:
    return hashlib.sha256(f"{d.datasource}\0{d.source}".encode()).hexdigest()[:20]


class HomeService:
    def __init__(self, services: SlackServices, admin: KnowledgeAdmin) -> None:
        self.s = services
        self.admin = admin

    async def facts(self, user: str) -> HomeFacts:
        docs = await self.s.kb.alist_documents()
        channels = await self.s.store.all_bindings()
        is_admin = await self.s.is_admin(user)
        # Not a conversation: members see workspace-wide knowledge only.
        shown = datasource_facts(docs, None if is_admin else Asking(), channels)
        # Newest documents first, taking turns between datasources.
        titles = [t for rank in zip_longest(*(ds.titles for ds in shown)) for t in rank if t]
        facts = HomeFacts(
            datasources=shown,
            suggestions=[suggested_question(t) for t in distinct_titles(titles)],
            avatar=self.s.live_enabled or self.s.video_enabled,
            video=self.s.video_enabled,
        )
        if not is_admin:
            return facts
        return HomeFacts(**{**facts.__dict__, "admin": await self._admin_facts(docs, shown)})

    async def _admin_facts(
        self, docs: list[DocumentInfo], shown: list[DatasourceFacts]
    ) -> AdminFacts:
        store, settings = self.s.store, self.s.settings
        day = day_of(time.time())
        failures: list[str] = []
        for entry in await store.audit_log(limit=50):
            failures += [str(x) for x in (entry.get("detail") or {}).get("skipped") or []]
        votes, worst = feedback_by_datasource(await store.rated_answers())
        team = self.s.team_id or ALL
        return AdminFacts(
            datasources=shown,
            recent=[
                Recent(d.title, d.datasource, d.added_at)
                for d in sorted(docs, key=lambda d: -d.added_at)[:RECENT]
            ],
            failures=failures[:RECENT],
            live_minutes=await store.usage(LIVE_MINUTES, ALL, day),
            live_limit=settings.live_daily_minutes,
            videos=await store.usage(VIDEOS, f"team:{team}", day),
            video_limit=settings.video_daily_per_workspace,
            live_sessions=len(await store.live_sessions()),
            feedback=votes,
            worst=worst,
        )

    async def publish(self, user: str) -> None:
        view = blocks.home_view(await self.facts(user))
        await self.s.client.views_publish(user_id=user, view=view)

    # --- admin actions -------------------------------------------------------------------

    async def modal(self, action_id: str) -> dict[str, Any]:
        if action_id == blocks.HOME_ADD:
            return blocks.add_urls_modal()
        if action_id == blocks.HOME_BIND:
            return blocks.bind_modal(await self.admin.datasources() or ["default"])
        docs = await self.s.kb.alist_documents()
        return blocks.remove_modal(
            [
                (f"{d.title} ({d.datasource}, {display_name(d.source)})", document_key(d))
                for d in docs
            ]
        )

    @staticmethod
    def check(callback_id: str, values: dict[str, Any]) -> dict[str, str]:
        """A form's field errors (block_id -> words), answered in the ack; pure and fast."""
        if callback_id == blocks.HOME_ADD_VIEW:
            urls = str(form_value(values, "urls")).split()
            if not urls or not all(u.lower().startswith(("http://", "https://")) for u in urls):
                return {"urls": "Only http(s) URLs, one per line."}
            if not DATASOURCE_NAME.match(str(form_value(values, "datasource")).strip()):
                return {"datasource": "Letters, digits, - _ . (at most 40)."}
        return {}

    async def submit(self, callback_id: str, values: dict[str, Any], *, user: str) -> str:
        """Do what a checked modal asks; the outcome in a sentence for the admin."""
        if not await self.s.is_admin(user):
            return NOT_ADMIN
        if callback_id == blocks.HOME_ADD_VIEW:
            urls = str(form_value(values, "urls")).split()
            datasource = str(form_value(values, "datasource")).strip()
            report = await self.admin.add_urls(urls, datasource, user=user)
            return f"*Added into `{datasource}`*\n" + "\n".join(report_lines(report))
        if callback_id == blocks.HOME_BIND_VIEW:
            channel = str(form_value(values, "channel"))
            datasource = str(form_value(values, "datasource"))
            outcome = await self.admin.bind(channel, datasource, user=user)
            return outcome.replace("This channel", f"<#{channel}>")
        key = str(form_value(values, "document"))
        docs = await self.s.kb.alist_documents()
        doc = next((d for d in docs if document_key(d) == key), None)
        if doc is None:
            return "That document was already removed."
        await self.s.kb.aremove([doc.source], datasource=doc.datasource)
        await self.s.store.audit(user, "knowledge.remove", {"sources": [doc.source]})
        return f"Removed {escape(doc.title)} from `{escape(doc.datasource)}`."


def form_value(values: dict[str, Any], block: str) -> Any:
    """One input's value from a view's `state.values` (text, select or conversation)."""
    el = (values.get(block) or {}).get("value") or {}
    return (
        el.get("value")
        or el.get("selected_conversation")
        or (el.get("selected_option") or {}).get("value")
        or ""
    )
