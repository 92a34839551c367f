"""Spoken fidelity: how faithfully the avatar's script says the written answer.

Two figures per answer, both about the script writer, not the time budget (the script is
written for the whole answer here; the budget's cut is a deliberate loss, counted apart):

- fidelity: the share of the written answer's prose words that the script keeps, in order
  (longest common subsequence of the two word sequences over the prose words). Prose is the
  written answer without what is not read out anyway: code spans and blocks, URLs, paths,
  citation marks, emoji, list numbering and markup; abbreviations and units are read out on
  both sides ("e.g." and "for example" are the same words). A writer that deletes words
  around a command loses fidelity; one that says the command as words loses none.
- broken sentences: script sentences with a hole or a leftover (`sentence_flaws`): a
  dangling article or preposition before punctuation ("the guide at ."), two function words
  that cannot meet ("a key with for the API"), orphan or doubled punctuation, empty
  parentheses, a sentence split inside a path ("add." + "/docs to add files"), and anything
  a voice cannot say (a URL, a backtick, a citation mark, markdown emphasis).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.answering import markup
from knowledge.answering.sentences import split_sentences
from knowledge.answering.spoken import spoken_variant
from knowledge.answering.spoken_forms import read_out

_INLINE_CODE = re.compile(r"`[^`\n]*`")
_NOT_SAID = re.compile(r":[a-z0-9_+-]+:|^\s*\d{1,3}[.)]\s", re.MULTILINE)  # emoji, numbering
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")

# Words after which a sentence or clause cannot stop, and which cannot be followed by
# another function word: what is left where a deleted thing stood.
# The article is "a"; "A" alone is the letter (a name read out: "the A option").
_NEEDS_OBJECT = r"(?:a|(?i:an|the|at|via|with|see|visit|called|named|e\.g\.|i\.e\.|such as))"
_PREPOSITION = r"(?:at|via|with|for|to|from|of|in|on|by|and|or)"
_FLAWS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dangling word", re.compile(rf"(?:^|\s){_NEEDS_OBJECT}\s*[.,;:!?)](?!\w)")),
    ("missing word", re.compile(rf"\b(?:a|(?i:an|the))\s+(?:a|(?i:an|the|{_PREPOSITION}))\b")),
    ("missing word", re.compile(rf"\b(?:with|at|via|see|visit)\s+{_PREPOSITION}\b", re.I)),
    ("orphan punctuation", re.compile(r"^\W*[.,;:!?]|\s[.,;:!?]|[,;:]\s*[.,;:!?]|\.\.(?!\.)")),
    ("empty parentheses", re.compile(r"\(\s*[,;:.]?\s*\)|\[\s*\]")),
    ("split inside a word", re.compile(r"^[/\\._\-]|^[a-z]")),
    ("url", re.compile(r"https?://|www\.", re.IGNORECASE)),  # a bare domain is sayable
    ("code mark", re.compile(r"[`{}<>|\\]|\*\*|__|~~")),
    ("citation mark", re.compile(r"\[\d+\]")),
)


def prose_words(written: str) -> list[str]:
    """The written answer's words that any script should say, lower-cased, in order."""
    text = markup.FENCED.sub(" ", written).replace("\\n", " ")  # a literal \n is no word
    text = markup.IMAGE.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = markup.LINK.sub(r"\1", text)
    text = markup.URL.sub(" ", text)
    text = markup.CITATION.sub(" ", text)
    text = markup.PATH.sub(" ", text)  # said as its file name at most
    text = _NOT_SAID.sub(" ", text)
    return words(text)


def words(text: str) -> list[str]:
    """Lower-cased words, abbreviations and units read out as the avatar says them ("e.g."
    and "for example" are the same words), so a reading is not counted as a loss."""
    return [w.lower() for w in _WORD.findall(read_out(text))]


def kept_in_order(want: Sequence[str], have: Sequence[str]) -> int:
    """Length of the longest common subsequence of two word sequences (O(len*len) time,
    O(len) memory; answers are a few hundred words)."""
    if not want or not have:
        return 0
    previous = [0] * (len(have) + 1)
    for w in want:
        current = [0]
        for j, h in enumerate(have, start=1):
            current.append(previous[j - 1] + 1 if w == h else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def fidelity(written: str, script: str) -> float:
    """The share of `written`'s prose words that `script` keeps in order (1.0: none lost)."""
    want = prose_words(written)
    if not want:
        return 1.0
    return kept_in_order(want, words(script)) / len(want)


def sentence_flaws(sentence: str) -> list[str]:
    """What is wrong with one spoken sentence, by name; empty when it reads well."""
    return [name for name, pattern in _FLAWS if pattern.search(sentence)]


def broken_sentences(script: str) -> list[str]:
    """The script's sentences that have a flaw."""
    return [s for s in split_sentences(script) if sentence_flaws(s)]


@dataclass(frozen=True)
class SpokenScore:
    fidelity: float
    sentences: int
    broken: list[str]


def score(written: str, script: str) -> SpokenScore:
    return SpokenScore(
        fidelity=fidelity(written, script),
        sentences=len(split_sentences(script)),
        broken=broken_sentences(script),
    )


@dataclass(frozen=True)
class SpokenReport:
    answers: int
    fidelity: float  # mean over answers
    sentences: int  # script sentences over all answers
    broken: int  # of those, with a flaw

    def line(self) -> str:
        """The figures in words, for the CLI table's footer."""
        return (
            f"spoken fidelity {self.fidelity:.3f}   "
            f"broken sentences {self.broken} of {self.sentences}"
        )

    def summary(self) -> dict[str, float | int]:
        return {
            "spoken_fidelity": round(self.fidelity, 4),
            "spoken_sentences": self.sentences,
            "spoken_broken": self.broken,
        }


def summarize(pairs: Sequence[tuple[str, str]]) -> SpokenReport:
    """Pure: the figures for (written answer, script) pairs."""
    scores = [score(written, script) for written, script in pairs]
    n = len(scores)
    return SpokenReport(
        answers=n,
        fidelity=sum(s.fidelity for s in scores) / n if n else 1.0,
        sentences=sum(s.sentences for s in scores),
        broken=sum(len(s.broken) for s in scores),
    )


def whole_script(text: str) -> str:
    """The avatar's script for the whole answer, the time budget out of the way."""
    return spoken_variant(text, max_seconds=24 * 3600.0)


def spoken_figures(written: Sequence[str]) -> SpokenReport:
    """The figures for the scripts of these written answers (empty ones left out)."""
    return summarize([(text, whole_script(text)) for text in written if text.strip()])
