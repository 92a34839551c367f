"""Knowledge administration from Slack: `/knowledge …` and files sent to the bot in a DM.

    /knowledge add URL… [crawl] [--datasource NAME] | add #channel | sync | list
    /knowledge remove DOCUMENT | search QUERY | bind DATASOURCE | unbind
    /knowledge base-url DATASOURCE URL|off | private on|off | help

Changes (add, remove, bind, unbind, base-url, file drops) are for admins: ADMIN_USER_IDS
plus the workspace's admins and owners (users.info). Others get a polite refusal. `add`
takes http(s) URLs only: a Slack user can never make the server read one of its own paths.
Replies go to the person who asked (ephemeral); nothing here posts to the channel. Every
change is written to the audit log. Knowledge base work runs off the event loop.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePath

from bot.slack.blocks import search_results_text
from bot.slack.channel_knowledge import CHANNEL_REF, ChannelKnowledge, ChannelSourceError
from bot.slack.failures import failure
from bot.slack.mrkdwn import escape, mention
from bot.slack.places import asking_in
from bot.slack.services import SlackServices
from bot.slack.uploads import DownloadRefused, download
from bot.wording import count
from knowledge.index import AddReport, DocumentInfo, Upload
from knowledge.models import OriginKind
from knowledge.sources import Skipped, UrlPolicy, fetch_urls
from knowledge.sync import SyncReport, crawl_into, sync
from knowledge.visibility import visible_hits

HELP = """*`/knowledge` — what I know and where I look*
• `/knowledge list` — the indexed documents
• `/knowledge search QUERY` — the passages a question would find
• `/knowledge add URL… [--datasource NAME]` — index web pages or files by URL (admins)
• `/knowledge add URL crawl` — index a whole docs site: its sitemap and same-site links (admins)
• `/knowledge add #channel` — learn from that channel's resolved threads, and follow it (admins)
• `/knowledge sync` — check every source again: changes re-indexed, vanished pages removed (admins)
• `/knowledge remove DOCUMENT` — forget a document, by the name `list` shows (admins)
• `/knowledge bind DATASOURCE` — answer this channel from that datasource only (admins)
• `/knowledge unbind` — answer this channel from everything again (admins)
• `/knowledge base-url DATASOURCE URL` — link that datasource's files to where they are \
published, e.g. `https://github.com/acme/handbook/blob/main/` (`off` removes it; admins)
• `/knowledge private on|off` — answer mentions in this channel only to the asker, with \
"Share in channel" (admins)
• Send me a file in a DM (PDF, DOCX, Markdown, HTML, text) to index it (admins)"""
NOT_ADMIN = (
    "Sorry, only knowledge-base admins can change what I know. Ask a workspace admin, or "
    "someone listed in the bot's ADMIN_USER_IDS, to do it for you."
)
PATHS_REFUSED = (
    "I only add http(s) URLs from Slack: I never read files from the server's disk. "
    "To add a file, send it to me in a direct message."
)
ADMIN_ACTIONS = frozenset({"add", "remove", "bind", "unbind", "base-url", "private", "sync"})
KNOWN_ACTIONS = ADMIN_ACTIONS | {"list", "search", "help"}
# Datasource names people type: short, no spaces or markup.
DATASOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MAX_FILES = 20  # files indexed from one message; the rest are named, never dropped silently

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


def report_lines(report: AddReport, names: dict[str, str] | None = None) -> list[str]:
    """What an add did, line by line; `names` maps sources to what people call them."""

    def name(source: str) -> str:
        return escape((names or {}).get(source) or display_name(source))

    lines = [f"✅ added {name(s)}" for s in report.added]
    lines += [f"🔄 updated {name(s)}" for s in report.updated]
    lines += [f"➖ unchanged {name(s)}" for s in report.unchanged]
    lines += [f"⚠️ skipped {name(s.source)}: {escape(s.reason)}" for s in report.skipped]
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


def display_name(source: str) -> str:
    """How a document is named in Slack: a web page by its URL, anything else (a file from
    disk, an upload) by its file name — never a server path."""
    if source.startswith(("http://", "https://")):
        return source
    if source.startswith("slack:"):
        return source.split("/", 1)[-1]
    return PurePath(source).name or source


def unknown_datasource(name: str, known: list[str]) -> str:
    listed = ", ".join(f"`{escape(k)}`" for k in known)
    return (
        f"There is no datasource called `{escape(name)}`. "
        + (f"Known datasources: {listed}." if known else "The knowledge base is empty.")
        + " Add documents to a datasource first (`/knowledge add URL --datasource NAME`, or "
        "send me a file in a DM), then bind it."
    )


class KnowledgeAdmin:
    def __init__(self, services: SlackServices) -> None:
        self.s = services
        self.channels = ChannelKnowledge(services)

    async def run(self, text: str, *, user: str, channel: str, reply: Reply) -> None:
        """`reply` reaches only the person who typed the command."""
        cmd = parse(text)
        try:
            if cmd.action not in KNOWN_ACTIONS:
                await reply(
                    f"I don't know `/knowledge {escape(cmd.action)}`. Here is what I do know:\n"
                    + HELP
                )
                return
            if cmd.action in ADMIN_ACTIONS and not await self.s.is_admin(user):
                await reply(NOT_ADMIN)
                return
            await self._run(cmd, user=user, channel=channel, reply=reply)
        except Exception as exc:
            await reply(failure(exc, f"/knowledge {cmd.action}").text)

    async def datasources(self) -> list[str]:
        return sorted((await self.s.kb.astats()).datasources)

    async def _run(self, cmd: Command, *, user: str, channel: str, reply: Reply) -> None:
        kb, store = self.s.kb, self.s.store
        if cmd.action == "sync" or cmd.crawl:
            await self._freshen(cmd, user=user, reply=reply)
            return
        if (
            cmd.action in ("add", "remove")
            and len(cmd.args) == 1
            and CHANNEL_REF.match(cmd.args[0])
        ):
            await self._channel_source(cmd, user=user, reply=reply)
            return
        if cmd.action == "add":
            urls = [a for a in cmd.args if a.lower().startswith(("http://", "https://"))]
            if not urls or len(urls) != len(cmd.args):
                await reply(PATHS_REFUSED if cmd.args else "Usage: `/knowledge add URL…`")
                return
            if not DATASOURCE_NAME.match(cmd.datasource):
                await reply("A datasource name is letters, digits, `-`, `_` or `.` (at most 40).")
                return
            adding = count(len(urls), "URL")
            await reply(f"Adding {adding} to `{cmd.datasource}`… I'll report here.")
            report = await self.add_urls(urls, cmd.datasource, user=user)
            await reply(
                f"*Knowledge add into `{cmd.datasource}` finished*\n"
                + "\n".join(report_lines(report))
            )
        elif cmd.action == "remove":
            if not cmd.args:
                await reply("Usage: `/knowledge remove DOCUMENT` (see `/knowledge list`)")
                return
            await reply(await self.remove(" ".join(cmd.args), user=user))
        elif cmd.action == "list":
            docs = await kb.alist_documents()
            await reply(list_text(docs) if docs else "The knowledge base is empty.")
        elif cmd.action == "search":
            query = " ".join(cmd.args).strip()
            if not query:
                await reply("Usage: `/knowledge search QUERY`")
                return
            asking = await asking_in(store, channel)
            hits = await kb.asearch(query, k=15, datasources=asking.datasources)
            hits = visible_hits(hits, asking)[:5]
            await reply(search_results_text(hits) if hits else "Nothing matched.")
        elif cmd.action == "bind":
            if len(cmd.args) != 1:
                await reply("Usage: `/knowledge bind DATASOURCE`")
                return
            await reply(await self.bind(channel, cmd.args[0], user=user))
        elif cmd.action == "unbind":
            n = await store.unbind(channel)
            await store.audit(user, "knowledge.unbind", {"channel": channel, "removed": n})
            await reply("This channel answers from every datasource again.")
        elif cmd.action == "base-url":
            if len(cmd.args) != 2:
                await reply("Usage: `/knowledge base-url DATASOURCE URL` (or `off`)")
                return
            await reply(await self.base_url(cmd.args[0], cmd.args[1], user=user))
        elif cmd.action == "private":
            if cmd.args not in (["on"], ["off"]):
                await reply("Usage: `/knowledge private on` (or `off`)")
                return
            on = cmd.args == ["on"]
            await store.set_private_answers(channel, on, by=user)
            await store.audit(user, "knowledge.private", {"channel": channel, "on": on})
            await reply(
                "Questions in this channel are now answered only to the asker, who can share "
                "the answer."
                if on
                else "Answers in this channel are public again."
            )
        else:
            await reply(HELP)

    async def _channel_source(self, cmd: Command, *, user: str, reply: Reply) -> None:
        """`add #channel`: its resolved threads become knowledge, followed from now on;
        `remove #channel`: stop, and forget its threads."""
        try:
            channel, name = await self.channels.resolve(cmd.args[0])
            if cmd.action == "remove":
                await self.channels.unfollow(channel)
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
        await reply(
            f"*<#{channel}> is now a knowledge source* (added by {mention(user)}): "
            f"{result.threads} resolved threads read{more}; new replies are followed.\n"
            + "\n".join(lines)
        )

    async def _freshen(self, cmd: Command, *, user: str, reply: Reply) -> None:
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
        await reply(f"*{title} by {mention(user)} finished*\n" + "\n".join(sync_lines(report)))

    async def bind(self, channel: str, datasource: str, *, user: str) -> str:
        known = await self.datasources()
        if datasource not in known:
            return unknown_datasource(datasource, known)
        await self.s.store.bind(channel, datasource, by=user)
        await self.s.store.audit(
            user, "knowledge.bind", {"channel": channel, "datasource": datasource}
        )
        return f"This channel now answers from `{escape(datasource)}`."

    async def base_url(self, datasource: str, url: str, *, user: str) -> str:
        known = await self.datasources()
        if datasource not in known:
            return unknown_datasource(datasource, known)
        off = url.lower() in ("off", "none", "-")
        await self.s.kb.aset_base_url(datasource, "" if off else url)
        await self.s.store.audit(
            user, "knowledge.base_url", {"datasource": datasource, "base_url": "" if off else url}
        )
        if off:
            return f"Files of `{escape(datasource)}` are cited by title alone again."
        return f"Files of `{escape(datasource)}` now link to {escape(url)} + their path."

    async def remove(self, name: str, *, user: str) -> str:
        """Remove by what `list` shows (file name, title or URL); one match only."""
        docs = await self.s.kb.alist_documents()
        matches = [d for d in docs if name in (d.source, d.title, display_name(d.source), d.url)]
        if not matches:
            return "No document has that name; `/knowledge list` shows them."
        if len(matches) > 1:
            where = ", ".join(f"`{escape(d.datasource)}`" for d in matches)
            return f"Several documents are called that (in {where}); use the exact title."
        doc = matches[0]
        removed = await self.s.kb.aremove([doc.source], datasource=doc.datasource)
        await self.s.store.audit(user, "knowledge.remove", {"sources": removed})
        return f"Removed {escape(doc.title)} from `{escape(doc.datasource)}`."

    async def add_urls(self, urls: list[str], datasource: str, *, user: str) -> AddReport:
        policy = UrlPolicy.from_allow_list(self.s.kb.config.url_allow_hosts)
        docs, skipped = await fetch_urls(
            urls, max_bytes=self.s.kb.config.max_document_bytes, policy=policy
        )
        report = await self.s.kb.aadd(docs, datasource=datasource) if docs else AddReport()
        report.skipped[:0] = skipped
        await self.s.store.audit(
            user,
            "knowledge.add",
            {
                "urls": urls,
                "datasource": datasource,
                "added": report.added + report.updated,
                "skipped": [f"{s.source}: {s.reason}" for s in report.skipped],
            },
        )
        return report

    async def index_files(
        self, files: list[dict[str, object]], *, user: str, datasource: str, place: str
    ) -> list[str]:
        """Download and index files shared in Slack into `datasource`; `place` is the
        private conversation they were shared in ('' for a public channel). Returns the
        report's lines (every file is named: indexed, skipped or not taken)."""
        token = self.s.settings.slack_bot_token
        assert token is not None
        max_bytes = int(self.s.settings.slack_max_file_mb * 1024 * 1024)
        uploads, skipped, names = [], [], {}
        for f in files[:MAX_FILES]:
            name = str(f.get("name") or "upload")
            try:
                body = await download(
                    f,
                    token=token.get_secret_value(),
                    api_url=self.s.settings.slack_api_url,
                    max_bytes=max_bytes,
                )
            except DownloadRefused as exc:
                skipped.append(Skipped(exc.name, exc.reason))
                continue
            source = f"slack:{f.get('id')}/{name}"
            names[source] = name
            permalink = str(f.get("permalink") or "")
            uploads.append(
                Upload(
                    name,
                    body,
                    source=source,
                    url=permalink if permalink.startswith("https://") else None,
                    place=place,
                )
            )
        skipped += [
            Skipped(str(f.get("name") or f.get("id")), f"only {MAX_FILES} files per message")
            for f in files[MAX_FILES:]
        ]
        report = await self.s.kb.aadd(uploads, datasource=datasource) if uploads else AddReport()
        report.skipped[:0] = skipped
        await self.s.store.audit(
            user,
            "knowledge.upload",
            {
                "files": [u.filename for u in uploads],
                "datasource": datasource,
                "added": [names.get(s, s) for s in report.added + report.updated],
                "skipped": [f"{names.get(s.source, s.source)}: {s.reason}" for s in skipped],
            },
        )
        return report_lines(report, names)


def list_text(docs: list[DocumentInfo], limit: int = 50) -> str:
    lines = []
    for d in docs[:limit]:
        title = escape(d.title.replace("|", "/"))
        name = escape(display_name(d.source))
        linkable = d.url.startswith(("http://", "https://")) and not set("<>| ") & set(d.url)
        shown = f"<{d.url}|{title}>" if linkable else title
        lines.append(f"• `{escape(d.datasource)}` {shown} — {name} ({d.chunks} passages)")
    more = f"\n…and {len(docs) - limit} more" if len(docs) > limit else ""
    return "*Indexed documents*\n" + "\n".join(lines) + more
