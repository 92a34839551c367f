"""`avatarbot knowledge …` end to end through the real CLI app (in-process runner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).resolve().parents[1]

DOCS = {
    "tokens.md": "# API tokens\n\nRotate the Slack bot token every ninety days.\n",
    "videos.md": "# Avatar videos\n\nVideos render in the background, then get uploaded.\n",
}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("AVATARBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EMBEDDINGS", "none")
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    (folder / "empty.md").write_text("")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_add_reports_every_input_and_is_idempotent(cli: CliRunner, tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    code, out = run(cli, "knowledge", "add", str(folder))
    assert code == 0
    assert "added" in out and "tokens.md" in out and "videos.md" in out
    assert "empty.md" in out and "empty file" in out
    assert "image.png" in out and "skipped" in out
    assert "added 2, updated 0, unchanged 0, skipped 2" in out

    code, out = run(cli, "knowledge", "add", str(folder))
    assert code == 0 and "added 0, updated 0, unchanged 2, skipped 2" in out

    code, out = run(cli, "knowledge", "add", str(folder), "--if-empty")
    assert code == 0 and "already has 2 documents" in out


def test_every_input_failing_exits_non_zero(cli: CliRunner, tmp_path: Path) -> None:
    code, out = run(
        cli, "knowledge", "add", str(tmp_path / "missing.md"), "http://127.0.0.1:9/x.md"
    )
    assert code != 0
    assert "no such file" in out
    assert "127.0.0.1" in out and "skipped 2" in out
    code, out = run(cli, "knowledge", "stats", "--json")
    assert json.loads(out)["documents"] == 0


def test_list_stats_search_remove(cli: CliRunner, tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    run(cli, "knowledge", "add", str(folder), "--datasource", "handbook")
    code, out = run(cli, "knowledge", "list", "--json")
    docs = json.loads(out)
    assert code == 0 and sorted(Path(d["source"]).name for d in docs) == sorted(DOCS)
    assert {d["datasource"] for d in docs} == {"handbook"}

    stats = json.loads(run(cli, "knowledge", "stats", "--json")[1])
    assert stats["documents"] == 2 and stats["datasources"] == {"handbook": 2}
    assert stats["embedding"] == "none" and stats["chunks"] >= 2

    code, out = run(cli, "knowledge", "search", "how often to rotate tokens", "-k", "1", "--json")
    hits = json.loads(out)
    assert len(hits) == 1 and hits[0]["title"] == "API tokens"
    assert 0 <= hits[0]["relevance"] <= 1
    code, out = run(cli, "knowledge", "search", "rotate tokens", "--datasource", "other", "--json")
    assert json.loads(out) == []
    code, out = run(cli, "knowledge", "search", "rotate tokens")
    assert "API tokens" in out

    code, out = run(cli, "knowledge", "remove", str(folder / "tokens.md"))
    assert code == 0 and "removed" in out
    code, out = run(cli, "knowledge", "remove", "never-added.md")
    assert code != 0 and "nothing matched" in out
    code, out = run(cli, "knowledge", "remove", "--datasource", "handbook")
    assert code == 0
    assert json.loads(run(cli, "knowledge", "list", "--json")[1]) == []


def test_embedding_change_is_one_clear_line_then_reindex_fixes_it(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(cli, "knowledge", "add", str(corpus(tmp_path)))
    monkeypatch.setenv("EMBEDDINGS", "onnx-minilm")
    code, out = run(cli, "knowledge", "search", "tokens")
    assert code != 0 and "Traceback" not in out
    assert "avatarbot knowledge reindex" in out and "'none'" in out
    code, out = run(cli, "knowledge", "reindex")
    assert code == 0 and "onnx-minilm" in out
    hits = json.loads(run(cli, "knowledge", "search", "credential renewal", "--json")[1])
    assert Path(hits[0]["source"]).name == "tokens.md" and hits[0]["dense_score"] is not None


def test_bad_setting_names_the_variable(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDINGS", "word2vec")
    code, out = run(cli, "knowledge", "search", "anything")
    assert code != 0 and "word2vec" in out and "onnx-minilm" in out
    monkeypatch.setenv("EMBEDDINGS", "none")
    monkeypatch.setenv("CHUNK_SIZE", "5")
    code, out = run(cli, "knowledge", "stats")
    assert code != 0 and "CHUNK_SIZE" in out


@contextmanager
def loopback_site(text: str) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 in a thread (the CLI runs its own event loop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/markdown")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_allow_hosts_lets_an_admin_reach_an_intranet_host(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loopback_site("# Intranet wiki\n\nThe VPN lives at vpn.corp.\n") as base:
        code, out = run(cli, "knowledge", "add", f"{base}/wiki.md")
        assert code == 1 and "refused: a loopback address (127.0.0.1)" in out  # off by default
        monkeypatch.setenv("URL_ALLOW_HOSTS", "wiki.corp.example, 127.0.0.1")
        code, out = run(cli, "knowledge", "add", f"{base}/wiki.md")
    assert code == 0 and "added 1" in out


def test_list_keeps_long_paths_whole_at_80_columns(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / "a-rather-long-folder-name" / "and-another-level-below-it"
    deep.mkdir(parents=True)
    doc = deep / "the-onboarding-handbook-for-new-starters.md"
    doc.write_text("# Onboarding\n\nAsk your buddy for the wiki.\n")
    assert len(str(doc)) > 80
    monkeypatch.setenv("COLUMNS", "80")
    code, out = run(cli, "knowledge", "add", str(doc))
    assert code == 0 and str(doc) in out.splitlines()[0]
    code, out = run(cli, "knowledge", "list")
    assert code == 0 and str(doc) in out.splitlines()  # whole, on its own line
    assert "1 chunk ·" in out and out.rstrip().endswith("1 document")
    code, out = run(cli, "knowledge", "remove", out.splitlines()[0])  # pasted back
    assert code == 0 and "removed" in out


def test_a_missing_folder_is_missing_not_an_unknown_type(cli: CliRunner, tmp_path: Path) -> None:
    code, out = run(cli, "knowledge", "add", str(tmp_path / "handbok"))
    assert code != 0
    assert "no such file or folder" in out and "extension" not in out
    assert "0 chunks written" in out


def test_help_shows_what_to_type_not_python_types(cli: CliRunner) -> None:
    for command in (["knowledge", "add"], ["knowledge", "list"], ["ask"], ["heygen", "avatars"]):
        code, out = run(cli, *command, "--help")
        assert code == 0 and "--help" in out
        assert "<bool>" not in out and "<list[str]>" not in out and "<str>" not in out, out
    out = run(cli, "knowledge", "add", "--help")[1]
    assert "PATH_OR_URL" in out and "DATASOURCE" in out


def test_a_corrupt_pdf_is_one_reason_and_nothing_from_pypdf_on_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really a pdf")
    env = {**os.environ, "AVATARBOT_DATA_DIR": str(tmp_path / "data"), "EMBEDDINGS": "none"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "knowledge", "add", str(broken)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "corrupt or unreadable PDF" in proc.stdout
    assert proc.stderr.strip() == "", proc.stderr  # no "EOF marker not found"


def test_base_url_links_files_to_where_they_are_published(cli: CliRunner, tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    assert cli.invoke(app, ["knowledge", "add", str(folder)]).exit_code == 0
    unknown = cli.invoke(app, ["knowledge", "base-url", "hr", "https://hr.example/"])
    assert unknown.exit_code != 0 and "no datasource called 'hr'" in unknown.output
    bad = cli.invoke(app, ["knowledge", "base-url", "default", "ftp://x"])
    assert bad.exit_code != 0 and "http(s)" in bad.output
    ok = cli.invoke(app, ["knowledge", "base-url", "default", "https://docs.example/kb/"])
    assert ok.exit_code == 0 and "link to https://docs.example/kb/" in ok.output
    found = cli.invoke(app, ["knowledge", "search", "rotate the slack bot token", "--json"])
    hits = json.loads(found.output)
    assert hits[0]["link"].startswith("https://docs.example/kb/tokens.md")
