"""What the Slack listeners work with: one container built by `bot.serve`.

Listeners stay thin (parse -> a service here -> blocks); everything they need is in
`SlackServices`, so tests and the benchmark build the same app production runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.avatar.delivery import LiveAnswers, VideoDelivery
from bot.config import Settings
from bot.slack.limits import ConcurrencyGate, UserRateLimiter
from bot.slack.posting import retry_handlers
from bot.store.base import Store
from knowledge.answering.answer import Answerer
from knowledge.index import KnowledgeBase


class Avatar(LiveAnswers, VideoDelivery, Protocol):
    """The avatar delivery service as Slack uses it (both halves)."""


def web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL, and 429s retried after Slack's Retry-After
    (https://docs.slack.dev/apis/web-api/rate-limits); 5xx and dropped connections retried
    only where a repeat cannot post twice (`bot.slack.posting.retry_handlers`)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=retry_handlers(),
    )


@dataclass
class WorkTracker:
    """Answers and jobs in progress, so a graceful shutdown can wait for them."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    closing: bool = False

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.tasks.discard(task)

    async def drain(self, grace: float) -> int:
        """Wait up to `grace` s for work in progress; returns how many were left."""
        self.closing = True
        pending = {t for t in self.tasks if t is not asyncio.current_task()}
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=grace)
        return len(still)


@dataclass
class SlackServices:
    settings: Settings
    kb: KnowledgeBase
    answerer: Answerer
    store: Store
    client: AsyncWebClient
    avatar: Avatar | None = None
    avatar_off_reason: str = ""  # the line saying what turns the avatar on
    bot_user_id: str | None = None
    team_id: str | None = None
    auth: AsyncSlackResponse | None = None  # auth.test at start (bot.slack.app.share_auth)
    limiter: UserRateLimiter = field(init=False)
    gate: ConcurrencyGate = field(init=False)
    work: WorkTracker = field(default_factory=WorkTracker)
    _names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.limiter = UserRateLimiter(self.settings.slack_user_rate_per_minute)
        self.gate = ConcurrencyGate(
            self.settings.slack_max_concurrent_answers, self.settings.slack_queued_answers
        )

    @property
    def live_enabled(self) -> bool:
        return self.avatar is not None and self.avatar.live_enabled

    @property
    def video_enabled(self) -> bool:
        return self.avatar is not None and self.avatar.video_enabled

    async def identify(self) -> None:
        """Learn the bot's own user id (auth.test): its mention is stripped from questions."""
        self.auth = await self.client.auth_test()
        self.bot_user_id = self.auth.get("user_id")
        self.team_id = self.auth.get("team_id")

    async def open_connections(self) -> None:
        """Give the Web API client one HTTP session for the life of the server. Without
        one, slack_sdk opens a session and a TCP (and TLS) connection for every call and
        closes it after: under a burst that was most of the event loop's time."""
        if self.client.session is None:
            self.client.session = aiohttp.ClientSession()

    async def close_connections(self) -> None:
        session, self.client.session = self.client.session, None
        if session is not None:
            await session.close()

    async def user_name(self, user: str) -> str:
        """A display name for markup cleaning; '' when Slack will not say."""
        if user not in self._names:
            try:
                info = (await self.client.users_info(user=user)).get("user") or {}
            except Exception:  # a name is a nicety; the question is answered without it
                info = {}
            profile = info.get("profile") or {}
            self._names[user] = profile.get("display_name") or info.get("real_name") or ""
            if len(self._names) > 5_000:
                self._names.clear()
        return self._names[user]

    async def is_admin(self, user: str) -> bool:
        """ADMIN_USER_IDS, or a workspace admin/owner according to users.info."""
        if user in self.settings.admin_ids:
            return True
        info = (await self.client.users_info(user=user)).get("user") or {}
        return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
