"""The extractive composer: a short answer built from the best sentences of retrieved passages.

Pure: hits in, text and the hits it cites out; no I/O, no model. Used when no language model
is configured, so it has to read as an answer rather than as a dump of chunks:

- passages are turned into prose first (headings, code blocks, table rules, list markers,
  link targets, emphasis and HTML tags dropped; hard-wrapped lines joined);
- every sentence is scored against the question: stemmed term overlap weighted by idf over
  the candidate sentences, damped for very long sentences, plus a bonus for its passage's
  rank; terms a chosen sentence already covers count less for the next one, so the answer
  covers the question instead of repeating its best part;
- fragments (a chunk that starts mid-sentence, a sentence cut at the chunk's end) and near
  duplicates (overlapping chunks) are dropped;
- the chosen sentences keep the order of their passages and, inside a passage, the order
  of the document; each run of sentences from one passage ends with its `[n]` citation.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from knowledge.models import Hit
from knowledge.sentences import split_sentences

# Words that carry no topic in a question ("how do I …", "what should we …").
_FILLER = frozenset(STOPWORDS_EN) | {
    "how", "what", "which", "who", "whom", "why", "when", "where", "do", "does", "did", "can",
    "could", "should", "would", "may", "might", "must", "shall", "will", "i", "me", "my", "we",
    "our", "you", "your", "us", "am", "been", "being", "has", "have", "had", "get", "make",
    "about", "from", "any", "some", "so", "than", "too", "very", "just", "also", "its",
    "there", "here", "out", "up", "all", "use", "using", "used",
}  # fmt: skip
_ARTICLES = frozenset(STOPWORDS_EN)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_'-]*")
_TERM = re.compile(r"[A-Za-z0-9]+")  # ANSWER_MIN_SCORE and ask-video match their parts

_FENCED = re.compile(r"^\s*(```|~~~).*?^\s*\1[^\n]*$", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s.*$", re.MULTILINE)
_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+])\1{2,}\s*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_RST_LITERAL = re.compile(r"``([^`]+)``")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_SOURCE_LINE = re.compile(r"^\s*(?:source|url|link)s?:\s*\S+\s*$", re.IGNORECASE | re.MULTILINE)
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_TERMINAL = re.compile(r"[.!?][\"')\]]*$")
_EMPTY_PARENS = re.compile(r"\(\s*[,;]?\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,;:.!?])(?=\s|$)")
_ENUMERATOR_END = re.compile(r"\s+\d{1,2}[.)]$")
_ANAPHOR = re.compile(
    r"^(?:\w+\s+){0,2}(?:it|its|this|these|that|those|they|them|their)\b", re.IGNORECASE
)
_CODE_SPAN = re.compile(r"`[^`]*`")
_GLUED = re.compile(r"[a-z][A-Z]")


@dataclass(frozen=True)
class Composition:
    """The composed text and, in citation-number order, which hits `[1]`, `[2]`, … refer to."""

    text: str
    cited: tuple[int, ...]


@dataclass(frozen=True)
class _Candidate:
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


_BREAK = "\x00"  # stands where a code block was: a lead-in colon before it has no list


@dataclass(frozen=True)
class _Unit:
    text: str
    is_list: bool = False  # a lead-in ("To add more test cases:") with its items, kept whole


def bigrams(text: str) -> set[tuple[str, str]]:
    """Adjacent stemmed words (articles and the like skipped): "follow-up" is not "followed"."""
    words = [w.lower() for w in _TERM.findall(text)]
    stems = _stemmer().stemWords([w for w in words if w not in _ARTICLES])
    return set(itertools.pairwise(stems))


def prose_units(text: str) -> list[str]:
    """Paragraphs, list items and lead-ins with their lists, as plain prose."""
    return [u.text for u in _units(text)]


def _units(text: str) -> list[_Unit]:
    text = _FENCED.sub(f"\n\n{_BREAK}\n\n", text)
    for pattern in (_HEADING, _UNDERLINE, _TABLE_RULE, _SOURCE_LINE, _IMAGE):
        text = pattern.sub("\n", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    text = _RST_LITERAL.sub(r"`\1`", text)
    text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
    text = _EMPTY_PARENS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    raw: list[tuple[str, bool]] = []
    for block in re.split(r"\n\s*\n", text):
        raw.extend(_block_units([ln.strip() for ln in block.splitlines() if ln.strip()]))
    raw = [(re.sub(r"\s+", " ", u).strip(), marked) for u, marked in raw]
    units: list[_Unit] = []
    i = 0
    while i < len(raw):
        unit, _ = raw[i]
        i += 1
        if unit == _BREAK or not unit:
            continue
        if unit.endswith(":") and i < len(raw) and _is_item(raw[i][0]):
            # Items look alike (all marked, or all with or without a final period); the
            # first one that differs is ordinary text again.
            style = _item_style(*raw[i])
            items: list[str] = []
            while (
                i < len(raw)
                and len(items) < 6
                and _is_item(raw[i][0])
                and _item_style(*raw[i]) == style
            ):
                items.append(_finish(raw[i][0], None))
                i += 1
            units.append(_Unit(" ".join([unit, *items]), is_list=True))
            continue
        # Headings that survive as plain lines (text formats, extracted web pages): short,
        # standing alone, without final punctuation. They do not read as answers.
        if not _TERMINAL.search(unit) and len(_WORD.findall(unit)) <= 12:
            continue
        units.append(_Unit(unit))
    return units


def _is_item(unit: str) -> bool:
    return unit != _BREAK and not unit.endswith(":") and 0 < len(_WORD.findall(unit)) <= 30


def _item_style(unit: str, marked: bool) -> tuple[bool, bool]:
    return marked, bool(_TERMINAL.search(unit))


def _block_units(lines: list[str]) -> list[tuple[str, bool]]:
    """Split one blank-line-separated block into paragraphs, list items and table rows;
    each with whether it had a list marker."""
    # Hard-wrapped prose (lines of similar, moderate width) is one paragraph; otherwise each
    # line stands alone, as in text extracted from web pages.
    wrapped = len(lines) > 1 and all(40 <= len(ln) <= 120 for ln in lines[:-1])
    units: list[tuple[str, bool]] = []
    current: list[str] = []
    marked = False
    for line in lines:
        if line.startswith("|") or line.count(" | ") >= 2:
            cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
            row = " – ".join(cells)  # a table row reads as one statement
            units.append((row if _TERMINAL.search(row) else row + ".", True))
            continue
        if _LIST_MARKER.match(line) or (current and not wrapped):
            if current:
                units.append((" ".join(current), marked))
            marked = bool(_LIST_MARKER.match(line))
            current = [_LIST_MARKER.sub("", line)]
            continue
        current.append(line)
    if current:
        units.append((" ".join(current), marked))
    return units


def _is_readable(sentence: str, first_in_passage: bool) -> bool:
    words = _WORD.findall(sentence)
    if len(words) < 4 or len(words) > 90:
        return False
    # An overlapping chunk often starts mid-sentence; such a fragment reads badly alone.
    if first_in_passage and sentence[0].islower():
        return False
    # Navigation bars and glued table cells ("CriteriaDescriptionAccuracyThe") extracted
    # from web pages are not prose.
    prose = _CODE_SPAN.sub("", sentence)
    capitalised = sum(1 for w in _WORD.findall(prose) if w[0].isupper())
    if len(words) >= 5 and capitalised >= 0.6 * len(words):
        return False
    return not any(len(_GLUED.findall(w)) >= 2 for w in prose.split())


def _candidates(hits: Sequence[Hit]) -> list[_Candidate]:
    found: list[_Candidate] = []
    for rank, hit in enumerate(hits):
        position = 0
        units = _units(hit.chunk.text)
        for u, unit in enumerate(units):
            pieces = [unit.text] if unit.is_list else split_sentences(unit.text)
            for s, sentence in enumerate(pieces):
                position += 1
                first = u == 0 and s == 0
                last_of_chunk = u == len(units) - 1 and s == len(pieces) - 1
                if last_of_chunk and not _TERMINAL.search(sentence) and len(units) > 1:
                    continue  # probably cut at the chunk's end
                head = split_sentences(sentence)[0] if unit.is_list else sentence
                if not _is_readable(head, first):
                    continue
                # "How to measure latency How to reduce latency 1." is a run of headings
                # glued to a list number, not a sentence.
                bare = _ENUMERATOR_END.sub("", sentence)
                if not _TERMINAL.search(bare) and len(_WORD.findall(bare)) <= 12:
                    continue
                words = Counter(terms(sentence))
                found.append(
                    _Candidate(
                        rank, position, sentence, words, bigrams(sentence), sum(words.values())
                    )
                )
    return found


def _near_duplicate(a: _Candidate, b: _Candidate) -> bool:
    sa, sb = set(a.terms), set(b.terms)
    if not sa or not sb:
        return a.text == b.text
    return len(sa & sb) / min(len(sa), len(sb)) >= 0.8


def _finish(sentence: str, number: int | None) -> str:
    """End the sentence properly (a lead-in colon whose list was dropped becomes a period),
    with the citation mark before the final punctuation."""
    sentence = _CITATION.sub("", sentence).rstrip()
    mark = f" [{number}]" if number is not None else ""
    m = _TERMINAL.search(sentence)
    if m is None:
        return sentence.rstrip(":;,-– ") + mark + "."
    return sentence[: m.start()].rstrip() + mark + sentence[m.start() :]


def _with_referents(
    chosen: list[_Candidate], candidates: list[_Candidate], max_sentences: int, max_chars: int
) -> list[_Candidate]:
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


def _refers_back(sentence: str) -> bool:
    return bool(_ANAPHOR.match(sentence))


def compose(
    question: str,
    hits: Sequence[Hit],
    *,
    max_sentences: int = 4,
    max_chars: int = 600,
) -> Composition:
    """Compose an answer to `question` from `hits` (best first). Empty text if nothing fits."""
    query = Counter(terms(question))
    candidates = _candidates(hits)
    if not query or not candidates:
        return Composition("", ())
    n = len(candidates)
    df = Counter(t for c in candidates for t in set(c.terms))
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
    weight = dict(idf)  # shrinks as chosen sentences cover a term
    chosen: list[_Candidate] = []
    pool = list(candidates)
    length = 0

    # A passage whose title or section heading matches the question is about it.
    total_idf = sum(idf.values()) or 1.0
    heading_match = [
        sum(idf[t] for t in set(terms(f"{h.chunk.title} {h.chunk.section}")) if t in idf)
        / total_idf
        for h in hits
    ]

    # Word pairs of the question found in a sentence are strong evidence ("follow-up").
    query_pairs = {p for p in bigrams(question) if p[0] in idf or p[1] in idf}

    def overlap(c: _Candidate, w: dict[str, float]) -> float:
        matched = sum(w[t] * min(c.terms[t], 2) for t in query if t in c.terms)
        matched += sum(max(w.get(a, 0.0), w.get(b, 0.0)) for a, b in query_pairs & c.pairs)
        return matched / (1.0 + max(0, c.size - 25) / 25)  # a long sentence buries its point

    def score(c: _Candidate, w: dict[str, float]) -> float:
        own = overlap(c, w)
        if own == 0:
            return 0.0
        rank = 0.6 / (1 + c.passage) + 0.2 / (1 + c.position)
        return own + rank + heading_match[c.passage]

    # The sentence's own match (full weights) decides what may be said at all; the decayed
    # weights and the passage's standing decide what to say next.
    own = {id(c): overlap(c, idf) for c in pool}
    best = max(own.values(), default=0.0)
    pool = [c for c in pool if own[id(c)] >= 0.5 * best]
    while pool and len(chosen) < max_sentences:
        top_score, top = max(((score(c, weight), c) for c in pool), key=lambda sc: sc[0])
        # After the first, a sentence must add enough of the question not yet covered.
        if top_score <= 0 or (chosen and overlap(top, weight) < 0.3 * best):
            break
        pool = [c for c in pool if c is not top and not _near_duplicate(c, top)]
        if chosen and length + len(top.text) > max_chars:
            continue
        chosen.append(top)
        length += len(top.text)
        for t in top.terms:
            if t in weight:
                weight[t] *= 0.5
    if not chosen:
        return Composition("", ())
    chosen = _with_referents(chosen, candidates, max_sentences, max_chars)
    chosen.sort(key=lambda c: (c.passage, c.position))
    cited: list[int] = []
    parts: list[str] = []
    for i, c in enumerate(chosen):
        closes_run = i == len(chosen) - 1 or chosen[i + 1].passage != c.passage
        if not closes_run:
            parts.append(_finish(c.text, None))
            continue
        if c.passage not in cited:
            cited.append(c.passage)
        parts.append(_finish(c.text, cited.index(c.passage) + 1))
    return Composition(" ".join(parts), tuple(cited))
