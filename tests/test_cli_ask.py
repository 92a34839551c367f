"""`avatarbot ask` as a user runs it: empty knowledge base, offline answer, JSON, LLM path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge import KnowledgeBase, KnowledgeConfig
from tests.fakes.openai_server import API_KEY, FakeOpenAI, Reply
from tests.fakes.server import ServerThread
from tests.knowledge_hits import SAMPLE

QUESTION = "How do I add documents to the knowledge base?"


@pytest.fixture(scope="module")
def loaded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ask-data")
    KnowledgeBase(KnowledgeConfig(data_dir=data, embeddings="none")).add([SAMPLE])
    return data


def env(data: Path, **extra: str) -> dict[str, str]:
    values = {
        "AVATARBOT_DATA_DIR": str(data),
        "EMBEDDINGS": "none",
        "LLM_MODEL": "",
        "HEYGEN_API_KEY": "",
        "LIVEAVATAR_API_KEY": "",
    }
    values.update(extra)
    return values


def llm_env(data: Path, base_url: str) -> dict[str, str]:
    """`env` with the LLM pointed at the loopback OpenAI-compatible fake."""
    return env(
        data, LLM_MODEL="openai:gpt-4o-mini", LLM_BASE_URL=f"{base_url}/v1", LLM_API_KEY=API_KEY
    )


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_empty_knowledge_base_says_how_to_load_the_sample(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["ask", QUESTION], env=env(tmp_path))
    assert result.exit_code == 1
    assert "avatarbot knowledge add knowledge/sample" in result.output
    assert "make demo" in result.output


def test_offline_answer_with_sources_and_the_avatar_line(
    runner: CliRunner, loaded_dir: Path
) -> None:
    (loaded_dir / ".avatar-note-shown").unlink(missing_ok=True)  # as on a first run
    result = runner.invoke(app, ["ask", QUESTION], env=env(loaded_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "avatarbot knowledge add" in lines[0] and "[1]" in lines[0]
    assert "Sources" in result.output
    source = next(line for line in lines if line.strip().startswith("[1]"))
    assert "Loading documents into the knowledge base — Add documents" in source
    assert "loading-knowledge.md" in source
    avatar = [line for line in lines if "avatar skipped" in line]
    assert len(avatar) == 1 and "LIVEAVATAR_API_KEY" in avatar[0]
    again = runner.invoke(app, ["ask", QUESTION], env=env(loaded_dir))
    assert again.exit_code == 0 and "Sources" in again.output
    assert "avatar skipped" not in again.output  # said once, not after every answer


def test_no_avatar_line_when_the_bot_has_an_avatar_key(runner: CliRunner, loaded_dir: Path) -> None:
    (loaded_dir / ".avatar-note-shown").unlink(missing_ok=True)
    result = runner.invoke(app, ["ask", QUESTION], env=env(loaded_dir, HEYGEN_API_KEY="hg-key"))
    assert result.exit_code == 0 and "Sources" in result.output
    assert "avatar skipped" not in result.output


def test_json_output_has_the_documented_keys(runner: CliRunner, loaded_dir: Path) -> None:
    result = runner.invoke(app, ["ask", "--json", QUESTION], env=env(loaded_dir))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert {"answer", "sources", "grounded", "spoken"} <= payload.keys()
    assert payload["grounded"] is True
    assert payload["sources"][0]["number"] == 1
    assert "avatarbot knowledge add" in payload["spoken"] and "[1]" not in payload["spoken"]


def test_unknown_datasource_finds_nothing_and_says_so(runner: CliRunner, loaded_dir: Path) -> None:
    result = runner.invoke(
        app, ["ask", "--json", "--datasource", "hr", QUESTION], env=env(loaded_dir)
    )
    payload = json.loads(result.output)
    assert payload["grounded"] is False and payload["sources"] == []
    assert "couldn't find anything" in payload["answer"]


@pytest.fixture
def llm_server() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with ServerThread(fake.app) as server:
        yield fake, server.base_url


def test_llm_answer_streams_through_the_cli(
    runner: CliRunner, loaded_dir: Path, llm_server: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = llm_server
    fake.default = Reply(text="Run `avatarbot knowledge add PATH` [1].")
    result = runner.invoke(
        app,
        ["ask", QUESTION],
        env=llm_env(loaded_dir, base_url),
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Run `avatarbot knowledge add PATH` [1].")
    assert "[1] Loading documents into the knowledge base" in result.output
    assert API_KEY not in result.output


def test_llm_failure_is_one_clear_message_without_the_key(
    runner: CliRunner, loaded_dir: Path, llm_server: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = llm_server
    fake.default = Reply(status=500, retry_after=0)
    result = runner.invoke(
        app,
        ["ask", QUESTION],
        env=llm_env(loaded_dir, base_url),
    )
    assert result.exit_code == 1
    assert "Sorry, I couldn't write an answer: the language model returned an error" in (
        result.output
    )
    assert "Sources" in result.output and "Traceback" not in result.output
    assert API_KEY not in result.output
