"""KNOWLEDGE_SYNC_EVERY_HOURS: one sync per period across replicas sharing the state store."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from bot.knowledge_sync import ScheduledSync
from bot.store.sealing import Sealer
from bot.store.sql import SqlStore, sqlite_url
from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase
from knowledge.sources.crawl import CrawlLimits
from tests.fakes.clock import FakeClock


async def test_one_replica_syncs_each_period(tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nAsk two weeks ahead.\n")
    kb = KnowledgeBase(KnowledgeConfig(data_dir=tmp_path / "data", embeddings="none"))
    kb.add([folder])
    clock = FakeClock(start=1_000_000.0)
    key = Sealer([Fernet.generate_key()])
    url = sqlite_url(tmp_path / "state.db")
    async with (
        SqlStore(url, sealer=key, clock=clock) as a,
        SqlStore(url, sealer=key, clock=clock) as b,
    ):
        replicas = [
            ScheduledSync(kb, store, every_hours=1, limits=CrawlLimits(), clock=clock)
            for store in (a, b)
        ]
        first = [await r.run_once() for r in replicas]
        assert sum(r is not None for r in first) == 1  # one of the two ran it
        (folder / "travel.md").write_text("# Travel\n\nBook trains.\n")
        assert await replicas[1].run_once() is None  # same period: nobody again
        clock.advance(3600)
        report = await replicas[1].run_once()
        assert report is not None and [Path(s).name for s in report.added] == ["travel.md"]
        audit = await a.audit_log()
        assert [e["action"] for e in audit].count("knowledge.sync") == 2
