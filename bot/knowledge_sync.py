"""`knowledge sync` on a schedule inside `avatarbot serve`, once across replicas.

Time is cut into periods of KNOWLEDGE_SYNC_EVERY_HOURS; the replica that claims a period in
the shared state store (`claim_once`, one winner per key on SQLite and PostgreSQL alike)
runs the sync, the others skip it. A replica started mid-period syncs at once if nobody has
yet, and a restart within a period that already synced does not sync again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.store import Store
from knowledge.index import KnowledgeBase
from knowledge.sources.crawl import CrawlLimits
from knowledge.sync import SyncReport, sync

log = logging.getLogger(__name__)

CLAIMS = "knowledge-sync"


class ScheduledSync:
    def __init__(
        self,
        kb: KnowledgeBase,
        store: Store,
        *,
        every_hours: float,
        limits: CrawlLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kb = kb
        self.store = store
        self.period = every_hours * 3600
        self.limits = limits
        self.clock = clock

    async def run_once(self) -> SyncReport | None:
        """Sync if this replica claims the current period; None when another one has."""
        slot = int(self.clock() // self.period)
        if not await self.store.claim_once(CLAIMS, str(slot), ttl_seconds=2 * self.period):
            return None
        started = time.monotonic()
        report = await sync(self.kb, limits=self.limits)
        summary = {
            "added": len(report.added),
            "updated": len(report.updated),
            "unchanged": len(report.unchanged),
            "removed": len(report.removed),
            "skipped": len(report.skipped),
        }
        log.info(
            "knowledge sync: %s in %.1f s",
            ", ".join(f"{n} {what}" for what, n in summary.items()),
            time.monotonic() - started,
        )
        await self.store.audit("scheduler", "knowledge.sync", summary)
        return report

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a failed sync is retried next period, never fatal
                log.warning("knowledge sync failed: %s: %s", type(exc).__name__, str(exc)[:200])
            now = self.clock()
            await asyncio.sleep(self.period - now % self.period + 1.0)
