"""Daily budgets for what costs money: live-avatar minutes and rendered videos.

Counters live in the shared store (`add_usage` is atomic), keyed by UTC day, so every
replica sees the same totals. A video is counted *before* it is submitted: the counter is
incremented first and given back when that took it over the limit, so two replicas racing
for the last video cannot both win.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.avatar.delivery import AvatarLimitReached
from bot.store.base import Store

LIVE_MINUTES = "live_minutes"
VIDEOS = "videos"
ALL = "all"  # the key for a workspace-less deployment (and the live-minutes total)


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


class Budgets:
    def __init__(
        self,
        store: Store,
        *,
        live_daily_minutes: float,
        videos_per_workspace: int,
        videos_per_user: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.live_daily_minutes = live_daily_minutes
        self.videos_per_workspace = videos_per_workspace
        self.videos_per_user = videos_per_user
        self._now = clock

    # --- live minutes -------------------------------------------------------------------

    async def check_live(self) -> None:
        used = await self.store.usage(LIVE_MINUTES, ALL, day_of(self._now()))
        if used >= self.live_daily_minutes:
            raise AvatarLimitReached(
                f"Today's live avatar time ({self.live_daily_minutes:g} minutes) is used up; "
                "it resets at midnight UTC. The text answer is above, and /ask-video still "
                "works."
            )

    async def add_live_seconds(self, seconds: float) -> float:
        if seconds <= 0:
            return 0.0
        return await self.store.add_usage(LIVE_MINUTES, ALL, day_of(self._now()), seconds / 60.0)

    # --- videos -------------------------------------------------------------------------

    async def take_video(self, team: str | None, user: str | None) -> None:
        """Count one video for the workspace and the user, or raise without counting."""
        day = day_of(self._now())
        taken: list[str] = []
        try:
            for key, limit, who in (
                (f"team:{team or ALL}", self.videos_per_workspace, "this workspace"),
                (f"user:{user}" if user else None, self.videos_per_user, "you"),
            ):
                if key is None:
                    continue
                total = await self.store.add_usage(VIDEOS, key, day, 1)
                taken.append(key)
                if total > limit:
                    raise AvatarLimitReached(
                        f"The daily limit of {limit} avatar videos for {who} is reached; "
                        "it resets at midnight UTC."
                    )
        except AvatarLimitReached:
            for key in taken:
                await self.store.add_usage(VIDEOS, key, day, -1)
            raise

    async def give_back_video(self, team: str | None, user: str | None) -> None:
        """A request that turned out to reuse an existing job costs nothing."""
        day = day_of(self._now())
        await self.store.add_usage(VIDEOS, f"team:{team or ALL}", day, -1)
        if user:
            await self.store.add_usage(VIDEOS, f"user:{user}", day, -1)
