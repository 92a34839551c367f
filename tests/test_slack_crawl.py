"""`/knowledge add URL crawl` and `/knowledge sync` from Slack, against a loopback docs site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase
from tests.fakes.docs_site import DocsSite
from tests.fakes.server import serve
from tests.slack_harness import Bot, running_bot


@pytest.fixture
async def site() -> AsyncIterator[DocsSite]:
    docs = DocsSite()
    docs.pages["/docs/"] = docs.pages["/docs/"].replace('href="/docs/trap/1"', "")
    async with serve(docs.app) as base:
        docs.base = base
        yield docs


def everything(bot: Bot) -> list[str]:
    return [m.get("text", "") for m in bot.slack.responses + bot.slack.posted()]


async def finished(bot: Bot, title: str) -> str:
    def done() -> Any:
        return [t for t in everything(bot) if title in t and "finished" in t]

    [text] = await bot.slack.wait_for(done)
    return text


async def test_an_admin_crawls_a_site_and_syncs_it(tmp_path: Path, site: DocsSite) -> None:
    kb = KnowledgeBase(
        KnowledgeConfig(data_dir=tmp_path / "kb", embeddings="none", url_allow_hosts=("127.0.0.1",))
    )
    async with running_bot(tmp_path, kb=kb, crawl_max_depth=3) as bot:
        await bot.command("/knowledge", f"add {site.base}/docs/ crawl", user="UADMIN")
        await bot.slack.wait_for(lambda: any("Crawling" in t for t in everything(bot)))
        text = await finished(bot, "Site crawl")
        assert text.count("✅ added") == 4 and "disallowed by robots.txt" in text
        assert len(kb.list_documents()) == 4

        del site.pages["/docs/setup.html"]
        await bot.command("/knowledge", "sync", user="UADMIN")
        text = await finished(bot, "Knowledge sync")
        assert "🗑️ removed" in text and "setup.html" in text
        assert len(kb.list_documents()) == 3
        actions = [e["action"] for e in await bot.server.services.store.audit_log()]
        assert {"knowledge.add", "knowledge.sync"} <= set(actions)


async def test_only_admins_sync(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.command("/knowledge", "sync", user="U1")
        [reply] = await bot.slack.wait_for(lambda: bot.slack.responses)
        assert "only knowledge-base admins" in reply["text"]
