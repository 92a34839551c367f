"""The avatar's script: the written answer rewritten for a voice, sentence by sentence.

One writer for every place speech comes from (`Answer.spoken` — hence the video script and
the viewer transcript — and `spoken_sentences`, the live session's sentences): each written
sentence becomes zero or more spoken sentences (`speak_sentence`), and one time budget
(`_Budget`) cuts the result at a sentence boundary. The whole-text and the streamed paths
run the same steps over the same sentences (the streaming splitter finds the sentences the
whole-text splitter finds), so the live avatar says exactly the stored script.

Nothing is deleted without a phrase in its place (spoken_forms.py): inline code, settings and
commands are said as words, URLs as "the link in the thread", paths as their file name, a
code block as "The command is in the thread."; only citation marks, markup and emoji go.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from knowledge.answering import markup
from knowledge.answering.sentences import sentences, split_sentences
from knowledge.answering.spoken_forms import (
    ENV_NAME,
    METHOD_AND_PATH,
    fenced_noun,
    is_endpoint,
    read_out,
    say_channel,
    say_code,
    say_endpoint,
    say_fenced,
    say_identifier,
    say_link,
    say_path,
    say_setting,
)

WORDS_PER_MINUTE = 150  # an unhurried speaking pace; HeyGen voices are close to it

_SLACK_REF = re.compile(r"<([@#])([^>|]*)(?:\|([^>]*))?>")  # <@U1>, <#C1|general>
_SLACK_LINK = re.compile(r"<((?:https?://|mailto:)[^|>]*)(?:\|([^>]+))?>")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", re.MULTILINE)
_QUOTE_MARKER = re.compile(r"^\s*>\s?", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|~~)(?=\S)(.+?)(?<=\S)\1|(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_INLINE_CODE = re.compile(r"`+([^`\n]*)`+")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_SHORTCODE = re.compile(r":[a-z0-9_+-]+:")
_ARROW = re.compile(r"\s*(?:->|=>|→|⇒)\s*")
_BREADCRUMB = re.compile(r"\s+>\s+")
_LONE_BRACE = re.compile(r"(?<!\S)([{}])(?!\S)")
_BRACE_WORDS = {"{": "an opening brace", "}": "a closing brace"}
_STRAY_SYMBOL = re.compile(r"[{}<>\\`]")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:.]?\s*\)|\[\s*\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,;:.!?])")
# What is left where an unsayable thing stood at a clause end ("the guide at ."): an
# example phrase with no example after it, or a word that needs an object.
_DANGLING = re.compile(
    r"(?:(?i:,?\s*\b(?:for example|for instance|that is|such as))\s*([.;:!?])"
    # "A" alone is the letter (`a` said as code), not the article
    r"|\b(?:(?i:at|see|visit|via|with|the|an)|a)\s*([.,;:!?]))(?!\w)",
)
_MORE_THAN_ONE = re.compile(r"[.!?][\"')\]]*\s+\S")
_LEAD_IN = re.compile(r"\b(?:with|using|via|like|run|type|enter|use|add|in|to|from)$", re.I)


def _context(match: re.Match[str]) -> tuple[str, str]:
    return match.string[: match.start()], match.string[match.end() :]


def _code(match: re.Match[str]) -> str:
    return say_code(match.group(1), *_context(match))


def _slack_link(match: re.Match[str]) -> str:
    label = match.group(2)
    return label if label and not markup.URL.match(label) else say_link(*_context(match))


def _slack_ref(match: re.Match[str]) -> str:
    kind, label = match.group(1), match.group(3)
    if kind == "@":
        return label or "someone"
    return say_channel(label or "", _context(match)[0])


def _markdown_link(match: re.Match[str]) -> str:
    label = match.group(1)
    return say_link(*_context(match)) if markup.URL.match(label) else label


def _path(match: re.Match[str]) -> str:
    path = match.group(0)
    trail = path[len(path.rstrip(".")) :]
    path = path.rstrip(".")
    if re.fullmatch(r"[\d/]+", path):  # a date or a fraction
        return match.group(0)
    if re.fullmatch(r"/[a-z][a-z0-9_-]*", path):  # a Slack slash command
        return "slash " + say_identifier(path)
    before, after = _context(match)
    if path.startswith("/") and is_endpoint(path, before):
        return say_endpoint(path, before, after) + trail
    return say_path(path, before, after) + trail


def _endpoint(match: re.Match[str]) -> str:
    path = match.group(2)
    trail = path[len(path.rstrip(".")) :]
    before, after = _context(match)
    return say_endpoint(path.rstrip("."), before, after, match.group(1)) + trail


def _setting(match: re.Match[str]) -> str:
    return say_setting(match.group(1), None, *_context(match))


def _emphasis(match: re.Match[str]) -> str:
    return match.group(2) or match.group(3) or ""


def _no_emoji(text: str) -> str:
    text = _SHORTCODE.sub("", text)
    return "".join(
        ch
        for ch in text
        if unicodedata.category(ch) not in {"So", "Sk", "Cf", "Cs", "Co"}
        and not 0xFE00 <= ord(ch) <= 0xFE0F
    )


def _prose(text: str) -> str:
    """A stretch of answer without code blocks, as speakable sentences."""
    text = markup.IMAGE.sub("", text)
    text = _SLACK_LINK.sub(_slack_link, text)
    text = _SLACK_REF.sub(_slack_ref, text)
    text = markup.LINK.sub(_markdown_link, text)
    text = markup.CITATION.sub("", text)
    text = _INLINE_CODE.sub(_code, text)
    text = markup.URL.sub(lambda m: say_link(*_context(m)), text)
    text = markup.HTML_TAG.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE_MARKER.sub("", text)
    text = _LIST_MARKER.sub("", text)
    text = METHOD_AND_PATH.sub(_endpoint, text)
    text = markup.PATH.sub(_path, text)
    text = ENV_NAME.sub(_setting, text)
    text = _SNAKE.sub(lambda m: say_identifier(m.group(0)), text)
    text = _EMPHASIS.sub(_emphasis, text)
    text = _ARROW.sub(" to ", _no_emoji(text))
    text = _BREADCRUMB.sub(", ", text.replace("\\n", " "))  # "Console > Bedrock"; a literal \n
    text = _LONE_BRACE.sub(lambda m: _BRACE_WORDS[m.group(1)], text)
    text = _STRAY_SYMBOL.sub(" ", text)
    text = read_out(text)
    text = _EMPTY_PARENS.sub("", text)
    text = text.replace("|", ", ")
    lines = []
    for line in text.splitlines():
        line = line.strip(" \t,;")
        if re.search(r"\w", line):
            # A list item or heading line becomes its own sentence when spoken.
            lines.append(line if markup.TERMINAL.search(line) or line.endswith(":") else line + ".")
    text = " ".join(lines)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _DANGLING.sub(lambda m: m.group(1) or m.group(2), text))
    text = re.sub(r"([,;:])\s*([.!?])", r"\2", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r"([!?])\.", r"\1", text)
    text = re.sub(r"\.{2}(?!\.)", ".", text)
    return re.sub(r"\s+", " ", text).strip(" ,;")


def _without_blocks(raw: str) -> str:
    """Each fenced code block as the sentence that says where it is; prose that leads into
    it ("Install it with:") is completed by it ("Install it with the command in the thread.")."""
    out: list[str] = []
    last = 0
    for block in markup.FENCED.finditer(raw):
        head = raw[last : block.start()].rstrip()
        if head.endswith(":") and _LEAD_IN.search(head[:-1].rstrip()):
            out.append(f"{head[:-1].rstrip()} {fenced_noun(block.group(0))} in the thread.\n")
        else:
            head = head[:-1] + "." if head.endswith(":") else head
            out.append(f"{head}\n{say_fenced(block.group(0))}\n")
        last = block.end()
    out.append(raw[last:])
    return "".join(out)


def speak_sentence(raw: str) -> list[str]:
    """One written sentence (as the splitter gives it) as the spoken sentences it becomes."""
    text = _prose(_without_blocks(raw))
    if text.endswith(":"):
        text = text[:-1] + "."
    # Most written sentences stay one spoken sentence: segment again only when there may be
    # more (a code block's sentence, list lines), since segmenting is the costly step.
    said = split_sentences(text) if _MORE_THAN_ONE.search(text) else [text]
    return [_capitalised(s) for s in said if re.search(r"\w", s)]


class _Writer:
    """Written sentences in, spoken sentences out, for a whole text or a stream alike. A
    sentence that ends with a colon waits for the next: a code block after it completes it."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, raw: str) -> list[str]:
        if self._held:
            if raw.lstrip().startswith(("```", "~~~")):
                raw, self._held = self._held + "\n" + raw, ""
            else:
                return self.flush() + self.feed(raw)
        if raw.rstrip().endswith(":"):
            self._held = raw
            return []
        return speak_sentence(raw)

    def flush(self) -> list[str]:
        held, self._held = self._held, ""
        return speak_sentence(held) if held else []


