"""The lexical half of hybrid search: BM25 (bm25s + PyStemmer) over the indexed chunk texts.

The index is derived data: built from the vector store's chunks, saved under
`<data_dir>/lexical/<version>/`, and rebuilt whenever the store's version stamp moves.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")
_STOPWORDS = "en_plus"  # the longer list: also drops question words (how, should, …)


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, Snowball-stemmed tokens: what BM25 and coverage compare."""
    return bm25s.tokenize(
        list(texts),
        stopwords=_STOPWORDS,
        stemmer=_STEMMER,
        return_ids=False,
        show_progress=False,
    )


class LexicalIndex:
    """BM25 over chunks identified by id, each tagged with its datasource."""

    def __init__(
        self,
        ids: list[str],
        datasources: list[str],
        retriever: bm25s.BM25 | None,
        doc_freq: dict[str, int],
    ) -> None:
        self.ids = ids
        self._datasources = np.asarray(datasources, dtype=object)
        self._retriever = retriever
        self._doc_freq = doc_freq

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls, ids: Sequence[str], texts: Sequence[str], datasources: Sequence[str]
    ) -> LexicalIndex:
        if not ids:
            return cls([], [], None, {})
        tokens = tokenize(texts)
        doc_freq: dict[str, int] = {}
        for doc in tokens:
            for term in set(doc):
                doc_freq[term] = doc_freq.get(term, 0) + 1
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(list(ids), list(datasources), retriever, doc_freq)

    # --- persistence ---------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write to `folder` atomically: a private temp folder renamed into place. If another
        process got there first, its copy (of the same version) is kept."""
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            if self._retriever is not None:
                self._retriever.save(str(tmp / "bm25"))
            meta = {"ids": self.ids, "datasources": list(self._datasources), "df": self._doc_freq}
            (tmp / "meta.json").write_text(json.dumps(meta))
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        meta = json.loads((folder / "meta.json").read_text())
        retriever = bm25s.BM25.load(str(folder / "bm25")) if meta["ids"] else None
        return cls(meta["ids"], meta["datasources"], retriever, meta["df"])

    # --- querying ------------------------------------------------------------------------

    def search(
        self, query: str, n: int, datasources: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Best-first (chunk id, BM25 score), only chunks that match at least one term."""
        if self._retriever is None or n <= 0:
            return []
        known = [t for t in tokenize([query])[0] if t in self._retriever.vocab_dict]
        if not known:
            return []
        mask = None
        if datasources is not None:
            mask = np.isin(self._datasources, list(datasources)).astype(np.float32)
        scores = self._retriever.get_scores(known, weight_mask=mask)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > n:
            top = np.argpartition(-scores[candidates], n - 1)[:n]
            candidates = candidates[top]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in order]

    def idf(self, term: str) -> float:
        """BM25's idf; a term absent from the corpus weighs as much as the rarest present one
        (not more: an unknown word is as often a typo or filler as the crux of the question)."""
        n = len(self.ids)
        df = max(1, self._doc_freq.get(term, 0))
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def coverage(self, query: str, text: str) -> float:
        """Share of the query's meaning present in `text`, in [0, 1].

        The sum of idf over the query terms found in the text, divided by the sum over all
        query terms: matching only common words scores low, matching the rare ones high, and
        a query about something the corpus never mentions scores near 0. Comparable across
        queries, unlike a raw BM25 score: this is the lexical `relevance`.
        """
        terms = set(tokenize([query])[0])
        if not terms:
            return 0.0
        present = set(tokenize([text])[0])
        weights = {t: self.idf(t) for t in terms}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in present) / total if total else 0.0
