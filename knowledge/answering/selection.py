"""Which sentences answer: every readable sentence of the retrieved passages scored against
the question, and a short, coherent span of the best passage picked.

- a sentence's relevance is its stemmed term overlap weighted by idf over the candidate
  sentences (word pairs count extra, very long sentences are damped), plus, when the
  knowledge base's embedding is given, its similarity to the question; it borrows some
  relevance from its best neighbour ("We offer none. One provider is X." are chosen
  together); the retriever's rank and a matching heading are a small prior;
- the answer is a span of one passage, because documents answer that way: near the start
  of a section, in sentences that follow each other. The passage is the one with the best
  sentence, where the retrieval rank counts against later passages and a section heading
  that names the question's words counts for it; the span starts at its first relevant
  sentence (its lead, unless that is about something else), keeps lists and steps whole
  (a lead-in and its items are one unit) and runs in document order until the passage turns
  to something else, or, past a short answer, until the question is covered. A sentence of
  another passage is added only when it holds a part of the question the span does not, so
  a weakly related passage is never cited as padding. `rank_passages` ranks the passages by
  their best sentence for a language model;
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
from typing import Any

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from knowledge.answering.prose import readable_sentences
from knowledge.models import Hit
from knowledge.retrieval.query import ask_and_situation

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
    opens: bool = False  # the first readable sentence of its passage


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
    return [
        Candidate(rank, *sentence)
        for rank, hit in enumerate(hits)
        for sentence in _sentences_of(hit.chunk.text)
    ]


@lru_cache(maxsize=512)  # ~15 KB each: a burst's passages, a few MB
def _sentences_of(text: str) -> tuple[tuple[Any, ...], ...]:
    """A passage's readable sentences, analysed (Candidate's fields after `passage`). The
    same popular passages come back question after question: each is split once."""
    found = []
    for k, (position, sentence) in enumerate(readable_sentences(text)):
        words = Counter(terms(sentence))
        found.append((position, sentence, words, bigrams(sentence), sum(words.values()), k == 0))
    return tuple(found)


def _near_duplicate(a: Candidate, b: Candidate) -> bool:
    sa, sb = set(a.terms), set(b.terms)
    if not sa or not sb:
        return a.text == b.text
    return len(sa & sb) / min(len(sa), len(sb)) >= 0.8


def _refers_back(sentence: str) -> bool:
    return bool(_ANAPHOR.match(sentence))


Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised vectors, one a row

# Selection weights: round numbers, chosen for what they mean, not fitted to one set. All
# are shares of something named beside them, so they read without a key:
# - how a sentence's relevance is made
_SEMANTIC = 0.5  # of a sentence's own relevance: the embedding (the rest: shared words)
_CONTEXT = 0.5  # of its best neighbour's own relevance, lent to it ("We offer none. X does.")
_PASSAGE_PRIOR = 0.15  # the retriever's rank and a matching title or heading, as a prior
# - which sentences may be said at all
_FLOOR = 0.5  # of the best relevance: below it a sentence is not said
_OWN_FLOOR = 0.25  # of the best own match: relevant only through a neighbour is not enough
# - which passage answers: the one with the best sentence, where each place down the
#   retrieval ranking costs _RANK_COST of the best relevance and a section heading that
#   holds the question's words (as a share of their idf) earns up to _SECTION of it
_RANK_COST = 0.15
_SECTION = 0.3
# - where its answer starts: at the first sentence with _START of the passage's best
_START = 0.5
# - how long it runs: past _ENOUGH characters it stops at a sentence below _FLOOR or once
#   the answer holds _COVERED of the question's idf weight
_ENOUGH = 150
_COVERED = 0.6
# - what another passage may add: a sentence nearly as relevant as the best (_STILL) that
#   holds at least _ADDS of the question's idf weight the span does not
_STILL = 0.9
_ADDS = 0.25
# - a word of the situation told around the question weighs _SITUATION of a word it asks
_SITUATION = 0.5


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
    # What the person asks outweighs the situation they tell around it.
    ask, situation = ask_and_situation(question)
    if situation:
        asked = set(terms(ask))
        idf = {t: w if t in asked else _SITUATION * w for t, w in idf.items()}
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
    # The section heading alone (the title is the same for every passage of a page).
    section = [
        sum(idf[t] for t in set(terms(h.chunk.section.split(">")[-1])) if t in idf) / total_idf
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
    if max_sentences <= 0 or not pool:
        return Selection([], passage_scores)
    chosen = _span_pick(candidates, relevance, pool, idf, best, section, max_sentences, max_chars)
    picked = _with_referents([candidates[i] for i in chosen], candidates, max_sentences, max_chars)
    return Selection(picked, passage_scores)


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


def _covered(candidates: list[Candidate], chosen: list[int], idf: dict[str, float]) -> float:
    """The share of the question's idf weight that the chosen sentences hold."""
    total = sum(idf.values()) or 1.0
    return sum(w for t, w in idf.items() if any(t in candidates[j].terms for j in chosen)) / total


def _span_pick(
    candidates: list[Candidate],
    relevance: np.ndarray,
    pool: list[int],
    idf: dict[str, float],
    best: float,
    section: list[float],
    max_sentences: int,
    max_chars: int,
) -> list[int]:
    """A coherent span of one passage: documents answer near the start of a section, in
    sentences that follow each other, so the answer is the lead passage's first relevant
    sentence and what follows it; a sentence of another passage is added only when it holds
    part of the question the span does not."""
    in_pool = set(pool)
    by_passage: dict[int, list[int]] = {}
    for i, c in enumerate(candidates):
        by_passage.setdefault(c.passage, []).append(i)

    def passage_value(p: int) -> float:
        said = [float(relevance[i]) for i in by_passage[p] if i in in_pool]
        if not said:
            return -1.0
        # The retriever's rank is evidence too: a later passage must be clearly better; a
        # section whose heading names what the question asks is about it.
        return max(said) + (_SECTION * section[p] - _RANK_COST * p) * best

    lead = max(by_passage, key=lambda p: (passage_value(p), -p))
    sentences = by_passage[lead]
    top = max(float(relevance[i]) for i in sentences if i in in_pool)
    first = next(
        k for k, i in enumerate(sentences) if i in in_pool and relevance[i] >= _START * top
    )
    chosen: list[int] = []
    length = 0
    for i in sentences[first:]:
        size = len(candidates[i].text)
        if len(chosen) >= max_sentences or (chosen and length + size > max_chars):
            break
        if i not in in_pool:  # the span ends where the passage turns to something else
            break
        if any(_near_duplicate(candidates[i], candidates[j]) for j in chosen):
            continue
        if length >= _ENOUGH and (
            relevance[i] < _FLOOR * best or _covered(candidates, chosen, idf) >= _COVERED
        ):
            break
        chosen.append(i)
        length += size
    # Another passage's sentence, when it says what the question asks and the span does not.
    for i in sorted(pool, key=lambda i: -relevance[i]):
        if len(chosen) >= max_sentences or candidates[i].passage == lead:
            continue
        size = len(candidates[i].text)
        if length + size > max_chars or relevance[i] < _STILL * best:
            continue
        if any(_near_duplicate(candidates[i], candidates[j]) for j in chosen):
            continue
        gain = _covered(candidates, [*chosen, i], idf) - _covered(candidates, chosen, idf)
        if gain >= _ADDS:
            chosen.append(i)
            length += size
    return chosen
