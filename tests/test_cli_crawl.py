"""`avatarbot knowledge add URL --crawl` and `avatarbot knowledge sync`, through the real CLI,
against a loopback docs site (the walk-through in the README, as a test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes.docs_site import DocsSite
from tests.fakes.server import ServerThread


@pytest.fixture
def site() -> Iterator[tuple[DocsSite, ServerThread]]:
    docs = DocsSite()
    docs.pages["/docs/"] = docs.pages["/docs/"].replace('href="/docs/trap/1"', "")
    with ServerThread(lambda: docs.app) as server:
        docs.base = server.base_url
        yield docs, server


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("AVATARBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EMBEDDINGS", "none")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("URL_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("CRAWL_MAX_DEPTH", "3")
    return CliRunner()


def run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_crawl_then_sync_follows_the_site(
    cli: CliRunner, site: tuple[DocsSite, ServerThread]
) -> None:
    docs, server = site
    code, out = run(cli, "knowledge", "add", f"{docs.base}/docs/", "--crawl")
    assert code == 0, out
    assert "added 4," in out  # index, setup, deploy, faq
    assert "disallowed by robots.txt" in out and "outside the crawled site" in out
    assert "by sitemap and links" in out

    code, out = run(cli, "knowledge", "sync")
    assert code == 0 and "added 0, updated 0, unchanged 4, removed 0" in out

    def edit() -> None:
        docs.pages["/docs/deploy.html"] = docs.pages["/docs/deploy.html"].replace("Tues", "Thurs")
        del docs.pages["/docs/faq.html"]

    server.call(edit)
    code, out = run(cli, "knowledge", "sync")
    assert code == 0, out
    assert "added 0, updated 1, unchanged 2, removed 1" in out
    assert "faq.html" in out and "no longer linked from the site" in out  # the sitemap dropped it

    code, out = run(cli, "knowledge", "search", "Which day do deploys go out?", "-k", "1")
    assert "Thursday" in out


def test_crawl_without_a_url_is_a_clear_error(cli: CliRunner, tmp_path: Path) -> None:
    code, out = run(cli, "knowledge", "add", str(tmp_path), "--crawl")
    assert code != 0 and "--crawl needs at least one http(s) URL" in out
