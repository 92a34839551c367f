"""Knowledge administration from Slack: `/knowledge …` and files sent to the bot in a DM.

    /knowledge add URL… [crawl] [--datasource NAME] | sync | list | remove SOURCE | search QUERY
    /knowledge bind DATASOURCE | unbind | help

Changes (add, remove, bind, unbind, file drops) are for admins: ADMIN_USER_IDS plus the
workspace's admins and owners (users.info). Others get a polite refusal. `add` takes http(s)
URLs only: a Slack user can never make the server read one of its own paths. Every change is
written to the audit log. Knowledge base work runs off the event loop (its async twins).
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.slack.blocks import search_results_text
from bot.slack.channel_knowledge import CHANNEL_REF, ChannelKnowledge, ChannelSourceError
from bot.slack.failures import failure
from bot.slack.mrkdwn import escape
from bot.slack.services import SlackServices
from bot.slack.uploads import DownloadRefused, download
from bot.wording import count
from knowledge.index import AddReport, Upload
from knowledge.models import OriginKind
from knowledge.sources import Skipped, UrlPolicy, fetch_urls
from knowledge.sync import SyncReport, crawl_into, sync

HELP = """*`/knowledge` — what I know and where I look*
• `/knowledge list` — the indexed documents
• `/knowledge search QUERY` — the passages a question would find
• `/knowledge add URL… [--datasource NAME]` — index web pages or files by URL (admins)
• `/knowledge add URL crawl` — index a whole docs site: its sitemap and same-site links (admins)
• `/knowledge add #channel` — learn from that channel's resolved threads, and follow it (admins)
• `/knowledge sync` — check every source again: changes re-indexed, vanished pages removed (admins)
• `/knowledge remove SOURCE` — forget a document, by the source `list` shows (admins)
• `/knowledge bind DATASOURCE` — answer this channel from that datasource only (admins)
• `/knowledge unbind` — answer this channel from everything again (admins)
• Send me a file in a DM (PDF, DOCX, Markdown, HTML, text) to index it (admins)"""
NOT_ADMIN = (
    "Sorry, only knowledge-base admins can change what I know. Ask a workspace admin, or "
    "someone listed in the bot's ADMIN_USER_IDS, to do it for you."
)
PATHS_REFUSED = (
    "I only add http(s) URLs from Slack: I never read files from the server's disk. "
    "To add a file, send it to me in a direct message."
)
ADMIN_ACTIONS = frozenset({"add", "remove", "bind", "unbind", "sync"})

Reply = Callable[[str], Awaitable[None]]


@dataclass
class Command:
    action: str
    args: list[str] = field(default_factory=list)
    datasource: str = "default"
    crawl: bool = False  # `add URL crawl` (or --crawl): the whole site


def parse(text: str) -> Command:
    try:
        words = shlex.split(text.strip())
    except ValueError:
        words = text.split()
    if not words:
        return Command("help")
    action, rest = words[0].lower(), words[1:]
    datasource = "default"
    if "--datasource" in rest:
        i = rest.index("--datasource")
        if i + 1 < len(rest):
            datasource = rest[i + 1]
        rest = rest[:i] + rest[i + 2 :]
    crawl = action == "add" and any(w.lower() in ("crawl", "--crawl") for w in rest)
    rest = [w for w in rest if not crawl or w.lower() not in ("crawl", "--crawl")]
    return Command(action, rest, datasource, crawl)


def report_lines(report: AddReport) -> list[str]:
    # Sources and reasons come from pages and people: the one escaping rule.
    lines = [f"✅ added {escape(s)}" for s in report.added]
    lines += [f"🔄 updated {escape(s)}" for s in report.updated]
    lines += [f"➖ unchanged {escape(s)}" for s in report.unchanged]
    lines += [f"⚠️ skipped {escape(s.source)}: {escape(s.reason)}" for s in report.skipped]
    lines.append(f"{report.chunks} passages indexed.")
    return lines


def sync_lines(report: SyncReport, limit: int = 30) -> list[str]:
    """A crawl's or a sync's report: what changed in full, the rest counted."""
    lines = [f"✅ added {escape(s)}" for s in report.added]
    lines += [f"🔄 updated {escape(s)}" for s in report.updated]
    lines += [f"🗑️ removed {escape(r.source)}: {escape(r.reason)}" for r in report.removed]
    lines += [f"⚠️ skipped {escape(s.source)}: {escape(s.reason)}" for s in report.skipped]
    more = len(lines) - limit
    lines = lines[:limit] + ([f"…and {more} more"] if more > 0 else [])
    for crawl in report.crawls:
        if crawl.stopped:
            lines.append(f"The crawl of {escape(crawl.start)} stopped early: {crawl.stopped}.")
    lines.append(f"{len(report.unchanged)} unchanged; {report.chunks} passages indexed.")
    return lines


class KnowledgeAdmin:
    def __init__(self, services: SlackServices) -> None:
        self.s = services
        self.channels = ChannelKnowledge(services)

    async def run(
        self, text: str, *, user: str, channel: str, reply: Reply, announce: Reply | None = None
    ) -> None:
        """`reply` reaches the person; `announce` the channel (results of long work)."""
        cmd = parse(text)
        try:
            if cmd.action in ADMIN_ACTIONS and not await self.s.is_admin(user):
                await reply(NOT_ADMIN)
                return
            await self._run(
                cmd, user=user, channel=channel, reply=reply, announce=announce or reply
            )
        except Exception as exc:
            await reply(failure(exc, f"/knowledge {cmd.action}").text)

    async def _run(
        self, cmd: Command, *, user: str, channel: str, reply: Reply, announce: Reply
    ) -> None:
        kb, store = self.s.kb, self.s.store
        if cmd.action == "sync" or cmd.crawl:
            await self._freshen(cmd, user=user, reply=reply, announce=announce)
            return
        if (
            cmd.action in ("add", "remove")
            and len(cmd.args) == 1
            and CHANNEL_REF.match(cmd.args[0])
        ):
            await self._channel_source(cmd, user=user, reply=reply, announce=announce)
            return
        if cmd.action == "add":
            urls = [a for a in cmd.args if a.lower().startswith(("http://", "https://"))]
            if not urls or len(urls) != len(cmd.args):
                await reply(PATHS_REFUSED if cmd.args else "Usage: `/knowledge add URL…`")
                return
            adding = count(len(urls), "URL")
            await reply(f"Adding {adding} to `{cmd.datasource}`… I'll report here.")
            report = await self.add_urls(urls, cmd.datasource)
            await store.audit(
                user,
                "knowledge.add",
                {"urls": urls, "datasource": cmd.datasource, "added": report.added},
            )
            await announce(
                f"*Knowledge add by <@{user}> finished*\n" + "\n".join(report_lines(report))
            )
        elif cmd.action == "remove":
            if not cmd.args:
                await reply("Usage: `/knowledge remove SOURCE` (see `/knowledge list`)")
                return
            removed = await kb.aremove([" ".join(cmd.args)])
            await store.audit(user, "knowledge.remove", {"sources": removed})
            await reply(
                f"Removed {count(len(removed), 'document')}."
                if removed
                else "No document has that source; `/knowledge list` shows them."
            )
        elif cmd.action == "list":
            docs = await kb.alist_documents()
            lines = [
                f"• `{escape(d.datasource)}` {escape(d.title)} — {escape(d.source)} "
                f"({d.chunks} passages)"
                for d in docs[:50]
            ]
            more = f"\n…and {len(docs) - 50} more" if len(docs) > 50 else ""
            await reply(
                ("*Indexed documents*\n" + "\n".join(lines) + more)
                if docs
                else "The knowledge base is empty."
            )
        elif cmd.action == "search":
            query = " ".join(cmd.args).strip()
            if not query:
                await reply("Usage: `/knowledge search QUERY`")
                return
            datasources = await store.bindings(channel) or None
            hits = await kb.asearch(query, k=5, datasources=datasources)
            await reply(search_results_text(hits) if hits else "Nothing matched.")
        elif cmd.action == "bind":
            if len(cmd.args) != 1:
                await reply("Usage: `/knowledge bind DATASOURCE`")
                return
            await store.bind(channel, cmd.args[0], by=user)
            await store.audit(
                user, "knowledge.bind", {"channel": channel, "datasource": cmd.args[0]}
            )
            await reply(f"This channel now answers from `{cmd.args[0]}`.")
        elif cmd.action == "unbind":
            n = await store.unbind(channel)
            await store.audit(user, "knowledge.unbind", {"channel": channel, "removed": n})
            await reply("This channel answers from every datasource again.")
        else:
            await reply(HELP)

    async def _channel_source(
        self, cmd: Command, *, user: str, reply: Reply, announce: Reply
    ) -> None:
        """`add #channel`: its resolved threads become knowledge, followed from now on;
        `remove #channel`: stop, and forget its threads."""
        try:
            channel, name = await self.channels.resolve(cmd.args[0])
            if cmd.action == "remove":
                await self.s.store.unfollow_channel(channel)
                docs = await self.s.kb.alist_documents()
                gone = [
                    d.source
                    for d in docs
                    if d.origin and d.origin.kind is OriginKind.SLACK and d.origin.root == channel
                ]
                removed = await self.s.kb.aremove(gone) if gone else []
                await self.s.store.audit(user, "knowledge.unfollow", {"channel": channel})
                await reply(
                    f"I no longer learn from <#{channel}>; {len(removed)} threads forgotten."
                )
                return
            await reply(f"Reading the threads of <#{channel}>… I'll report here when done.")
            result = await self.channels.add(
                channel, name=name, datasource=cmd.datasource, user=user
            )
        except ChannelSourceError as exc:
            await reply(str(exc))
            return
        await self.s.store.audit(
            user,
            "knowledge.follow",
            {"channel": channel, "datasource": cmd.datasource, "threads": result.threads},
        )
        more = (
            " (the newest ones; raise SLACK_SOURCE_MAX_THREADS for more)"
            if result.truncated
            else ""
        )
        lines = report_lines(result.report)
        await announce(
            f"*<#{channel}> is now a knowledge source* (added by <@{user}>): "
            f"{result.threads} resolved threads read{more}; new replies are followed.\n"
            + "\n".join(lines)
        )

    async def _freshen(self, cmd: Command, *, user: str, reply: Reply, announce: Reply) -> None:
        """`add URL crawl` and `sync`: long work, acknowledged at once, reported when done."""
        limits = self.s.settings.crawl_limits()
        if cmd.action == "sync":
            await reply("Checking every source again… I'll report here when it is done.")
            report = await sync(self.s.kb, limits=limits)
            for followed in await self.channels.followed_channels():
                try:
                    read = await self.channels.read_channel(followed.channel)
                except ChannelSourceError as exc:
                    report.skipped.append(Skipped(f"<#{followed.channel}>", str(exc)))
                    continue
                report.absorb(read.report)
            detail: dict[str, object] = {}
        else:
            urls = [a for a in cmd.args if a.lower().startswith(("http://", "https://"))]
            if len(urls) != 1 or len(cmd.args) != 1:
                await reply("Usage: `/knowledge add URL crawl` (one http(s) URL to start from)")
                return
            await reply(
                f"Crawling {escape(urls[0])} into `{escape(cmd.datasource)}` "
                f"(at most {limits.max_pages} pages)… I'll report here when it is done."
            )
            report = await crawl_into(self.s.kb, urls[0], datasource=cmd.datasource, limits=limits)
            detail = {"crawl": urls[0], "datasource": cmd.datasource}
        counts = {
            "added": len(report.added),
            "updated": len(report.updated),
            "removed": len(report.removed),
            "skipped": len(report.skipped),
        }
        await self.s.store.audit(user, f"knowledge.{cmd.action}", {**detail, **counts})
        title = "Knowledge sync" if cmd.action == "sync" else "Site crawl"
        await announce(f"*{title} by <@{user}> finished*\n" + "\n".join(sync_lines(report)))

    async def add_urls(self, urls: list[str], datasource: str) -> AddReport:
        policy = UrlPolicy.from_allow_list(self.s.kb.config.url_allow_hosts)
        docs, skipped = await fetch_urls(
            urls, max_bytes=self.s.kb.config.max_document_bytes, policy=policy
        )
        report = await self.s.kb.aadd(docs, datasource=datasource) if docs else AddReport()
        report.skipped[:0] = skipped
        return report

    async def index_files(self, files: list[dict[str, object]], *, user: str, reply: Reply) -> None:
        """Files sent to the bot in a DM."""
        if not await self.s.is_admin(user):
            await reply(
                "I didn't index that file: only knowledge-base admins can add documents. "
                "Ask an admin to send it to me."
            )
            return
        token = self.s.settings.slack_bot_token
        assert token is not None
        max_bytes = int(self.s.settings.slack_max_file_mb * 1024 * 1024)
        uploads, skipped = [], []
        for f in files[:10]:
            try:
                body = await download(
                    f,
                    token=token.get_secret_value(),
                    api_url=self.s.settings.slack_api_url,
                    max_bytes=max_bytes,
                )
                name = str(f.get("name") or "upload")
                uploads.append(Upload(name, body, source=f"slack:{f.get('id')}/{name}"))
            except DownloadRefused as exc:
                skipped.append(Skipped(exc.name, exc.reason))
        try:
            report = await self.s.kb.aadd(uploads) if uploads else AddReport()
        except Exception as exc:
            await reply(failure(exc, "indexing a file").text)
            return
        report.skipped[:0] = skipped
        await self.s.store.audit(
            user,
            "knowledge.upload",
            {"files": [u.filename for u in uploads], "added": report.added},
        )
        await reply("*File indexing finished*\n" + "\n".join(report_lines(report)))
