"""The optional cross-encoder re-ranker: its ordering, and every way it can fail to load
(no model is downloaded here: the failures are checked before or instead of a download)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.models import Chunk, Hit
from knowledge.retrieval.rerank import CrossEncoderReranker, RerankerError, make_reranker, rerank

INSTALLED = importlib.util.find_spec("sentence_transformers") is not None


def hit(n: int, text: str) -> Hit:
    chunk = Chunk(id=f"c{n}", source=f"p{n}.md", title=f"Page {n}", text=text)
    return Hit(chunk=chunk, score=1.0 / (n + 1))


def test_the_cross_encoder_order_wins_and_keeps_k() -> None:
    found = [hit(0, "billing address"), hit(1, "reset a password"), hit(2, "password rules")]

    def score(pairs: list[tuple[str, str]]) -> list[float]:
        # Reads the question and the passage (with its title) together.
        assert all(q == "reset password" and p.startswith("Page") for q, p in pairs)
        return [p.count("password") + ("reset" in p) for _, p in pairs]

    ranked = rerank("reset password", found, score, k=2)
    assert [h.chunk.id for h in ranked] == ["c1", "c2"]


@pytest.mark.parametrize("spec", ["", "none", " NONE "])
def test_off_by_default(spec: str) -> None:
    assert make_reranker(spec) is None


def test_unknown_kind_and_missing_folder_fail_when_the_knowledge_base_opens(
    tmp_path: Path,
) -> None:
    for spec, reason in [
        ("colbert:x", "unknown re-ranker; use cross-encoder:<name-or-path>"),
        ("cross-encoder:", "unknown re-ranker"),
        ("cross-encoder:./no/such/model", "no model folder at ./no/such/model"),
    ]:
        config = KnowledgeConfig(data_dir=tmp_path / "data", embeddings="none", reranker=spec)
        with pytest.raises(RerankerError, match=reason) as caught:
            KnowledgeBase(config)
        assert "unset RERANKER" in str(caught.value)


def test_a_folder_that_cannot_be_loaded_is_a_clear_error(tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(f"cross-encoder:{tmp_path}")  # exists, holds no model
    # Without the package: says how to install it; with it: says the model cannot load.
    reason = "cannot load model" if INSTALLED else r"pip install sentence-transformers"
    with pytest.raises(RerankerError, match=reason):
        reranker([("q", "p")])


def test_search_reports_a_bad_reranker_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVATARBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EMBEDDINGS", "none")
    monkeypatch.setenv("RERANKER", f"cross-encoder:{tmp_path / 'missing-model'}")
    result = CliRunner().invoke(app, ["knowledge", "search", "tokens"])
    assert result.exit_code != 0
    assert "RERANKER" in result.output and "no model folder" in result.output
    assert "Traceback" not in result.output
