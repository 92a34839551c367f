"""Which sentences answer: every readable sentence of the retrieved passages scored against
the question, and a short, non-redundant set picked.

- a sentence's relevance is its stemmed term overlap weighted by idf over the candidate
  sentences (word pairs count extra, very long sentences are damped), plus, when the
  knowledge base's embedding is given, its similarity to the question; it borrows some
  relevance from its best neighbour ("We offer none. One provider is X." are chosen
  together); the retriever's rank and a matching heading are a small prior;
- the set is picked by maximal marginal relevance; a sentence far below the best (or
  relevant only through its neighbour) is not said, so a weakly related passage is never
  cited as padding. The length adapts to relevance: once the answer holds most of the
  question's weight, only a sentence nearly as relevant as the best is added, and at equal
  relevance the shorter sentence wins. `rank_passages` ranks the passages the same way for a
  language model;
- near duplicates (overlapping chunks) are dropped, and a chosen sentence that opens with a
  pronoun brings the sentence before it (its referent).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from knowledge.answering.prose import readable_sentences
from knowledge.models import Hit

# Words that carry no topic in a question ("how do I …", "what should we …").
_FILLER = frozenset(STOPWORDS_EN) | {
    "how", "what", "which", "who", "whom", "why", "when", "where", "do", "does", "did", "can",
    "could", "should", "would", "may", "might", "must", "shall", "will", "i", "me", "my", "we",
    "our", "you", "your", "us", "am", "been", "being", "has", "have", "had", "get", "make",
    "about", "from", "any", "some", "so", "than", "too", "very", "just", "also", "its",
    "there", "here", "out", "up", "all", "use", "using", "used",
}  # fmt: skip
_ARTICLES = frozenset(STOPWORDS_EN)
_TERM = re.compile(r"[A-Za-z0-9]+")  # ANSWER_MIN_SCORE and ask-video match their parts
_ANAPHOR = re.compile(
    r"^(?:\w+\s+){0,2}(?:it|its|this|these|that|those|they|them|their)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Candidate:
    passage: int  # rank of its hit
    position: int  # order inside the passage
    text: str
    terms: Counter[str]
    pairs: set[tuple[str, str]]
    size: int  # content words that dilute its point


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """Stemmed content words."""
    words = [w.lower() for w in _TERM.findall(text)]
    return _stemmer().stemWords([w for w in words if w not in _FILLER])


def bigrams(text: str) -> set[tuple[str, str]]:
    """Adjacent stemmed words (articles and the like skipped): "follow-up" is not "followed"."""
    words = [w.lower() for w in _TERM.findall(text)]
    stems = _stemmer().stemWords([w for w in words if w not in _ARTICLES])
    return set(itertools.pairwise(stems))


def _candidates(hits: Sequence[Hit]) -> list[Candidate]:
    found: list[Candidate] = []
    for rank, hit in enumerate(hits):
        for position, sentence in readable_sentences(hit.chunk.text):
            words = Counter(terms(sentence))
            found.append(
                Candidate(rank, position, sentence, words, bigrams(sentence), sum(words.values()))
            )
    return found


def _near_duplicate(a: Candidate, b: Candidate) -> bool:
    sa, sb = set(a.terms), set(b.terms)
    if not sa or not sb:
        return a.text == b.text
    return len(sa & sb) / min(len(sa), len(sb)) >= 0.8


def _refers_back(sentence: str) -> bool:
    return bool(_ANAPHOR.match(sentence))


Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised vectors, one a row

# Selection weights. Round numbers, chosen for what they mean, not fitted to one set.
_SEMANTIC = 0.5  # share of a sentence's relevance that comes from the embedding
_CONTEXT = 0.5  # how much a sentence's best neighbour lends it ("We offer none. X does.")
_MMR = 0.7  # relevance vs novelty when picking the next sentence
_FLOOR = 0.5  # a sentence must reach this share of the best relevance to be said at all
_OWN_FLOOR = 0.25  # … and this share of the best match on its own
_PASSAGE_PRIOR = 0.15  # the retriever's rank, as a small prior
# Length adapts to relevance: once the answer has some substance (_ENOUGH characters) and
# holds most of the question's weight (_COVERED of its idf), a further sentence must be
# nearly as relevant as the best (_STILL) to be added. At equal relevance the shorter
# sentence wins: each 200 characters cost _LENGTH of the best relevance.
_ENOUGH = 150
_COVERED = 0.6
_STILL = 0.9
_LENGTH = 0.1


@dataclass(frozen=True)
class Selection:
    """The sentences chosen for a question and how every passage ranks for it."""

    chosen: list[Candidate]
    passage_scores: list[float]  # per hit: the relevance of its best sentence (0: nothing)


def rank_passages(question: str, hits: Sequence[Hit], embed: Embed | None = None) -> list[int]:
    """Indexes of the `hits` that hold a sentence relevant to `question`, best first by their
    best sentence; empty when none does."""
    # Passage scores come before the picking: ask for no sentences, skip picking them.
    scores = select(question, hits, max_sentences=0, embed=embed).passage_scores
    return sorted((i for i in range(len(hits)) if scores[i] > 0), key=lambda i: (-scores[i], i))


def select(
    question: str,
    hits: Sequence[Hit],
    *,
    max_sentences: int = 4,
    max_chars: int = 500,
    embed: Embed | None = None,
) -> Selection:
    """Score every readable sentence against the question (lexical overlap weighted by idf,
    plus embedding similarity), lend each some of its neighbours' relevance, and pick a short
    non-redundant set by maximal marginal relevance."""
    query = Counter(terms(question))
    candidates = _candidates(hits)
    nothing = Selection([], [0.0] * len(hits))
    if not query or not candidates:
        return nothing
    n = len(candidates)
    df = Counter(t for c in candidates for t in set(c.terms))
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
    # Word pairs of the question found in a sentence are strong evidence ("follow-up").
    query_pairs = {p for p in bigrams(question) if p[0] in idf or p[1] in idf}

    def lexical(c: Candidate) -> float:
        matched = sum(idf[t] * min(c.terms[t], 2) for t in query if t in c.terms)
        matched += sum(max(idf.get(a, 0.0), idf.get(b, 0.0)) for a, b in query_pairs & c.pairs)
        return matched / (1.0 + max(0, c.size - 25) / 25)  # a long sentence buries its point

    lex = np.array([lexical(c) for c in candidates])
    if lex.max() <= 0:
        return nothing
    own = lex / lex.max()
    vectors = None
    if embed is not None:
        found = embed([question, *(c.text for c in candidates)])
        query_vector, vectors = found[0], found[1:]
        # Cosines sit on a model's own scale (unrelated text may score 0.1 or 0.7): spread
        # them between this question's least and most similar sentence.
        cosine = vectors @ query_vector
        spread = float(cosine.max() - cosine.min())
        semantic = (cosine - cosine.min()) / spread if spread > 1e-6 else np.ones(n)
        own = (1 - _SEMANTIC) * own + _SEMANTIC * semantic
    # A passage whose title or section heading matches the question is about it.
    total_idf = sum(idf.values()) or 1.0
    heading = [
        sum(idf[t] for t in set(terms(f"{h.chunk.title} {h.chunk.section}")) if t in idf)
        / total_idf
        for h in hits
    ]
    place = {(c.passage, c.position): i for i, c in enumerate(candidates)}
    relevance = np.zeros(n)
    for i, c in enumerate(candidates):
        around = [place.get((c.passage, c.position + d)) for d in (-1, 1)]
        context = max((own[j] for j in around if j is not None), default=0.0)
        prior = _PASSAGE_PRIOR * (1 / (1 + c.passage) + heading[c.passage]) / 2
        relevance[i] = own[i] + _CONTEXT * context + prior
    best = float(relevance.max())
    pool = [i for i in range(n) if lex[i] > 0 or (vectors is not None and own[i] > 0)]
    # Relevant in context, and about the question in its own right (a neighbour lends
    # weight, not a topic).
    pool = [i for i in pool if relevance[i] >= _FLOOR * best and own[i] >= _OWN_FLOOR]
    passage_scores = [0.0] * len(hits)
    for i in pool:
        p = candidates[i].passage
        passage_scores[p] = max(passage_scores[p], float(relevance[i]))
    chosen: list[int] = []
    length = 0
    while pool and len(chosen) < max_sentences:

        def marginal(i: int) -> float:
            if not chosen:
                return float(relevance[i])
            overlap = max(_similarity(candidates, vectors, i, j) for j in chosen)
            return _MMR * float(relevance[i]) - (1 - _MMR) * best * overlap

        def value(i: int) -> float:
            return marginal(i) - _LENGTH * best * len(candidates[i].text) / 200

        top = max(pool, key=value)
        pool.remove(top)
        if any(_near_duplicate(candidates[top], candidates[j]) for j in chosen):
            continue
        if chosen and length + len(candidates[top].text) > max_chars:
            continue
        if length >= _ENOUGH and relevance[top] < _STILL * best:
            covered = sum(
                w for t, w in idf.items() if any(t in candidates[j].terms for j in chosen)
            )
            if covered >= _COVERED * total_idf:
                break
        chosen.append(top)
        length += len(candidates[top].text)
    picked = _with_referents([candidates[i] for i in chosen], candidates, max_sentences, max_chars)
    return Selection(picked, passage_scores)


def _similarity(candidates: list[Candidate], vectors: np.ndarray | None, i: int, j: int) -> float:
    """How much sentence i repeats sentence j: embedding cosine, else shared terms."""
    if vectors is not None:
        return max(0.0, float(vectors[i] @ vectors[j]))
    a, b = set(candidates[i].terms), set(candidates[j].terms)
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def _with_referents(
    chosen: list[Candidate], candidates: list[Candidate], max_sentences: int, max_chars: int
) -> list[Candidate]:
    """Add the sentence before one that opens with a pronoun ("It also …"): its referent."""
    by_place = {(c.passage, c.position): c for c in candidates}
    result = list(chosen)
    length = sum(len(c.text) for c in result)
    for c in chosen:
        neighbour = by_place.get((c.passage, c.position - 1))
        if neighbour is None or neighbour in result or not _refers_back(c.text):
            continue
        if len(result) < max_sentences + 1 and length + len(neighbour.text) <= max_chars:
            result.append(neighbour)
            length += len(neighbour.text)
    return result
