"""The Slack app as production runs it, against the loopback fake Slack.

    async with running_bot(tmp_path) as bot:
        resp = await bot.event({"type": "app_mention", ...})      # a signed HTTP request
        msg = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))

`Bot.post` signs every request the way Slack does (v0 HMAC-SHA256 of `v0:ts:body`,
https://docs.slack.dev/authentication/verifying-requests-from-slack); `signed=False` or a
wrong secret exercises the refusal.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.config import Settings
from bot.serve import Server
from bot.store import open_store
from knowledge import KnowledgeBase, KnowledgeConfig
from tests.fakes.openai_server import API_KEY as OPENAI_KEY
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import serve
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, TEAM, FakeSlack
from tests.knowledge_hits import SAMPLE

_ids = itertools.count(1)


def sign(body: str, secret: str = SIGNING_SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def sample_kb(data_dir: Path) -> KnowledgeBase:
    kb = KnowledgeBase(KnowledgeConfig(data_dir=data_dir, embeddings="none"))
    kb.add([SAMPLE])
    return kb


@dataclass(frozen=True)
class Reply:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Bot:
    server: Server
    slack: FakeSlack
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def idle(self) -> None:
        """Wait until every answer and job the app is working on has finished."""
        # Until none is left: an event's handling starts its answer as another task.
        while tasks := set(self.server.services.work.tasks):
            _, stuck = await asyncio.wait(tasks, timeout=20)
            if stuck:
                return

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        signed: bool = True,
        secret: str = SIGNING_SECRET,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        h = {
            "Content-Type": content_type,
            **(sign(body, secret) if signed else {}),
            **(headers or {}),
        }
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=h) as resp:
            return Reply(resp.status, await resp.text())

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry: int | None = None,
        **kw: Any,
    ) -> Reply:
        body = json.dumps(envelope(event, event_id))
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "timeout"} if retry else {}
        )
        return await self.post(body, "application/json", headers=headers, **kw)

    async def command(
        self, command: str, text: str, *, user: str = "U1", channel: str = "C1"
    ) -> Reply:
        body = urlencode(
            {
                "command": command,
                "text": text,
                "user_id": user,
                "channel_id": channel,
                "team_id": TEAM,
                "trigger_id": f"trig{next(_ids)}",
                "response_url": f"{self.slack.base_url}/response/{next(_ids)}",
            }
        )
        return await self.post(body, "application/x-www-form-urlencoded")

    async def action(
        self,
        action: dict[str, Any],
        *,
        user: str = "U1",
        channel: str = "C1",
        message_ts: str = "1.0",
        view: bool = False,
    ) -> Reply:
        """A `block_actions` click, on a message (or, `view=True`, on the App Home)."""
        container: dict[str, Any] = (
            {"type": "view", "view_id": "VHOME"}
            if view
            else {"type": "message", "message_ts": message_ts}
        )
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": user},
            "channel": {"id": channel},
            "container": container,
            "trigger_id": f"trig{next(_ids)}",
            "api_app_id": "A0FAKE",
            "response_url": f"{self.slack.base_url}/response/{next(_ids)}",
            "actions": [{"action_ts": str(time.time()), **action}],
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str = "U1"
    ) -> Reply:
        """A `view_submission`: `view` as the bot opened it, `values` as Slack's
        `state.values` (block_id -> action_id -> element state)."""
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": user},
            "api_app_id": "A0FAKE",
            "trigger_id": f"trig{next(_ids)}",
            "view": {
                "id": "V0MODAL",
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": view.get("private_metadata", ""),
                "state": {"values": values},
            },
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )


def envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0FAKE",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
        "event": event,
    }


def settings_for(slack: FakeSlack, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        avatarbot_data_dir=data_dir,
        embeddings="none",
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=f"{slack.base_url}/api/",
        port=0,
        admin_user_ids="UADMIN",
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    socket_mode: bool = False,
    kb: KnowledgeBase | None = None,
    store: Any = None,
    avatar: Any = None,
    **overrides: Any,
) -> AsyncIterator[Bot]:
    slack = FakeSlack()
    slack.add_user("U1", "Ada")
    slack.add_user("U2", "Grace")
    slack.add_user("UADMIN", "Admin")
    slack.add_user("UOWNER", "Owner", owner=True)
    async with serve(slack.app()) as base_url:
        slack.base_url = base_url
        if socket_mode:
            overrides.setdefault("slack_app_token", APP_TOKEN)
        settings = settings_for(slack, tmp_path, **overrides)
        server = Server(
            settings,
            store=store or open_store(settings),
            kb=kb or sample_kb(tmp_path),
            avatar=avatar,
            host="127.0.0.1",
            avatar_off_reason="Set HEYGEN_API_KEY to turn them on.",
        )
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Bot(server, slack, http)
        finally:
            await server.stop(grace=5)


@asynccontextmanager
async def bot_with_model(tmp_path: Path, llm: FakeOpenAI, **overrides: Any) -> AsyncIterator[Bot]:
    """`running_bot` answering with a language model served by the loopback OpenAI fake."""
    async with (
        serve(llm.app()) as llm_url,
        running_bot(
            tmp_path,
            llm_model="openai:gpt-4o-mini",
            llm_base_url=f"{llm_url}/v1",
            llm_api_key=OPENAI_KEY,
            **overrides,
        ) as bot,
    ):
        yield bot


def file_drop(files: list[dict[str, Any]], *, user: str, channel: str, ts: str) -> dict[str, Any]:
    """The message event of files sent to the bot in a DM."""
    return {
        "type": "message",
        "subtype": "file_share",
        "channel_type": "im",
        "channel": channel,
        "user": user,
        "text": "",
        "ts": ts,
        "files": files,
    }
