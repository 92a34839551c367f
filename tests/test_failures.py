"""One error vocabulary: each layer's base error, and `describe()` saying each kind in plain words.

The failures come from the real clients (Slack's AsyncWebClient, our HeyGen/LiveAvatar
clients, Chroma, the state store, the source loaders) pointed at loopback ports nobody serves.
"""

from __future__ import annotations

import ast
import logging
import socket
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.avatar.delivery import AvatarLimitReached, AvatarUnavailable
from bot.avatar.errors import AvatarError
from bot.config import load_settings
from bot.failures import FailureKind, describe, report
from bot.heygen.clients import heygen_clients
from bot.heygen.errors import HeyGenError
from bot.store.base import StoreError
from bot.store.sealing import Sealer
from bot.store.sql import SqlStore
from knowledge.config import KnowledgeConfig
from knowledge.errors import EmbeddingMismatchError, KnowledgeError, LLMError
from knowledge.retrieval.store import ChunkStoreError, connect
from knowledge.sources import SourceError, load_file

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-failures-0123456789"


def closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nobody listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_slack_unreachable_is_slack_not_internal() -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{closed_port()}/api/")
    with pytest.raises(Exception) as err:  # slack_sdk lets aiohttp's ClientConnectorError out
        await client.chat_postMessage(channel="C1", text="hi")
    f = describe(err.value)
    assert type(err.value).__name__ == "ClientConnectorError"
    assert f.kind is FailureKind.SLACK
    assert f.sentence == "Slack could not be reached. Please try again in a moment."


async def test_slack_refusal_names_slacks_error_code() -> None:
    exc = SlackApiError("refused", {"ok": False, "error": "channel_not_found"})
    f = describe(exc)
    assert f.kind is FailureKind.SLACK and "channel_not_found" in f.sentence


@pytest.mark.parametrize("service", ["HeyGen", "LiveAvatar"])
async def test_heygen_and_liveavatar_unreachable_name_the_service(service: str) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    settings = load_settings(
        heygen_api_key=KEY,
        heygen_api_base=base,
        liveavatar_api_key=KEY,
        liveavatar_api_base=base,
        _env_file=None,
    )
    async with heygen_clients(settings, max_retries=0) as clients:
        api = clients.heygen_api() if service == "HeyGen" else clients.liveavatar_api()
        with pytest.raises(HeyGenError) as err:
            await api.request("GET", "/v1/anything", idempotent=True)
    f = describe(err.value)
    assert f.kind is FailureKind.HEYGEN
    assert f.sentence == f"{service} could not be reached. Please try again in a moment."
    prefix = service.upper()
    assert f"{prefix}_API_BASE" in f.hint and KEY not in f.line


async def test_a_rejected_key_names_the_variable_and_never_the_key() -> None:
    async with heygen_clients(load_settings(heygen_api_key=None, _env_file=None)) as clients:
        with pytest.raises(HeyGenError) as err:
            clients.heygen_api()
    f = describe(err.value)
    assert f.kind is FailureKind.HEYGEN and "HEYGEN_API_KEY is not set" in f.sentence


def test_avatar_errors_say_their_own_sentence() -> None:
    for exc in (
        AvatarError("The live avatar is restarting; try again in a moment."),
        AvatarUnavailable("Videos are off (set HEYGEN_API_KEY).", "HEYGEN_API_KEY"),
        AvatarLimitReached("Today's video minutes are used up"),
    ):
        f = describe(exc)
        assert f.kind is FailureKind.AVATAR
        assert f.sentence.rstrip(".") == str(exc).rstrip(".")


def test_knowledge_failures_say_what_could_not_be_read_or_used(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as missing:
        load_file(tmp_path / "gone.md", max_bytes=1_000_000)
    f = describe(missing.value)
    assert f.kind is FailureKind.KNOWLEDGE and f.sentence.endswith(
        "could not be read: no such file or folder."
    )

    config = KnowledgeConfig(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=closed_port())
    with pytest.raises(ChunkStoreError) as store:
        connect(config)
    f = describe(store.value)
    assert f.kind is FailureKind.KNOWLEDGE and "vector store at 127.0.0.1" in f.sentence

    f = describe(EmbeddingMismatchError("none", "onnx-minilm"))
    assert f.kind is FailureKind.KNOWLEDGE and "avatarbot knowledge reindex" in f.sentence


def test_the_language_model_failure_is_its_own_kind() -> None:
    f = describe(LLMError("the language model did not answer in time"))
    assert f.kind is FailureKind.LLM
    assert f.sentence == "The language model failed: the language model did not answer in time."
    assert "LLM_BASE_URL" in f.hint


async def test_an_unreachable_database_is_the_store_kind_without_the_password() -> None:
    store = SqlStore(
        f"postgresql://bot:hunter2@127.0.0.1:{closed_port()}/avatarbot",
        sealer=Sealer([Fernet.generate_key()]),
    )
    with pytest.raises(StoreError) as err:
        await store.start()
    f = describe(err.value)
    assert f.kind is FailureKind.STORE and "hunter2" not in f.line
    assert f.sentence == "The bot's database is unavailable. Please try again shortly."


def test_anything_else_is_internal_with_no_detail_and_logged_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.failures")
    with caplog.at_level(logging.ERROR, logger="tests.failures"):
        f = report(KeyError(KEY), "answering a question", log)
    assert f.kind is FailureKind.INTERNAL and KEY not in f.text
    assert f.text == f"Something went wrong on my side while doing that. (error id {f.error_id})"
    [record] = caplog.records
    assert f.error_id in record.getMessage() and record.exc_info is not None  # the traceback


def _error_class_names(package: str) -> list[str]:
    """The name of every class ending in Error defined in `package`, one entry per definition."""
    return [
        node.name
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
    ]


def test_every_knowledge_error_is_a_knowledge_error() -> None:
    import importlib

    import knowledge

    stray = []
    for path in (ROOT / "knowledge").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        mod = importlib.import_module(module)
        for value in vars(mod).values():
            if (
                isinstance(value, type)
                and issubclass(value, Exception)
                and value.__module__ == module
                and value.__name__.endswith("Error")
                and not issubclass(value, KnowledgeError)
            ):
                stray.append(f"{module}.{value.__name__}")
    assert stray == []
    assert knowledge.KnowledgeError is KnowledgeError


def test_one_store_error_in_the_code_base() -> None:
    names = [*_error_class_names("bot"), *_error_class_names("knowledge")]
    assert names.count("StoreError") == 1
