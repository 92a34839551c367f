"""KnowledgeBase: idempotent upsert, crash safety, cross-process freshness, hybrid search."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from knowledge.config import KnowledgeConfig
from knowledge.index import BATCH, EmbeddingMismatchError, KnowledgeBase, Upload
from knowledge.retrieval.embeddings import make_embedder

HANDBOOK = {
    "tokens.md": "# API tokens\n\nRotate the Slack bot token every ninety days. Revoke the "
    "old token in the Slack admin page after the new one works.\n",
    "videos.md": "# Avatar videos\n\nVideos render in the background. The bot uploads the "
    "finished video into the thread when HeyGen reports completion.\n",
    "install.txt": "Installing the bot\n\nRun make demo to create the virtual environment and "
    "index the sample knowledge.\n",
}


class CountingEmbedder:
    """A deterministic stand-in for a model (bag of hashed words), counting its calls."""

    name = "counting-test"

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, hash(word) % 64] += 1.0
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def write_corpus(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def lexical_kb(data_dir: Path, **kw: object) -> KnowledgeBase:
    return KnowledgeBase(KnowledgeConfig(data_dir=data_dir, embeddings="none", **kw))


def stored_chunk_count(kb: KnowledgeBase) -> int:
    state = kb._store.state()
    return kb._store.count(state.collection) if state else 0


def test_add_search_list_stats(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "docs", HANDBOOK)
    kb = lexical_kb(tmp_path / "data")
    report = kb.add([corpus])
    assert sorted(Path(s).name for s in report.added) == sorted(HANDBOOK)
    assert not report.skipped and report.ok

    hits = kb.search("how often should I rotate the slack token?", k=3)
    assert Path(hits[0].chunk.source).name == "tokens.md"
    assert hits[0].chunk.title == "API tokens"
    assert 0.5 < hits[0].relevance <= 1.0
    assert hits[0].lexical_score and hits[0].dense_score is None
    assert kb.search("zebra migration patterns") == []

    stats = kb.stats()
    assert (stats.documents, stats.datasources, stats.embedding) == (3, {"default": 3}, "none")
    assert stats.chunks == stored_chunk_count(kb) >= 3
    assert {Path(d.source).name for d in kb.list_documents()} == set(HANDBOOK)


def test_unchanged_does_no_work_changed_replaces_all_chunks(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "docs", HANDBOOK)
    embedder = CountingEmbedder()
    kb = KnowledgeBase(KnowledgeConfig(data_dir=tmp_path / "data"), embedder=embedder)
    kb.add([corpus])
    calls = embedder.calls

    again = kb.add([corpus])
    assert len(again.unchanged) == 3 and not again.added and not again.updated
    assert embedder.calls == calls  # nothing embedded

    (corpus / "tokens.md").write_text("# API tokens\n\nTokens now never expire. " * 40)
    changed = kb.add([corpus])
    assert [Path(s).name for s in changed.updated] == ["tokens.md"]
    assert len(changed.unchanged) == 2
    assert kb.stats().chunks == stored_chunk_count(kb)  # old generation gone
    assert all("ninety" not in h.chunk.text for h in kb.search("rotate ninety days", k=10))
    assert Path(kb.search("tokens never expire")[0].chunk.source).name == "tokens.md"


def test_bad_inputs_are_reported_and_change_nothing(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "docs", HANDBOOK)
    kb = lexical_kb(tmp_path / "data", max_document_bytes=10_000)
    kb.add([corpus])
    before = kb.stats()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.md").write_text("")
    (bad / "binary.md").write_bytes(bytes(range(256)) * 8)
    (bad / "big.txt").write_text("x" * 20_000)
    (bad / "notes.xyz").write_text("unsupported")
    report = kb.add([bad, tmp_path / "missing.md"])
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.md", "binary.md", "big.txt", "notes.xyz", "missing.md"}
    assert all(reasons.values())
    assert not report.ok
    assert kb.stats() == before

    # A broken new version of a known document keeps the old content searchable.
    (corpus / "videos.md").write_bytes(b"\x00\x01\x02" * 100)
    report = kb.add([corpus / "videos.md"])
    assert report.skipped and not report.updated
    assert Path(kb.search("videos render in the background")[0].chunk.source).name == "videos.md"


def test_uploads_and_datasources(tmp_path: Path) -> None:
    kb = lexical_kb(tmp_path / "data")
    kb.add(
        [Upload("faq.md", b"# FAQ\n\nThe avatar speaks English and Spanish.\n")],
        datasource="support",
    )
    kb.add([write_corpus(tmp_path / "docs", HANDBOOK)])
    assert kb.stats().datasources == {"default": 3, "support": 1}
    in_default = kb.search("avatar speaks spanish", datasources=["default"])
    assert in_default and all(h.chunk.datasource == "default" for h in in_default)
    hit = kb.search("which languages does the avatar speak", datasources=["support"])[0]
    assert (hit.chunk.source, hit.chunk.datasource) == ("faq.md", "support")
    assert kb.remove_datasource("support") == ["faq.md"]
    assert kb.stats().datasources == {"default": 3}
    removed = kb.remove([str(tmp_path / "docs" / "videos.md"), "nope.md"])
    assert [Path(s).name for s in removed] == ["videos.md"]
    assert kb.stats().chunks == stored_chunk_count(kb)


def test_near_duplicate_copies_are_not_returned_twice(tmp_path: Path) -> None:
    text = HANDBOOK["tokens.md"]
    corpus = write_corpus(tmp_path / "docs", {**HANDBOOK, "tokens-copy.md": text})
    kb = lexical_kb(tmp_path / "data")
    kb.add([corpus])
    hits = kb.search("rotate slack token", k=5)
    texts = [h.chunk.text for h in hits]
    assert len(texts) == len(set(texts))
    assert sum(Path(h.chunk.source).name.startswith("tokens") for h in hits) == 1


def test_pages_that_share_a_footer_are_both_found(tmp_path: Path) -> None:
    # Help-desk articles: one short answer each, then the same long footer.
    footer = "Related articles: " + ", ".join(f"help guide {i}" for i in range(60)) + "."
    corpus = write_corpus(
        tmp_path / "docs",
        {
            "refunds.md": f"# Refunds\n\nA refund reaches your card in five days. {footer}\n",
            "exchanges.md": f"# Exchanges\n\nAn exchange ships in five days. {footer}\n",
        },
    )
    kb = lexical_kb(tmp_path / "data")
    kb.add([corpus])
    hits = kb.search("how many days for a refund or an exchange", k=5)
    assert {Path(h.chunk.source).name for h in hits} == {"refunds.md", "exchanges.md"}


def test_second_process_sees_adds_and_removes_without_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer, reader = lexical_kb(data), lexical_kb(data)
    writer.add([write_corpus(tmp_path / "docs", HANDBOOK)])
    assert Path(reader.search("rotate slack token")[0].chunk.source).name == "tokens.md"
    writer.add([Upload("faq.md", b"# FAQ\n\nThe avatar speaks Esperanto fluently.\n")])
    assert reader.search("esperanto")[0].chunk.source == "faq.md"
    writer.remove(["faq.md"])
    assert reader.search("esperanto") == []


def test_crash_midway_leaves_old_version_then_next_add_cleans_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    doc = tmp_path / "big.md"
    doc.write_text("# Guide\n\nThe original guide mentions walruses.\n")
    config = KnowledgeConfig(data_dir=data, chunk_size=100, chunk_overlap=0)
    KnowledgeBase(config, embedder=CountingEmbedder()).add([doc])
    old_chunks = KnowledgeBase(config, embedder=CountingEmbedder()).stats().chunks

    doc.write_text(
        "# Guide\n\n"
        + "\n\n".join(
            f"Paragraph {i} about penguins and their habits number {i}." for i in range(1000)
        )
    )
    # A real crash: the process dies (no cleanup, no finally) while embedding batch 2.
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_index import CountingEmbedder
        from knowledge.config import KnowledgeConfig
        from knowledge.index import KnowledgeBase
        class Dying(CountingEmbedder):
            def embed_documents(self, texts):
                if self.calls == 2:  # batch 1 is written by then
                    os._exit(17)
                return super().embed_documents(texts)
        config = KnowledgeConfig(data_dir={str(data)!r}, chunk_size=100, chunk_overlap=0)
        KnowledgeBase(config, embedder=Dying()).add([{str(doc)!r}])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 17, result.stderr.decode()[-2000:]

    kb = KnowledgeBase(config, embedder=CountingEmbedder())
    assert stored_chunk_count(kb) >= old_chunks + BATCH  # the crash left a batch behind
    assert kb.stats().chunks == old_chunks
    hits = kb.search("penguins habits walruses", k=10)
    assert [h.chunk.text for h in hits if "penguins" in h.chunk.text] == []
    assert any("walruses" in h.chunk.text for h in hits)

    report = kb.add([doc])
    assert [Path(s).name for s in report.updated] == ["big.md"]
    assert kb.stats().chunks == stored_chunk_count(kb) > 2 * BATCH  # no orphans
    assert not kb._store.pending()


def test_embedding_mismatch_is_refused_until_reindex(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lexical_kb(data).add([write_corpus(tmp_path / "docs", HANDBOOK)])
    kb = KnowledgeBase(KnowledgeConfig(data_dir=data), embedder=CountingEmbedder())
    with pytest.raises(EmbeddingMismatchError, match="avatarbot knowledge reindex"):
        kb.search("token")
    with pytest.raises(EmbeddingMismatchError):
        kb.add([Upload("x.md", b"# X\n\nsomething\n")])
    assert kb.reindex() == kb.stats().chunks
    assert kb.stats().embedding == "counting-test"
    hit = kb.search("rotate slack token")[0]
    assert Path(hit.chunk.source).name == "tokens.md" and hit.dense_score is not None
    with pytest.raises(EmbeddingMismatchError):
        lexical_kb(data).search("token")


async def test_async_twins_with_the_real_default_model(tmp_path: Path, models_dir: Path) -> None:
    corpus = write_corpus(tmp_path / "docs", HANDBOOK)
    kb = KnowledgeBase(
        KnowledgeConfig(data_dir=tmp_path / "data"),
        embedder=make_embedder("onnx-minilm", models_dir),
    )
    report = await kb.aadd([corpus])
    assert len(report.added) == 3
    # No shared words with the document: only the dense half can find it.
    hits = await kb.asearch("credential renewal schedule", k=3)
    assert Path(hits[0].chunk.source).name == "tokens.md"
    assert hits[0].dense_score is not None and hits[0].relevance > 0.2
    off_topic = await kb.asearch("best sourdough bread recipe", k=1)
    assert off_topic[0].relevance < hits[0].relevance
    assert off_topic[0].relevance < 0.2


def test_searches_keep_answering_while_a_long_add_runs(tmp_path: Path) -> None:
    class Slow(CountingEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.block = False
            self.entered, self.release = threading.Event(), threading.Event()

        def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
            if self.block:
                self.entered.set()
                assert self.release.wait(timeout=60)
            return super().embed_documents(texts)

        def embed_query(self, text: str) -> np.ndarray:
            return CountingEmbedder.embed_documents(self, [text])[0]  # queries never park

    embedder = Slow()
    kb = KnowledgeBase(KnowledgeConfig(data_dir=tmp_path / "data"), embedder=embedder)
    kb.add([write_corpus(tmp_path / "docs", HANDBOOK)])
    embedder.block = True
    adding = threading.Thread(target=kb.add, args=([Upload("new.md", b"# New\n\nfresh\n")],))
    adding.start()
    try:
        assert embedder.entered.wait(timeout=60)
        hits = kb.search("rotate slack token")  # the add is parked inside its embedding
        assert adding.is_alive() and Path(hits[0].chunk.source).name == "tokens.md"
    finally:
        embedder.release.set()
        adding.join(timeout=60)
    assert kb.search("fresh")[0].chunk.source == "new.md"


def test_a_large_folder_reports_progress_for_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"note-{i:04d}.txt").write_text(f"Note {i}: the code word is w{i}x.\n")
    seen: list[tuple[int, int]] = []
    report = lexical_kb(tmp_path / "data").add(
        [folder], progress=lambda done, total, _source: seen.append((done, total))
    )
    assert len(report.added) == 300 and report.chunks == 300
    assert seen[-1] == (300, 300) and all(total == 300 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_big_indexes_rebuild_bm25_in_the_background(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer, reader = lexical_kb(data), lexical_kb(data)
    reader.sync_rebuild_chunks = 0  # treat any size as big
    writer.add([write_corpus(tmp_path / "docs", HANDBOOK)])
    assert reader.search("rotate slack token")  # first build is always inline
    writer.add([Upload("faq.md", b"# FAQ\n\nThe avatar speaks Esperanto fluently.\n")])
    writer.remove([str(tmp_path / "docs" / "tokens.md")])
    # Removed chunks vanish at once (the manifest reloads inline) ...
    assert all(
        Path(h.chunk.source).name != "tokens.md" for h in reader.search("rotate slack token")
    )
    # ... and the new document is found once the background rebuild lands.
    deadline = time.monotonic() + 60
    while not reader.search("esperanto") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.search("esperanto")[0].chunk.source == "faq.md"


def test_crash_between_commit_and_version_bump_keeps_readers_consistent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\n\nThe original guide mentions walruses.\n")
    lexical_kb(data).add([doc])
    reader = lexical_kb(data)
    assert reader.search("walruses")  # the reader has loaded this version

    doc.write_text("# Guide\n\nThe new guide mentions penguins.\n")
    # A real crash right after the commit point, before the version stamp moves.
    script = textwrap.dedent(f"""
        import os
        from knowledge.config import KnowledgeConfig
        from knowledge.index import KnowledgeBase
        from knowledge.retrieval.store import ChunkStore
        ChunkStore.write_state = lambda *a, **k: os._exit(17)
        config = KnowledgeConfig(data_dir={str(data)!r}, embeddings="none")
        KnowledgeBase(config).add([{str(doc)!r}])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 17, result.stderr.decode()[-2000:]

    # The reader still follows the old version, whose chunks are all still there.
    hits = reader.search("guide mentions", k=5)
    assert [h.chunk.text for h in hits] and all("walruses" in h.chunk.text for h in hits)
    # The next writer sweeps the crashed one (its process is gone): the replaced generation
    # goes, the version moves, and every reader sees the committed document, once.
    lexical_kb(data).add([Upload("note.md", b"# Note\n\nA note.\n")])
    hits = reader.search("guide mentions", k=5)
    guide = [h.chunk.text for h in hits if h.chunk.title == "Guide"]
    assert len(guide) == 1 and "penguins" in guide[0] and "walruses" not in guide[0]
    assert reader.stats().chunks == stored_chunk_count(reader)
    assert not reader._store.pending()


