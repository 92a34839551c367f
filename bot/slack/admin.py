"""Knowledge administration from Slack: `/knowledge …` and files sent to the bot in a DM.

    /knowledge add URL… [--datasource NAME] | list | remove SOURCE | search QUERY
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
from bot.slack.failures import failure
from bot.slack.mrkdwn import escape
from bot.slack.services import SlackServices
from bot.slack.uploads import DownloadRefused, download
from knowledge.index import AddReport, Upload
from knowledge.sources import Skipped, UrlPolicy, fetch_urls

HELP = """*`/knowledge` — what I know and where I look*
• `/knowledge list` — the indexed documents
• `/knowledge search QUERY` — the passages a question would find
• `/knowledge add URL… [--datasource NAME]` — index web pages or files by URL (admins)
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
ADMIN_ACTIONS = frozenset({"add", "remove", "bind", "unbind"})

Reply = Callable[[str], Awaitable[None]]


@dataclass
class Command:
    action: str
    args: list[str] = field(default_factory=list)
    datasource: str = "default"


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
    return Command(action, rest, datasource)


def report_lines(report: AddReport) -> list[str]:
    # Sources and reasons come from pages and people: the one escaping rule.
    lines = [f"✅ added {escape(s)}" for s in report.added]
    lines += [f"🔄 updated {escape(s)}" for s in report.updated]
    lines += [f"➖ unchanged {escape(s)}" for s in report.unchanged]
    lines += [f"⚠️ skipped {escape(s.source)}: {escape(s.reason)}" for s in report.skipped]
    lines.append(f"{report.chunks} passages indexed.")
    return lines


class KnowledgeAdmin:
    def __init__(self, services: SlackServices) -> None:
        self.s = services

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
        if cmd.action == "add":
            urls = [a for a in cmd.args if a.lower().startswith(("http://", "https://"))]
            if not urls or len(urls) != len(cmd.args):
                await reply(PATHS_REFUSED if cmd.args else "Usage: `/knowledge add URL…`")
                return
            await reply(f"Adding {len(urls)} URL(s) to `{cmd.datasource}`… I'll report here.")
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
                f"Removed {len(removed)} document(s)."
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
