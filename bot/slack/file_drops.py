"""Files sent to the bot: ask the admin which datasource, say "indexing…", index, report.

    drop = FileDrops(services, admin)
    await drop.received(files, user=..., channel=..., channel_type=..., thread_ts=...)
    await drop.chosen(choice, user=..., channel=..., message_ts=...)   # a button or the modal

The question carries the file ids (button values / the modal's private_metadata); the
files are read again with `files.info` when the admin chooses, so nothing is held in memory
between the two requests and any replica can do the work. A file shared in a DM, a group DM
or a private channel keeps that conversation as its place (`knowledge.visibility`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.admin import DATASOURCE_NAME, MAX_FILES, KnowledgeAdmin, display_name
from bot.slack.failures import failure
from bot.slack.services import SlackServices

NOT_ADMIN_FILE = (
    "I didn't index that file: only knowledge-base admins can add documents. "
    "Ask an admin to send it to me."
)
PRIVATE_TYPES = {"im", "mpim", "group"}
CLAIMS = "file-drop"


@dataclass(frozen=True)
class Choice:
    """Which files go where: what a datasource button (or the modal) carries."""

    datasource: str
    files: list[str]
    place: str = ""
    thread_ts: str | None = None

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, value: str) -> Choice:
        data = json.loads(value)
        return cls(
            datasource=str(data["datasource"]),
            files=[str(f) for f in data["files"]][: MAX_FILES * 2],
            place=str(data.get("place") or ""),
            thread_ts=data.get("thread_ts"),
        )


class FileDrops:
    def __init__(self, services: SlackServices, admin: KnowledgeAdmin) -> None:
        self.s = services
        self.admin = admin

    async def _post(self, channel: str, thread_ts: str | None, text: str, **kw: Any) -> Any:
        return await self.s.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            blocks=kw.pop("blocks", None) or blocks.notice_blocks(text),
            **kw,
        )

    async def received(
        self,
        files: list[dict[str, Any]],
        *,
        user: str,
        channel: str,
        channel_type: str | None,
        thread_ts: str | None,
    ) -> None:
        if not await self.s.is_admin(user):
            await self._post(channel, thread_ts, NOT_ADMIN_FILE)
            return
        names = [display_name(str(f.get("name") or f.get("id"))) for f in files]
        place = channel if channel_type in PRIVATE_TYPES else ""
        # The buttons carry at most MAX_FILES ids (a button value holds 2,000 characters);
        # the rest are named now, so none is dropped without a word.
        taken = [str(f["id"]) for f in files if f.get("id")][:MAX_FILES]
        template = Choice("", taken, place, thread_ts)
        known = await self.admin.datasources()
        text = blocks.datasource_question_text(
            names, private=bool(place), not_taken=names[MAX_FILES:], limit=MAX_FILES
        )
        await self._post(
            channel,
            thread_ts,
            text,
            blocks=blocks.datasource_question_blocks(text, known or ["default"], template.encode()),
        )

    async def chosen(self, choice: Choice, *, user: str, channel: str, message_ts: str) -> None:
        """Index the files into the chosen datasource; "indexing…" first, the report after."""
        if not await self.s.is_admin(user):
            await self._post(channel, choice.thread_ts, NOT_ADMIN_FILE)
            return
        if not DATASOURCE_NAME.match(choice.datasource):
            await self._post(
                channel,
                choice.thread_ts,
                "A datasource name is letters, digits, `-`, `_` or `.` (at most 40).",
            )
            return
        # Two clicks (or two replicas) on the same question: one indexing.
        ttl = self.s.settings.slack_event_ttl_hours * 3600
        if not await self.s.store.claim_once(CLAIMS, f"{channel}:{message_ts}", ttl):
            return
        n = len(choice.files)
        working = f"⏳ Indexing {n} file(s) into `{choice.datasource}`…"
        await self.s.client.chat_update(
            channel=channel, ts=message_ts, text=working, blocks=blocks.progress_blocks(working)
        )
        try:
            files = [await self._info(f) for f in choice.files]
            lines = await self.admin.index_files(
                [f for f in files if f],
                user=user,
                datasource=choice.datasource,
                place=choice.place,
            )
            gone = [
                f"⚠️ skipped {fid}: Slack no longer has it"
                for fid, f in zip(choice.files, files, strict=True)
                if not f
            ]
        except Exception as exc:
            f = failure(exc, "indexing a file")
            await self._post(channel, choice.thread_ts, f.sentence)
            return
        text = f"*File indexing into `{choice.datasource}` finished*\n" + "\n".join(gone + lines)
        await self._post(channel, choice.thread_ts, text, blocks=[blocks.section(text)])

    async def _info(self, file_id: str) -> dict[str, Any] | None:
        """The file's current record (`files.info`): its download URL and permalink."""
        try:
            resp = await self.s.client.files_info(file=file_id)
        except SlackApiError as exc:
            if exc.response.get("error") in ("file_not_found", "file_deleted"):
                return None
            raise
        return dict(resp.get("file") or {}) or None