def test_an_add_running_across_a_reindex_is_told_to_add_again(tmp_path: Path) -> None:
    class Parking(CountingEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.entered, self.release = threading.Event(), threading.Event()

        def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
            if self.calls == 1:  # the first batch is written by the time the second embeds
                self.entered.set()
                assert self.release.wait(timeout=60)
            return super().embed_documents(texts)

    data = tmp_path / "data"
    config = KnowledgeConfig(data_dir=data, chunk_size=100, chunk_overlap=0)
    KnowledgeBase(config, embedder=CountingEmbedder()).add(
        [write_corpus(tmp_path / "docs", HANDBOOK)]
    )
    doc = tmp_path / "big.md"
    paragraphs = (f"Paragraph {i} about penguins, number {i}." for i in range(1000))
    doc.write_text("# Guide\n\n" + "\n\n".join(paragraphs))
    adder = KnowledgeBase(config, embedder=Parking())
    reports = []
    adding = threading.Thread(target=lambda: reports.append(adder.add([doc])))
    adding.start()
    try:
        assert adder._vectors.embedder.entered.wait(timeout=60)
        assert KnowledgeBase(config, embedder=CountingEmbedder()).reindex() > 0
    finally:
        adder._vectors.embedder.release.set()
        adding.join(timeout=60)
    (report,) = reports
    assert not report.added and "reindexed while this add ran" in report.skipped[0].reason
    kb = KnowledgeBase(config, embedder=CountingEmbedder())
    assert kb.stats().chunks == stored_chunk_count(kb) and kb.stats().documents == 3
    assert not kb._store.pending()
