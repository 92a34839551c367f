"""Pure ranking logic: fuse ranked lists, drop near-duplicate texts. No I/O.

Fusion is weighted reciprocal-rank fusion (Cormack et al., 2009): a document at rank r in a
list contributes weight / (k + r). Ranks, not raw scores, are fused because BM25 scores and
cosine similarities live on unrelated scales.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence

RRF_K = 60
_WORD = re.compile(r"\w+")


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]],
    weights: Mapping[str, float] | None = None,
    k: int = RRF_K,
) -> list[tuple[str, float]]:
    """Fuse several best-first id lists into one best-first list of (id, fused score).

    Ties are broken by the best single rank, then by id, so the order is deterministic.
    """
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for name, ids in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, doc_id in enumerate(ids, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
            best_rank[doc_id] = min(best_rank.get(doc_id, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best_rank[item[0]], item[0]))


def shingles(text: str, size: int = 3) -> frozenset[str]:
    """Word n-grams of lower-cased text: the unit near-duplicate detection compares."""
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 1.0 if a == b else 0.0
    return len(a & b) / len(a | b)


def drop_near_duplicates(
    items: Iterable[tuple[str, str, str]], limit: int, threshold: float = 0.8
) -> list[str]:
    """Keep the first `limit` ids whose text is not a near-copy of a kept one of its page.

    `items` is (id, text, page) best first. Exact copies (after whitespace and case folding)
    are caught by hash, near copies by word-trigram Jaccard >= threshold; neighbouring
    chunks that merely overlap share only the overlap, far below the threshold, so they are
    kept. Only copies within one page are dropped: two pages that carry the same boilerplate
    (a footer, a "related articles" block) are different answers, and dropping one's chunk
    because the other's was kept would drop a right page from the results (measured as lost
    pages at depth on a help-desk set whose articles share their footers).
    """
    kept: list[str] = []
    seen: dict[str, tuple[set[str], list[frozenset[str]]]] = {}
    for doc_id, text, page in items:
        hashes, grams_kept = seen.setdefault(page, (set(), []))
        normalised = " ".join(_WORD.findall(text.lower()))
        digest = hashlib.blake2b(normalised.encode(), digest_size=16).hexdigest()
        if digest in hashes:
            continue
        grams = shingles(text)
        if any(jaccard(grams, other) >= threshold for other in grams_kept):
            continue
        hashes.add(digest)
        grams_kept.append(grams)
        kept.append(doc_id)
        if len(kept) >= limit:
            break
    return kept
