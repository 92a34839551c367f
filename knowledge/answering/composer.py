"""The extractive composer: a short answer built from the best sentences of retrieved passages.

Pure: hits in, text and the hits it cites out; no I/O, no model. Used when no language model
is configured, so it has to read as an answer rather than as a dump of chunks:

- passages are turned into prose first (headings, code blocks, table rules, list markers,
  link targets, emphasis and HTML tags dropped; hard-wrapped lines joined). Each line of a
  flattened web page stays its own unit; lines that are code without a fence (REPL prompts,
  assignments, calls, JSON), navigation (lines of links, runs of headings) or glued past
  repair are dropped, and a heading glued to its text ("Role namesThe API …") is cut off;
- a lead-in ("… include:") keeps its list items, or a table after it as a short list (whole
  rows, or the first column when rows are long); a lead-in whose list is missing is dropped;
- every sentence is scored against the question: stemmed term overlap weighted by idf over
  the candidate sentences (word pairs count extra, very long sentences are damped), plus,
  when the knowledge base's embedding is given, its similarity to the question; a sentence
  borrows some relevance from its best neighbour ("We offer none. One provider is X." are
  chosen together); the retriever's rank and a matching heading are a small prior;
- a short, non-redundant set is picked by maximal marginal relevance; a sentence far below
  the best (or relevant only through its neighbour) is not said, so a weakly related
  passage is never cited as padding. The length adapts to relevance: once the answer holds
  most of the question's weight, only a sentence nearly as relevant as the best is added, and
  at equal relevance the shorter sentence wins. `rank_passages` ranks the passages the same
  way for a language model;
- fragments (a chunk that starts mid-sentence, a sentence cut at the chunk's end) and near
  duplicates (overlapping chunks) are dropped;
- the chosen sentences keep the order of their passages and, inside a passage, the order
  of the document; each run of sentences from one passage ends with its `[n]` citation,
  placed before the final period and never inside brackets or quotes.
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

from knowledge.answering import markup
from knowledge.answering.sentences import split_sentences
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
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_'-]*")
_TERM = re.compile(r"[A-Za-z0-9]+")  # ANSWER_MIN_SCORE and ask-video match their parts

_FENCED = re.compile(r"^\s*(```|~~~).*?^\s*\1[^\n]*$", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s.*$", re.MULTILINE)
_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+])\1{2,}\s*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_RST_LITERAL = re.compile(r"``([^`]+)``")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_SOURCE_LINE = re.compile(r"^\s*(?:source|url|link)s?:\s*\S+\s*$", re.IGNORECASE | re.MULTILINE)
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
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


_BREAK = "\x00"  # stands where code or navigation was: a lead-in colon before it has no list
_RULE = "\x01"  # stands where a table's header rule was: the row above it is the header

# Lines that are code even without a fence (a chunk cut inside a code block, web pages
# that drop the fence): REPL prompts, statements, assignments, calls, lone brackets.
_REPL = re.compile(r">>>|^\s*(?:\$|\.\.\.|In \[\d+\]:)\s")
# Doc sites put a code tab's label before the code when flattened ("Pythonprompt = …").
_TAB = r"(?i:Python|Shell|Bash|Console|JavaScript|TypeScript|Java|Go|Ruby|JSON|YAML|cURL)?"
_TAB_LABEL = re.compile(r"^\s*" + _TAB[:-1] + r"\s*$")
_STATEMENT = re.compile(
    r"^\s*"
    + _TAB
    + r"(?:import\s+\w|from\s+[\w.]+\s+import\b|(?:async\s+)?def\s+\w|class\s+\w+[:(]"
    r"|return\b|const\s|let\s|var\s|function\b|curl\s|pip\s+install|npm\s|print\(|#include"
    r"|export\s+[A-Za-z_]\w*=)"
)
_ASSIGNMENT = re.compile(r"^\s*" + _TAB + r"[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*[-+*/]?=(?!=)\s*\S")
_JSON_KEY = re.compile(r"^\s*[\"'][\w.-]+[\"']\s*:")
_CALL = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\(|\b[a-z_]+\w*\([^)\s]*[,)]?$")
_OPEN_CLOSE = re.compile(r"[{(\[\\]\s*$|^\s*[})\]]")
# Code run into one line: a JSON object, a definition, an import, template placeholders.
_CODE_INLINE = re.compile(
    r"\{\s*\"\w+\"\s*:|\b(?:def|function)\s+\w+\s*\("
    r"|\bimport\s+[\w{}, ]+\s+from\s+['\"]|\{\{\s*\w+\s*\}\}"
)
_TAG = re.compile(r"<\s*/?\s*\w+[^<>]{0,40}>")
_CODE_CHARS = re.compile(r"[{}\[\]()=<>;\\|_]")
# "Role namesThe Text …", "documents.Tool Use": a heading or label glued to the next text
# when a web page was flattened. A glue point is a lower-case letter (or a sentence end)
# directly followed by a capitalised word.
_GLUE = re.compile(
    r"(?<=[a-z])(?=[A-Z][a-z]|[AI]$)|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])|(?<=[a-z]{2})(?=\d{1,2}\.)"
    r"|(?<=\d{3})(?=[A-Z][a-z]{4,})"
)
_REPEATED_HEAD = re.compile(r"^(\S.{7,80}?)\s+\1\s+(?=\S)")
_GLUED_STEP = re.compile(r"^(\s*\d{1,2})(?=[A-Z][a-z]{2,})")  # "1Provide the tools"
# "Role names The Text Completions API expects …": a short title line run into a sentence.
_SPACED_HEADING = re.compile(
    r"^(?P<head>[A-Z][^.!?:;,\x00]{0,60}?[a-z0-9])\s+"
    r"(?=(?:The|This|These|A|An|You|Your|We|Our|It|If|In|To|For|When|Each|Every|How|What|Why|Which)\s)"
)
_LINK_LINE = re.compile(
    r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])?[ \t]*(?:\[[^\]]+\]\([^)]*\)[ \t,|·•-]*)+$", re.MULTILINE
)
# A sentence that introduces what follows: "… include:", "… are as follows".
_LEAD_IN = re.compile(
    r"(?::|\b(?:include|includes|including|following|follows|such as|are|is|like))$",
    re.IGNORECASE,
)
# A lead-in that cannot stand without what it introduces: its sentence is unfinished
# ("… include:", "the steps are as follows:") or it is only a heading ("To add a case:").
# One that is a complete instruction before a code block ("Run `x` with a folder:") can.
_DANGLING = re.compile(
    r"\b(?:include|includes|including|following|follows|such as|are|is|like|these|those"
    r"|below|e\.g\.|for example|steps|ways)\s*:?$",
    re.IGNORECASE,
)
_FUNCTION_WORDS = frozenset(STOPWORDS_EN) | {
    "you", "your", "we", "our", "can", "how", "what", "when", "which", "do", "does", "has",
    "have", "from", "each", "its", "may", "should", "must", "so", "than", "only",
}  # fmt: skip


def _code_line(line: str) -> bool:
    if _REPL.search(line) or _STATEMENT.match(line) or _ASSIGNMENT.match(line):
        return True
    if _JSON_KEY.match(line) or _OPEN_CLOSE.search(line) or _CODE_INLINE.search(line):
        return True
    prose = _CODE_SPAN.sub("", line)
    if _CALL.search(prose) or len(_TAG.findall(prose)) >= 3:  # markup, not prose
        return True
    # Dense with brackets and operators: not a sentence to read out.
    return len(prose) >= 8 and len(_CODE_CHARS.findall(prose)) > 0.12 * len(prose)


def _glue_points(line: str) -> list[int] | None:
    """Where to separate glued text in `line`; None if it is glued past repair
    ("CriteriaDescriptionAccuracyThe": a flattened table)."""
    masked = _CODE_SPAN.sub(lambda m: "x" * len(m.group()), line)
    points: list[int] = []
    for token in re.finditer(r"\S+", masked):
        cuts = [m.start() for m in _GLUE.finditer(token.group())]
        glued = []
        for cut in cuts:
            before = token.group()[:cut]
            # The letters right before the cut decide ("\n\nHuman" is an escape, not glue).
            letters = re.findall(r"[A-Za-z]*$", before)[0]
            # CamelCase names ("GitHub", "JavaScript", "PowerPoint") are short and capitalised;
            # a glued word is lower-case ("namesThe") or a long word run into the next.
            if (
                before[-1:] in (".", "!", "?")
                or token.group()[cut].isdigit()
                or before[-1:].isdigit()
                or (len(letters) >= 3 and letters[0].islower())
                or len(letters) > 6
            ):
                glued.append(token.start() + cut)
        if len(glued) >= 2:
            return None
        points.extend(glued)
    return points


def _lines(text: str) -> str:
    """Each line as prose, or a break where it was code, navigation or unreadable glue."""
    out: list[str] = []
    for line in text.split("\n"):
        line = _GLUED_STEP.sub(r"\1. ", line)
        if not line.strip() or line.strip() in (_BREAK, _RULE):
            out.append(line)
            continue
        # A code tab's label on its own line ("Python" above a snippet) is part of the code.
        if _TAB_LABEL.match(line) or (not line.lstrip().startswith("|") and _code_line(line)):
            out.append(_BREAK)
            continue
        points = _glue_points(line)
        if points is None:
            out.append(_BREAK)
            continue
        parts = [line[a:b] for a, b in itertools.pairwise([0, *points, len(line)])]
        out.extend(_without_spaced_heading(part) for part in parts)
        if len(parts) > 1:
            out.append("")
    return "\n".join(out)


def _without_spaced_heading(text: str) -> str:
    # A flattened page may repeat a heading before its text ("Tone and style Tone and style
    # What it measures: …"): both copies go.
    text = _REPEATED_HEAD.sub("", text.strip())
    m = _SPACED_HEADING.match(text.strip())
    if m and len(_WORD.findall(m.group("head"))) <= 6:
        return text.strip()[m.end() :]
    return text


@dataclass(frozen=True)
class _Unit:
    text: str
    is_list: bool = False  # a lead-in ("To add more test cases:") with its items, kept whole
    marked: bool = False  # a list item: may lack a final period


@dataclass(frozen=True)
class _Raw:
    text: str
    marked: bool = False  # had a list marker
    cells: tuple[str, ...] = ()  # a table row
    header: bool = False  # the table row above the header rule


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
    text = _TABLE_RULE.sub(_RULE, text)
    for pattern in (_HEADING, _UNDERLINE, _SOURCE_LINE, markup.IMAGE):
        text = pattern.sub("\n", text)
    # A line of nothing but links is navigation ("- [Overview](…)", "[A](…) · [B](…)").
    text = _LINK_LINE.sub(_BREAK, text)
    text = markup.LINK.sub(r"\1", text)
    text = markup.HTML_TAG.sub("", text)
    text = _RST_LITERAL.sub(r"`\1`", text)
    text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
    text = _EMPTY_PARENS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _lines(text)
    raw: list[_Raw] = []
    for block in re.split(r"\n\s*\n", text):
        raw.extend(_block_units([ln.strip() for ln in block.splitlines() if ln.strip()]))
    # Header rows go; the rest with their whitespace made single.
    raw = [
        _Raw(_without_spaced_heading(" ".join(r.text.split())), r.marked, r.cells)
        for r in raw
        if not r.header
    ]
    units: list[_Unit] = []
    i = 0
    while i < len(raw):
        unit = raw[i].text
        i += 1
        if unit == _BREAK or not unit:
            continue
        if _LEAD_IN.search(unit) and i < len(raw) and raw[i].cells:
            rows: list[_Raw] = []
            while i < len(raw) and raw[i].cells:
                rows.append(raw[i])
                i += 1
            units.append(_Unit(f"{unit} {_table_list(rows)}", is_list=True))
            continue
        if _LEAD_IN.search(unit) and i < len(raw) and _is_item(raw[i].text):
            # Items look alike (all marked, or all with or without a final period); the
            # first one that differs is ordinary text again.
            style = _item_style(raw[i])
            items: list[str] = []
            while (
                i < len(raw)
                and len(items) < 6
                and _is_item(raw[i].text)
                and _item_style(raw[i]) == style
            ):
                items.append(_finish(raw[i].text, None))
                i += 1
            # One unmarked line after a colon is just the next line (often a code tab's
            # label), not a list.
            if len(items) >= 2 or style[0]:
                units.append(_Unit(" ".join([unit, *items]), is_list=True))
                continue
            i -= len(items)
        # Headings that survive as plain lines (text formats, extracted web pages): short,
        # standing alone, without final punctuation. They do not read as answers.
        if not markup.TERMINAL.search(unit) and len(_WORD.findall(unit)) <= 12:
            continue
        units.append(_Unit(unit, marked=raw[i - 1].marked))
    return units


def _table_list(rows: list[_Raw]) -> str:
    """A table after a lead-in, as a short list: whole rows if they are short, else the
    first column (what the rows are about)."""
    whole = [_finish(" – ".join(r.cells), None) for r in rows[:6]]
    if sum(len(w) for w in whole) <= 300:
        return " ".join(whole)
    names = [r.cells[0].rstrip(".") for r in rows[:8]]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return listed + "."


def _is_item(unit: str) -> bool:
    return unit != _BREAK and not _LEAD_IN.search(unit) and 0 < len(_WORD.findall(unit)) <= 30


def _item_style(raw: _Raw) -> tuple[bool, bool]:
    return raw.marked, bool(markup.TERMINAL.search(raw.text))


def _block_units(lines: list[str]) -> list[_Raw]:
    """Split one blank-line-separated block into paragraphs, list items and table rows."""
    # Hard-wrapped prose (lines of similar, moderate width) is one paragraph; otherwise each
    # line stands alone, as in text extracted from web pages.
    wrapped = len(lines) > 1 and all(40 <= len(ln) <= 120 for ln in lines[:-1])
    units: list[_Raw] = []
    current: list[str] = []
    marked = False

    def close() -> None:
        if current:
            units.append(_Raw(" ".join(current), marked))
            current.clear()

    for line in lines:
        if line in (_BREAK, _RULE):
            close()
            if line == _RULE and units and units[-1].cells:
                units[-1] = _Raw(units[-1].text, True, units[-1].cells, header=True)
            elif line == _BREAK:
                units.append(_Raw(_BREAK))
            continue
        if line.startswith("|") or line.count(" | ") >= 2:
            close()
            cells = tuple(c.strip() for c in line.strip("|").split("|") if c.strip())
            row = " – ".join(cells)  # a table row reads as one statement
            units.append(_Raw(row if markup.TERMINAL.search(row) else row + ".", True, cells))
            continue
        if _LIST_MARKER.match(line) or (current and not wrapped):
            close()
            marked = bool(_LIST_MARKER.match(line))
            current.append(_LIST_MARKER.sub("", line))
            continue
        current.append(line)
    close()
    return units


def _is_readable(sentence: str, first_in_passage: bool) -> bool:
    words = _WORD.findall(sentence)
    if len(words) < 4 or len(words) > 90:
        return False
    # An overlapping chunk often starts mid-sentence; such a fragment reads badly alone.
    if first_in_passage and sentence[0].islower():
        return False
    if _code_line(sentence) or _is_nav_run(sentence):
        return False
    prose = _CODE_SPAN.sub("", sentence)
    if len(_WORD.findall(prose)) < 4:
        return False  # mostly inline code: a listing of names, not an explanation
    return not any(len(_GLUED.findall(w)) >= 2 for w in prose.split())


def _is_nav_run(sentence: str) -> bool:
    """Headings or link labels in a row ("When to chain prompts How to chain prompts
    Example chained workflows"): capitalised words restart the text without punctuation
    and there are few of the small words that hold a sentence together."""
    words = _WORD.findall(_CODE_SPAN.sub("", sentence))
    if len(words) < 5:
        return False
    capitalised = sum(1 for w in words if w[0].isupper())
    if capitalised >= 0.6 * len(words):
        return True
    restarts = len(re.findall(r"\b[a-z][\w'-]*[)\]%]*\s+[A-Z][a-z]", sentence))
    function = sum(1 for w in words if w.lower() in _FUNCTION_WORDS) / len(words)
    return restarts >= 3 and function < 0.2


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
                head = split_sentences(sentence)[0] if unit.is_list else sentence
                if not _is_readable(head, first):
                    continue
                if not unit.is_list:
                    # A lead-in whose list did not come with it says nothing on its own.
                    if _DANGLING.search(sentence) or (
                        sentence.endswith(":") and len(_WORD.findall(sentence)) <= 8
                    ):
                        continue
                    # Prose ends with punctuation; a line without it is a heading, a label,
                    # a run of links or a sentence cut at the chunk's end. List items may
                    # lack it.
                    if not markup.TERMINAL.search(sentence) and not (
                        sentence.endswith(":") or (unit.marked and len(pieces) == 1)
                    ):
                        continue
                # "How to measure latency How to reduce latency 1." is a run of headings
                # glued to a list number, not a sentence.
                bare = _ENUMERATOR_END.sub("", sentence)
                if not markup.TERMINAL.search(bare) and len(_WORD.findall(bare)) <= 12:
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
    """End the sentence properly, with the citation mark before the final punctuation, or
    after a closing bracket or quote: never inside them."""
    sentence = _CITATION.sub("", sentence).rstrip()
    mark = f" [{number}]" if number is not None else ""
    m = markup.TERMINAL.search(sentence)
    if m is None:
        return sentence.rstrip(":;,-– ") + mark + "."
    if m.group() not in (".", "!", "?"):
        return sentence + mark
    return sentence[: m.start()].rstrip() + mark + sentence[m.start() :]


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

    chosen: list[_Candidate]
    passage_scores: list[float]  # per hit: the relevance of its best sentence (0: nothing)


def compose(
    question: str,
    hits: Sequence[Hit],
    *,
    max_sentences: int = 4,
    max_chars: int = 500,
    embed: Embed | None = None,
) -> Composition:
    """Compose an answer to `question` from `hits` (best first). Empty text if nothing fits.

    `embed` (the knowledge base's embedding) adds semantic relevance to the lexical match;
    without it sentences are chosen by lexical match alone.
    """
    chosen = select(question, hits, max_sentences=max_sentences, max_chars=max_chars, embed=embed)
    return _write(chosen.chosen)


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

    def lexical(c: _Candidate) -> float:
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


def _similarity(candidates: list[_Candidate], vectors: np.ndarray | None, i: int, j: int) -> float:
    """How much sentence i repeats sentence j: embedding cosine, else shared terms."""
    if vectors is not None:
        return max(0.0, float(vectors[i] @ vectors[j]))
    a, b = set(candidates[i].terms), set(candidates[j].terms)
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


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


def _write(chosen: list[_Candidate]) -> Composition:
    """The chosen sentences in passage order, each run from one passage ending with its
    citation; passages cited in the order they first appear."""
    if not chosen:
        return Composition("", ())
    chosen = sorted(chosen, key=lambda c: (c.passage, c.position))
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
