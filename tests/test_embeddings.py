"""Embedding providers: the offline default works with no network; others fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

from knowledge.retrieval.embeddings import EmbeddingError, OnnxMiniLM, make_embedder


def test_none_means_lexical_only(tmp_path: Path) -> None:
    assert make_embedder("none", tmp_path) is None


def test_onnx_minilm_offline_and_semantic(models_dir: Path) -> None:
    embedder = make_embedder("onnx-minilm", models_dir)
    assert isinstance(embedder, OnnxMiniLM)
    onnx_dir = models_dir / "models" / "all-MiniLM-L6-v2" / "onnx"
    assert (onnx_dir / "model.onnx").exists() and (onnx_dir / "tokenizer.json").exists()
    vectors = embedder.embed_documents(
        [
            "How do I reset my password?",
            "Steps to change a forgotten account password",
            "The weather in Lisbon is sunny in July",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > 0.5 > unrelated
    # Batch padding does not change a text's vector: alone or beside a long text, same result.
    query = embedder.embed_query("How do I reset my password?")
    assert float(query @ vectors[0]) > 0.9999


def test_unknown_provider_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="onnx-minilm"):
        make_embedder("word2vec", tmp_path)


def test_sentence_transformers_missing_names_alternatives(tmp_path: Path) -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("sentence-transformers is installed here")
    with pytest.raises(EmbeddingError) as info:
        make_embedder("sentence-transformers:all-MiniLM-L6-v2", tmp_path)
    assert "EMBEDDINGS=onnx-minilm" in str(info.value) and "EMBEDDINGS=none" in str(info.value)


def test_openai_without_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY"):
        make_embedder("openai:text-embedding-3-small", tmp_path)


@pytest.mark.parametrize("fold_weights", [False, True])
def test_vectors_are_those_of_the_unmodified_model(models_dir: Path, fold_weights: bool) -> None:
    """We load the pinned model with its word-embedding lookup rewritten (int8 rows,
    `knowledge.retrieval.onnx_graph`) and pad per batch: an index built before, or by
    chroma's own embedding function on the file as shipped, must keep matching."""
    texts = [
        "How do I reset my password?",
        "Claude can summarise long documents; prompts work best when clear and direct. " * 12,
        "émojis, 数字 and rare tokens: zyxwvut 12345",
    ]
    reference = ONNXMiniLM_L6_V2(preferred_providers=["CPUExecutionProvider"])
    reference.DOWNLOAD_PATH = models_dir / "models" / "all-MiniLM-L6-v2"
    expected = reference._forward(texts)
    ours = OnnxMiniLM(models_dir, fold_weights=fold_weights)
    assert np.abs(ours.embed_documents(texts) - expected).max() < 1e-5
    assert np.abs(ours.embed_query(texts[0]) - expected[0]).max() < 1e-5
