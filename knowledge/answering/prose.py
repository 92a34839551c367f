"""Passages turned into prose: the units an extractive answer is built from.

Pure text in, text out; no scoring. Headings, code blocks, table rules, list markers, link
targets, emphasis and HTML tags are dropped; hard-wrapped lines are joined. Each line of a
flattened web page stays its own unit; lines that are code without a fence (REPL prompts,
assignments, calls, JSON), navigation (lines of links, runs of headings) or glued past repair
are dropped, and a heading glued to its text ("Role namesThe API …") is cut off. A lead-in
("… include:") keeps its list items, or a table after it as a short list (whole rows, or the
first column when rows are long); a lead-in whose list is missing is dropped.
`readable_sentences` yields what is left, sentence by sentence, with its place in the passage.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from bm25s.stopwords import STOPWORDS_EN

from knowledge.answering import markup
from knowledge.answering.sentences import split_sentences

WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_'-]*")
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
_CODE_SPAN = re.compile(r"`[^`]*`")
_GLUED = re.compile(r"[a-z][A-Z]")


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
    if m and len(WORD.findall(m.group("head"))) <= 6:
        return text.strip()[m.end() :]
    return text


@dataclass(frozen=True)
class Unit:
    text: str
    is_list: bool = False  # a lead-in ("To add more test cases:") with its items, kept whole
    marked: bool = False  # a list item: may lack a final period


@dataclass(frozen=True)
class _Raw:
    text: str
    marked: bool = False  # had a list marker
    cells: tuple[str, ...] = ()  # a table row
    header: bool = False  # the table row above the header rule


def prose_units(text: str) -> list[str]:
    """Paragraphs, list items and lead-ins with their lists, as plain prose."""
    return [u.text for u in units(text)]


def units(text: str) -> list[Unit]:
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
    units: list[Unit] = []
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
            units.append(Unit(f"{unit} {_table_list(rows)}", is_list=True))
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
                items.append(finish(raw[i].text, None))
                i += 1
            # One unmarked line after a colon is just the next line (often a code tab's
            # label), not a list.
            if len(items) >= 2 or style[0]:
                units.append(Unit(" ".join([unit, *items]), is_list=True))
                continue
            i -= len(items)
        # Headings that survive as plain lines (text formats, extracted web pages): short,
        # standing alone, without final punctuation. They do not read as answers.
        if not markup.TERMINAL.search(unit) and len(WORD.findall(unit)) <= 12:
            continue
        units.append(Unit(unit, marked=raw[i - 1].marked))
    return units


def _table_list(rows: list[_Raw]) -> str:
    """A table after a lead-in, as a short list: whole rows if they are short, else the
    first column (what the rows are about)."""
    whole = [finish(" – ".join(r.cells), None) for r in rows[:6]]
    if sum(len(w) for w in whole) <= 300:
        return " ".join(whole)
    names = [r.cells[0].rstrip(".") for r in rows[:8]]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return listed + "."


def _is_item(unit: str) -> bool:
    return unit != _BREAK and not _LEAD_IN.search(unit) and 0 < len(WORD.findall(unit)) <= 30


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


def is_readable(sentence: str, first_in_passage: bool) -> bool:
    words = WORD.findall(sentence)
    if len(words) < 4 or len(words) > 90:
        return False
    # An overlapping chunk often starts mid-sentence; such a fragment reads badly alone.
    if first_in_passage and sentence[0].islower():
        return False
    if _code_line(sentence) or _is_nav_run(sentence):
        return False
    prose = _CODE_SPAN.sub("", sentence)
    if len(WORD.findall(prose)) < 4:
        return False  # mostly inline code: a listing of names, not an explanation
    return not any(len(_GLUED.findall(w)) >= 2 for w in prose.split())


def _is_nav_run(sentence: str) -> bool:
    """Headings or link labels in a row ("When to chain prompts How to chain prompts
    Example chained workflows"): capitalised words restart the text without punctuation
    and there are few of the small words that hold a sentence together."""
    words = WORD.findall(_CODE_SPAN.sub("", sentence))
    if len(words) < 5:
        return False
    capitalised = sum(1 for w in words if w[0].isupper())
    if capitalised >= 0.6 * len(words):
        return True
    restarts = len(re.findall(r"\b[a-z][\w'-]*[)\]%]*\s+[A-Z][a-z]", sentence))
    function = sum(1 for w in words if w.lower() in _FUNCTION_WORDS) / len(words)
    return restarts >= 3 and function < 0.2


def finish(sentence: str, number: int | None) -> str:
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


def readable_sentences(text: str) -> list[tuple[int, str]]:
    """The sentences of a passage that read as prose, each with its place in the passage
    (1-based, counting the sentences dropped too); a lead-in with its list is one."""
    found: list[tuple[int, str]] = []
    position = 0
    for u, unit in enumerate(units(text)):
        pieces = [unit.text] if unit.is_list else split_sentences(unit.text)
        for s, sentence in enumerate(pieces):
            position += 1
            if _reads_as_prose(unit, sentence, first=u == 0 and s == 0, alone=len(pieces) == 1):
                found.append((position, sentence))
    return found


def _reads_as_prose(unit: Unit, sentence: str, *, first: bool, alone: bool) -> bool:
    head = split_sentences(sentence)[0] if unit.is_list else sentence
    if not is_readable(head, first):
        return False
    if not unit.is_list:
        # A lead-in whose list did not come with it says nothing on its own.
        if _DANGLING.search(sentence) or (
            sentence.endswith(":") and len(WORD.findall(sentence)) <= 8
        ):
            return False
        # Prose ends with punctuation; a line without it is a heading, a label,
        # a run of links or a sentence cut at the chunk's end. List items may
        # lack it.
        if not markup.TERMINAL.search(sentence) and not (
            sentence.endswith(":") or (unit.marked and alone)
        ):
            return False
    # "How to measure latency How to reduce latency 1." is a run of headings
    # glued to a list number, not a sentence.
    bare = _ENUMERATOR_END.sub("", sentence)
    return bool(markup.TERMINAL.search(bare)) or len(WORD.findall(bare)) > 12