def _capitalised(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:] if sentence[:1].islower() else sentence


def _script(raw_sentences: Iterable[str]) -> Iterable[str]:
    writer = _Writer()
    for raw in raw_sentences:
        yield from writer.feed(raw)
    yield from writer.flush()


class _Budget:
    """At most `words` words of whole sentences; an overlong first sentence is said in part,
    so there is always something to say when there is an answer."""

    def __init__(self, max_seconds: float, words_per_minute: int) -> None:
        self.left = max(1, int(max_seconds * words_per_minute / 60))
        self.started = False
        self.spent = False

    def take(self, sentence: str) -> str | None:
        """`sentence` (or its opening words) if it fits; None once the budget is spent."""
        if self.spent:
            return None
        words = sentence.split()
        if len(words) > self.left:
            self.spent = True
            if self.started:
                return None
            cut = " ".join(words[: self.left]).rstrip(",;:")
            return cut if markup.TERMINAL.search(cut) else cut + "."
        self.started = True
        self.left -= len(words)
        return sentence


def speakable(text: str) -> str:
    """The whole answer as plain spoken sentences, no time budget."""
    return " ".join(_script(split_sentences(text)))


def spoken_variant(
    text: str, max_seconds: float = 60.0, words_per_minute: int = WORDS_PER_MINUTE
) -> str:
    """The avatar's script for `text`, cut at a sentence boundary to `max_seconds` of speech."""
    budget = _Budget(max_seconds, words_per_minute)
    said = []
    for sentence in _script(split_sentences(text)):
        if (taken := budget.take(sentence)) is None:
            break
        said.append(taken)
    return " ".join(said)


async def spoken_sentences(
    chunks: AsyncIterable[str], max_seconds: float = 60.0, words_per_minute: int = WORDS_PER_MINUTE
) -> AsyncIterator[str]:
    """`spoken_variant` of a streamed answer, one sentence as soon as its written sentence
    completes; joined, they are exactly `spoken_variant` of the whole text."""
    budget, writer = _Budget(max_seconds, words_per_minute), _Writer()
    async for raw in sentences(chunks):
        for sentence in writer.feed(raw):
            if (taken := budget.take(sentence)) is None:
                return
            yield taken
    for sentence in writer.flush():
        if (taken := budget.take(sentence)) is None:
            return
        yield taken
