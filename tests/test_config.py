"""Settings: read from env and .env; an invalid value fails at start naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import LiveApi, SettingsError, VideoApi, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Run in an empty directory so a developer's own .env cannot leak into the test.
    monkeypatch.chdir(tmp_path)
    for name in (
        "CHUNK_SIZE",
        "CHUNK_OVERLAP",
        "AVATARBOT_DATA_DIR",
        "HEYGEN_VIDEO_API",
        "HEYGEN_API_KEY",
        "EMBEDDINGS",
        "LLM_MODEL",
        "LLM_BASE_URL",
        "LLM_API_KEY",
        "ANSWER_MIN_SCORE",
        "SPOKEN_MAX_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_work_with_no_configuration() -> None:
    s = load_settings()
    assert s.data_dir == Path("data")
    assert s.embeddings == "onnx-minilm"
    assert s.heygen_video_api is VideoApi.V3
    assert s.heygen_live_api is LiveApi.LIVEAVATAR
    assert s.knowledge_config().max_document_bytes == 20 * 1024 * 1024


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CHUNK_SIZE=600\nAVATARBOT_DATA_DIR=/tmp/somewhere\n")
    s = load_settings()
    assert s.chunk_size == 600
    assert s.knowledge_config().data_dir == Path("/tmp/somewhere")


def test_environment_beats_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("CHUNK_SIZE=600\n")
    monkeypatch.setenv("CHUNK_SIZE", "800")
    assert load_settings().chunk_size == 800


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHUNK_SIZE", "lots"),
        ("CHUNK_SIZE", "5"),
        ("HEYGEN_VIDEO_API", "v9"),
        ("CHROMA_PORT", "99999"),
    ],
)
def test_invalid_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_overlap_must_be_smaller_than_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNK_SIZE", "500")
    monkeypatch.setenv("CHUNK_OVERLAP", "500")
    with pytest.raises(SettingsError, match="CHUNK_OVERLAP"):
        load_settings()


def test_secret_value_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEYGEN_API_KEY", "sk-very-secret-value")
    s = load_settings()
    assert "sk-very-secret-value" not in repr(s)
    assert "sk-very-secret-value" not in str(s.model_dump())


def test_cli_reports_invalid_setting_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CHUNK_SIZE": "lots", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "knowledge", "stats"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "CHUNK_SIZE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_answer_config_without_llm_model_answers_extractively() -> None:
    config = load_settings().answer_config()
    assert config.llm is None
    assert (config.min_relevance, config.spoken_max_seconds) == (0.2, 60.0)


def test_answer_config_maps_llm_and_answer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODEL", "openai:gpt-4o-mini")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LLM_API_KEY", "sk-config-SECRET-123")
    monkeypatch.setenv("ANSWER_MIN_SCORE", "0.35")
    monkeypatch.setenv("SPOKEN_MAX_SECONDS", "20")
    config = load_settings().answer_config()
    assert config.llm is not None
    assert config.llm.model == "openai:gpt-4o-mini"
    assert config.llm.base_url == "http://127.0.0.1:9/v1"
    assert config.llm.api_key is not None
    assert config.llm.api_key.get_secret_value() == "sk-config-SECRET-123"
    assert (config.min_relevance, config.spoken_max_seconds) == (0.35, 20.0)
    assert "sk-config-SECRET-123" not in repr(config)


def test_blank_llm_key_and_base_url_mean_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # Local models (e.g. ollama) take no key: a blank variable must not become "".
    monkeypatch.setenv("LLM_MODEL", "ollama:llama3")
    monkeypatch.setenv("LLM_BASE_URL", "")
    monkeypatch.setenv("LLM_API_KEY", "  ")
    llm = load_settings().answer_config().llm
    assert llm is not None
    assert llm.base_url is None and llm.api_key is None
