"""Ingest and search figures for KnowledgeBase, next to a naive LangChain baseline.

Baseline: RecursiveCharacterTextSplitter(1000, 150) + langchain_chroma `Chroma.from_documents`
+ `similarity_search`, with the same embedding function. Each ingest runs in its own process
so peak RSS is that run's alone.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import base_corpus, synthesize
from bench.pool import PoolEmbedder, PoolLangChainEmbeddings, build_pool

Figures = dict[str, Any]


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: the latter survives exec, so a
    spawned child would report its parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _questions() -> list[str]:
    import json

    lines = (base_corpus() / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _kb(data: Path, embedder: Any) -> Any:
    from knowledge.config import KnowledgeConfig
    from knowledge.index import KnowledgeBase

    return KnowledgeBase(KnowledgeConfig(data_dir=data), embedder=embedder)


# --- children (each runs in a fresh process) -----------------------------------------------


def ours_ingest(folder: Path, data: Path, pool: Path, models: Path) -> Figures:
    start = time.perf_counter()
    report = _kb(data, PoolEmbedder(pool, models)).add([folder])
    first = time.perf_counter() - start
    rss = _peak_rss_mb()
    start = time.perf_counter()
    again = _kb(data, PoolEmbedder(pool, models)).add([folder])
    second = time.perf_counter() - start
    assert len(again.unchanged) == len(report.added) and not again.added
    return {"chunks": report.chunks, "seconds": first, "rss_mb": rss, "reingest_s": second}


def baseline_ingest(folder: Path, data: Path, pool: Path, models: Path) -> Figures:
    import chromadb
    from chromadb.config import Settings
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = PoolLangChainEmbeddings(PoolEmbedder(pool, models))
    client = chromadb.PersistentClient(str(data), settings=Settings(anonymized_telemetry=False))

    def ingest() -> int:
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)
        docs = [
            Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": str(p)})
            for p in sorted(folder.iterdir())
        ]
        chunks = splitter.split_documents(docs)
        Chroma.from_documents(
            chunks, embedding=embeddings, client=client, collection_name="baseline"
        )
        return len(chunks)

    start = time.perf_counter()
    count = ingest()
    first = time.perf_counter() - start
    rss = _peak_rss_mb()
    start = time.perf_counter()
    ingest()  # the naive way has no idempotency: it all happens again (and duplicates)
    second = time.perf_counter() - start
    stored = client.get_collection("baseline").count()
    return {
        "chunks": count,
        "seconds": first,
        "rss_mb": rss,
        "reingest_s": second,
        "after_reingest": stored,
    }


def ours_search(data: Path, pool: Path, models: Path, rounds: int) -> Figures:
    kb = _kb(data, PoolEmbedder(pool, models))
    start = time.perf_counter()
    kb.refresh()  # builds (or loads) the BM25 index from the store
    kb.search("warm up")
    warm = time.perf_counter() - start
    embedder = kb.embedder
    # The parts, measured exactly as search calls them (private access: bench only).
    collection = kb._searcher.loaded.collection
    lexical = kb._searcher.lexical
    hybrid, embed, vector, lex = [], [], [], []
    questions = _questions()
    for i in range(rounds):
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        kb.search(q, k=5)
        t1 = time.perf_counter()
        # The model itself: embed_query would return the vector the search just computed.
        v = embedder._model._queries(q)
        t2 = time.perf_counter()
        kb._store.nearest(collection, v, 20, None)
        t3 = time.perf_counter()
        lexical.search(q, 20)
        t4 = time.perf_counter()
        hybrid.append(t1 - t0)
        embed.append(t2 - t1)
        vector.append(t3 - t2)
        lex.append(t4 - t3)
    return {
        "warm_s": warm,
        "hybrid": _pcts(hybrid),
        "embed": _pcts(embed),
        "vector": _pcts(vector),
        "lexical": _pcts(lex),
        "rss_mb": _peak_rss_mb(),
    }


def baseline_search(data: Path, pool: Path, models: Path, rounds: int) -> Figures:
    import chromadb
    from chromadb.config import Settings
    from langchain_chroma import Chroma

    client = chromadb.PersistentClient(str(data), settings=Settings(anonymized_telemetry=False))
    store = Chroma(
        client=client,
        collection_name="baseline",
        embedding_function=PoolLangChainEmbeddings(PoolEmbedder(pool, models)),
    )
    store.similarity_search("warm up", k=5)
    times = []
    questions = _questions()
    for i in range(rounds):
        t0 = time.perf_counter()
        store.similarity_search(questions[i % len(questions)], k=5)
        times.append(time.perf_counter() - t0)
    return {"hybrid": _pcts(times)}


def dense_ingest(folder: Path, data: Path, models: Path, sample: int) -> Figures:
    """Our add with the real model vs the model alone on the same chunk texts."""
    from knowledge.ingest.chunking import chunk_document, index_text
    from knowledge.retrieval.embeddings import OnnxMiniLM
    from knowledge.sources import load_file

    files, texts = [], []
    for path in sorted(folder.iterdir()):
        doc = load_file(path, max_bytes=20 << 20)
        chunks = chunk_document(doc, datasource="default", chunk_size=1000, chunk_overlap=150)
        files.append(path)
        texts.extend(index_text(c) for c in chunks)
        if len(texts) >= sample:
            break
    model = OnnxMiniLM(models)
    model.embed_documents(texts[:8])

    def model_rate() -> float:
        start = time.perf_counter()
        model.embed_documents(texts)
        return len(texts) / (time.perf_counter() - start)

    before = model_rate()
    kb = _kb(data, model)
    start = time.perf_counter()
    report = kb.add(files)
    ours = report.chunks / (time.perf_counter() - start)
    after = model_rate()
    # Peak of this process: the real model embedding every chunk (ingest and model runs).
    return {
        "chunks": report.chunks,
        "ours": ours,
        "model": (before + after) / 2,
        "rss_mb": _peak_rss_mb(),
    }


def _pcts(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def _child(fn: Callable[..., Figures], *args: Any) -> Figures:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


# --- the run ---------------------------------------------------------------------------------


def run(quick: bool = False) -> None:
    small_copies, big_copies = (1, 8) if quick else (8, 80)
    sample, rounds = (48, 50) if quick else (256, 200)
    with tempfile.TemporaryDirectory(prefix="avatarbot-bench-") as tmp_name:
        tmp = Path(tmp_name)
        models = tmp / "models-data"
        say("building the corpora and the embedding pool …")
        small = tmp / "corpus-small"
        synthesize(small, small_copies)
        pool_file = tmp / "pool.npy"
        build_pool(_pool_texts(small, 64 if quick else 256), models, pool_file)

        say(f"ingest: ours ({small_copies} copies) …")
        ours = _child(ours_ingest, small, tmp / "ours-small", pool_file, models)
        say("ingest: baseline …")
        base = _child(baseline_ingest, small, tmp / "base-small", pool_file, models)
        say("search at the small size …")
        ours_s = _child(ours_search, tmp / "ours-small", pool_file, models, rounds)
        base_s = _child(baseline_search, tmp / "base-small", pool_file, models, rounds)

        say(f"ingest: ours, {big_copies} copies …")
        big = tmp / "corpus-big"
        synthesize(big, big_copies)
        ours_big = _child(ours_ingest, big, tmp / "ours-big", pool_file, models)
        say("search at the big size …")
        ours_big_s = _child(ours_search, tmp / "ours-big", pool_file, models, rounds)

        say(f"dense ingest with the real model (~{sample} chunks) …")
        dense = _child(dense_ingest, small, tmp / "ours-dense", models, sample)
    _print(ours, base, ours_s, base_s, ours_big, ours_big_s, dense, quick)


def _pool_texts(folder: Path, n: int) -> list[str]:
    texts = []
    for path in sorted(folder.iterdir()):
        text = path.read_text(encoding="utf-8")
        texts.extend(text[i : i + 1000] for i in range(0, len(text), 1000))
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _print(
    ours: Figures,
    base: Figures,
    ours_s: Figures,
    base_s: Figures,
    ours_big: Figures,
    ours_big_s: Figures,
    dense: Figures,
    quick: bool,
) -> None:
    rows: list[tuple[str, str, str, str, str]] = []

    def row(metric: str, a: str, b: str = "", ratio: str = "", target: str = "") -> None:
        rows.append((metric, a, b, ratio, target))

    ours_rate, base_rate = ours["chunks"] / ours["seconds"], base["chunks"] / base["seconds"]
    n_small, n_big = ours["chunks"], ours_big["chunks"]
    row(
        f"ingest {n_small} chunks (vs {base['chunks']}): chunks/s",
        f"{ours_rate:.0f}",
        f"{base_rate:.0f}",
        f"{ours_rate / base_rate:.2f}x",
    )
    row(
        "ingest peak RSS MB",
        f"{ours['rss_mb']:.0f}",
        f"{base['rss_mb']:.0f}",
        f"{ours['rss_mb'] / base['rss_mb']:.2f}x",
    )
    row(
        "re-ingest unchanged: seconds",
        f"{ours['reingest_s']:.2f}",
        f"{base['reingest_s']:.2f}",
        f"{base['reingest_s'] / ours['reingest_s']:.0f}x faster",
    )
    speedup = ours["seconds"] / ours["reingest_s"]
    row(
        "  first ingest / re-ingest",
        f"{speedup:.0f}x",
        f"{base['seconds'] / base['reingest_s']:.1f}x",
        "",
        ">= 50x",
    )
    row("  chunks stored after re-ingest", str(n_small), str(base["after_reingest"]))
    for label, s, b in (
        (f"search @{n_small}: p50 ms", ours_s["hybrid"]["p50"], base_s["hybrid"]["p50"]),
        (f"search @{n_small}: p99 ms", ours_s["hybrid"]["p99"], base_s["hybrid"]["p99"]),
    ):
        row(label, f"{s:.1f}", f"{b:.1f}", f"{s / b:.2f}x")
    for n, s in ((n_small, ours_s), (n_big, ours_big_s)):
        parts = s["embed"]["p50"] + s["vector"]["p50"] + s["lexical"]["p50"]
        row(f"@{n}: hybrid p50 / p99 ms", f"{s['hybrid']['p50']:.1f} / {s['hybrid']['p99']:.1f}")
        row(
            f"@{n}: parts p50 ms embed+vector+lexical",
            f"{s['embed']['p50']:.1f}+{s['vector']['p50']:.1f}+{s['lexical']['p50']:.1f}"
            f" = {parts:.1f}",
        )
        row(
            f"@{n}: hybrid p50 / sum of parts",
            f"{s['hybrid']['p50'] / parts:.2f}x",
            "",
            "",
            "<= 1.3x",
        )
        row(f"@{n}: BM25 build/load after a write", f"{s['warm_s']:.1f} s")
    row(
        f"ingest {n_big} chunks: chunks/s, peak RSS MB",
        f"{n_big / ours_big['seconds']:.0f}, {ours_big['rss_mb']:.0f}",
    )
    row(
        f"re-ingest {n_big} unchanged: first / re-ingest",
        f"{ours_big['seconds'] / ours_big['reingest_s']:.0f}x",
        "",
        "",
        ">= 50x",
    )
    row(
        f"dense ingest ({dense['chunks']} chunks): chunks/s vs model",
        f"{dense['ours']:.1f}",
        f"model {dense['model']:.1f}",
        f"{dense['ours'] / dense['model']:.2f}x",
        ">= 0.9x",
    )
    row("dense ingest with the real model: peak RSS MB", f"{dense['rss_mb']:.0f}", "", "", "< 400")

    from rich.console import Console
    from rich.table import Table

    table = Table(title="knowledge index bench" + (" (quick)" if quick else ""))
    for column in ("metric", "ours", "baseline", "ratio", "target"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for r in rows:
        table.add_row(*r)
    Console(width=130).print(table)
    print(
        "Store-side document vectors are real all-MiniLM-L6-v2 vectors from a pool embedded "
        "once (picked by text hash); query vectors use the real model. The dense-ingest row "
        "uses the real model for every chunk. Baseline: RecursiveCharacterTextSplitter(1000, "
        "150) + langchain_chroma Chroma.from_documents + similarity_search(k=5), same "
        f"embedding function. Corpora: the eval corpus grown with word-level variations. "
        f"p50 over {len(_questions())}-question cycles; median of a noisy shared machine."
    )
