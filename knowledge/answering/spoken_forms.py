"""How the things that are not prose are said aloud: code, settings, commands, paths, links,
abbreviations and units.

Every form is a phrase that fits where the thing stood, so the sentence around it stays
whole: `HEYGEN_LIVE_API=streaming` is "the HEYGEN LIVE API setting set to streaming",
`avatarbot knowledge add ./docs` is "avatarbot knowledge add", a URL is "the link in the
thread", ./docs/setup.md is "setup.md". Nothing here deletes a word without saying another.
"""

from __future__ import annotations

import re

LINK_PHRASE = "the link in the thread"
CODE_PHRASE = "the code in the thread"

# Words that already introduce the noun a form would bring its own article for.
_DETERMINER = re.compile(
    r"\b(?:a|an|the|your|my|our|their|its|this|that|these|those|each|every|any|no)\s*$",
    re.IGNORECASE,
)
_SETTING_NOUN = re.compile(
    r"^\s*(?:setting|variable|environment variable|env var|option|flag|value|key)s?\b",
    re.IGNORECASE,
)
_FOLDER_NOUN = re.compile(r"^\s*(?:folder|directory|dir)s?\b", re.IGNORECASE)

ENV_NAME = re.compile(r"\$?\{?\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b\}?")
_ASSIGNMENT = re.compile(r"^\$?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)\s*=\s*(.*)$")
_PLAIN_VALUE = re.compile(r"^[\w.\-]{1,30}$")
_SLASH_COMMAND = re.compile(r"^/[a-z][a-z0-9_-]*$")
_WORD_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*$")
_VERSION = re.compile(r"^v?\d+(?:\.\d+)*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_UNSPEAKABLE = re.compile(r"[{}();<>$\\|&*\"'\[\]=]")
_NOUN_NEXT = re.compile(  # a word after the code that can carry the article before it
    r"^\s*(?!(?:a|an|the|at|via|with|for|to|from|of|in|on|by|and|or|is|are|was|be)\b)[A-Za-z]",
    re.IGNORECASE,
)
_PROGRAM = re.compile(r"[{};()]")  # code, not a command line
# A file name is said as written ("setup.md"); only common extensions count, so a dotted
# identifier (`os.path`, `Answer.spoken`) is not taken for one.
_FILE_NAME = re.compile(
    r"[\w-]+\.(?:md|mdx|txt|rst|pdf|html?|csv|tsv|xlsx?|docx?|pptx?|json|jsonl|ya?ml|toml|ini|"
    r"cfg|conf|env|py|js|ts|tsx|jsx|sh|sql|db|log|xml|svg|png|jpe?g|gif|webp|zip|gz|tar|lock)$",
    re.IGNORECASE,
)
_DOTFILE = re.compile(r"^\.[A-Za-z][\w.-]*$")
_FLAG = re.compile(r"^--?([A-Za-z][\w-]*)(?:[= ](\S+))?$")


def _before(context: str) -> bool:
    """Whether `context` (the text just before a form) ends with its own determiner."""
    return bool(_DETERMINER.search(context))


def say_setting(name: str, value: str | None, before: str, after: str) -> str:
    """An environment variable or constant, as "the NAME setting" (value said when plain)."""
    words = " ".join(part for part in name.split("_") if part)
    phrase = words if _before(before) or _SETTING_NOUN.match(after) else f"the {words}"
    if not _SETTING_NOUN.match(after):
        phrase += " setting"
    if value:
        value = value.strip().strip("\"'")
        if _PLAIN_VALUE.match(value):
            # "set `X=true`": "set the X setting to true", not "… setting set to true"
            verb = "" if re.search(r"\bset\s*$", before, re.IGNORECASE) else " set"
            phrase += f"{verb} to {say_identifier(value)}"
    return phrase


def say_identifier(code: str) -> str:
    """snake_case, kebab-case, camelCase and dotted names as words; versions stay numbers."""
    if _VERSION.match(code):
        return say_version(code)
    parts = re.split(r"[^A-Za-z0-9]+", code)
    words: list[str] = []
    for part in filter(None, parts):
        pieces = _CAMEL.sub(" ", part).split()
        # camelCase pieces are words of one name ("spoken variant"); "X-Slack-Signature"
        # keeps its own capitals.
        words += pieces if len(pieces) == 1 else [p if p.isupper() else p.lower() for p in pieces]
    # The letter, not the article: `-a` is "the A option", not "the a option".
    return " ".join("A" if w == "a" else w for w in words)


def say_version(code: str) -> str:
    return f"version {code[1:]}" if code[:1] in "vV" else code


def say_path(path: str, before: str, after: str) -> str:
    """A file path as its file name; a folder as "the NAME folder"."""
    name = path.rstrip("/").rsplit("/", 1)[-1].lstrip("~")
    if not name or name in {".", ".."}:
        return "that folder" if not _before(before) else "folder"
    if _FILE_NAME.search(name) and not path.endswith("/"):
        return name
    name = say_identifier(name)
    phrase = name if _before(before) else f"the {name}"
    return phrase if _FOLDER_NOUN.match(after) else f"{phrase} folder"


_METHOD = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s*$")
METHOD_AND_PATH = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(/[\w.{}:/-]+)")
_API_PATH = re.compile(r"^/(?:api/)?v\d+(?:beta\d*|alpha\d*)?/")


def is_endpoint(path: str, before: str) -> bool:
    """An HTTP API path ("/v1/messages", "POST /videos"), not a file."""
    return bool(_API_PATH.match(path) or _METHOD.search(before))


def say_endpoint(path: str, before: str, after: str, method: str = "") -> str:
    """ "/v1/messages" as "the messages endpoint", "POST /v1/messages" as "the POST messages
    endpoint"."""
    parts = [
        p
        for p in path.strip("/").split("/")
        if p and not re.fullmatch(r"v\d+\w*|api|\{.*\}|:\w+", p)
    ]
    name = " ".join(w for w in (method, say_identifier(parts[-1]) if parts else "API") if w)
    head = "" if _before(before) else "the "
    noun = "" if re.match(r"^\s*(?:endpoint|route|api)s?\b", after, re.I) else " endpoint"
    return f"{head}{name}{noun}"


_LINK_NOUN = re.compile(r"^\s*(?:link|page|site|url|website)s?\b", re.IGNORECASE)


def say_link(before: str, after: str = "") -> str:
    """A URL as "the link in the thread" (the written answer holds it)."""
    if _LINK_NOUN.match(after):  # "the https://… page": the noun after says it
        return "" if _before(before) else "the"
    return "link in the thread" if _before(before) else LINK_PHRASE


def say_channel(name: str, before: str) -> str:
    """A Slack channel reference (`<#C1|general>`) as "the general channel"."""
    words = say_identifier(name) if name else ""
    if _before(before):
        return f"{words} channel".strip()
    return f"the {words} channel" if words else "a channel"


def _say_command(tokens: list[str]) -> str:
    """The command's leading plain words ("avatarbot knowledge add"); arguments, flags and
    paths after them are in the written answer."""
    said: list[str] = []
    for i, token in enumerate(tokens):
        bare = token.rstrip(",.;:?!")
        if i == 0 and _SLASH_COMMAND.match(bare):
            said.append("slash " + bare[1:].replace("-", " ").replace("_", " "))
        elif _WORD_TOKEN.match(bare) and not bare.startswith("-"):
            said.append(bare.replace("_", " "))
        elif _VERSION.match(bare) and said:
            said.append(bare)
        else:
            break
        if bare != token:
            break
    return " ".join(said)


def say_code(code: str, before: str, after: str) -> str:
    """Inline code as the words a person would say for it; `CODE_PHRASE` when it cannot be
    said (the written answer shows it)."""
    code = code.strip()
    if not code:
        return ""
    if re.match(r"^(?:https?://|www\.)", code):
        return say_link(before, after)
    if assignment := _ASSIGNMENT.match(code):
        return say_setting(assignment.group(1), assignment.group(2), before, after)
    if env := ENV_NAME.fullmatch(code):
        return say_setting(env.group(1), None, before, after)
    if _SLASH_COMMAND.match(code):
        return "slash " + say_identifier(code)
    if flag := _FLAG.match(code):  # `--datasource hr`: "the datasource option"
        words = say_identifier(flag.group(1))
        noun = "option" if _SETTING_NOUN.match(after) is None else ""
        return " ".join(w for w in ("" if _before(before) else "the", words, noun) if w)
    if _DOTFILE.match(code):  # `.env`: "the dot env file"
        noun = "" if _FOLDER_NOUN.match(after) or re.match(r"^\s*files?\b", after) else " file"
        return ("" if _before(before) else "the ") + f"dot {say_identifier(code)}{noun}"
    if _FILE_NAME.fullmatch(code):
        return code
    if method := re.match(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(/\S*)$", code):
        return say_endpoint(method.group(2), before, after, method.group(1))
    if "/" in code and re.fullmatch(r"[\w.~/{}:-]*\w[\w.~/{}:-]*/?", code):
        if code.startswith("/") and is_endpoint(code, before):
            return say_endpoint(code, before, after)
        return say_path(code, before, after)
    tokens = code.split()
    said = ""
    if len(tokens) == 1 and not _UNSPEAKABLE.search(code.removesuffix("()")):
        said = say_identifier(code.removesuffix("()"))
        if said.lower() in _FUNCTION_WORDS:  # `to` said "to" reads as a hole in the sentence
            said = ""
    elif len(tokens) <= 8 and not _PROGRAM.search(code):
        said = _say_command(tokens)
    if said:
        return said
    if not _before(before):
        return CODE_PHRASE
    # "a `{…}` body": the noun after carries the sentence; alone, the code is "in the thread".
    return "" if _NOUN_NEXT.match(after) else "code in the thread"


_FUNCTION_WORDS = frozenset(
    [
        "an",
        "the",
        "at",
        "via",
        "with",
        "see",
        "visit",
        "for",
        "to",
        "from",
        "of",
        "in",
        "on",
        "by",
        "and",
        "or",
        "called",
        "named",
    ]
)
_FENCE_INFO = re.compile(r"^(?:```|~~~)\s*([\w+-]*)")
_SHELL = {"bash", "sh", "shell", "console", "zsh", "powershell", "ps1", "cmd", "bat", "fish"}
_CONFIG = {"yaml", "yml", "json", "toml", "ini", "env", "dotenv", "conf", "properties"}
_COMMAND_START = re.compile(
    r"^\s*(?:\$\s|>\s|(?:sudo|pip|pipx|uv|npm|npx|yarn|pnpm|brew|apt|apt-get|curl|wget|git|"
    r"docker|kubectl|make|python3?|export|cd|avatarbot|alembic|ruff|pytest)\b)"
)


def fenced_noun(block: str) -> str:
    """What a fenced code block holds, as a noun phrase: "the command", "the settings"."""
    match = _FENCE_INFO.match(block)
    info = match.group(1).lower() if match else ""
    body = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.startswith(("```", "~~~"))]
    if info in _CONFIG:
        return "the settings"
    if info in _SHELL or (body and all(_COMMAND_START.match(ln) for ln in body)):
        return "the commands" if len(body) > 1 else "the command"
    return "the code"


def say_fenced(block: str) -> str:
    """A fenced code block is not read out: one sentence says what and where it is."""
    noun = fenced_noun(block)
    verb = "are" if noun.endswith("s") else "is"
    return f"{noun.capitalize()} {verb} in the thread."


# Abbreviations a voice may read letter by letter or as a sentence end, and units after a
# number, in the words people say. Acronyms such as API or URL stay: voices say them well.
_ABBREVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), words)
    for pattern, words in (
        (r"\be\.\s?g\.(?=\W|$)", "for example"),
        (r"\bi\.\s?e\.(?=\W|$)", "that is"),
        (r"\betc\.(?=\W|$)", "and so on"),
        (r"\bvs\.?(?=\s)", "versus"),
        (r"\bapprox\.(?=\s)", "about"),
        (r"\bw/o(?=\s)", "without"),
    )
)
_UNITS = {
    "ms": "milliseconds",
    "s": "seconds",
    "sec": "seconds",
    "secs": "seconds",
    "min": "minutes",
    "mins": "minutes",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "kb": "kilobytes",
    "mb": "megabytes",
    "gb": "gigabytes",
    "tb": "terabytes",
    "kib": "kibibytes",
    "mib": "mebibytes",
    "gib": "gibibytes",
    "px": "pixels",
    "fps": "frames per second",
    "rpm": "requests per minute",
    "wpm": "words per minute",
}
_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_VERSION_WORD = re.compile(r"(?<![\w.])v(\d+(?:\.\d+)*)\b")


def _unit(match: re.Match[str]) -> str:
    number, unit = match.group(1), _UNITS[match.group(2).lower()]
    if len(match.group(2)) == 1 and " " not in match.group(0) and len(number) > 3:
        return match.group(0)  # "the 1990s", not seconds
    return f"{number} {unit[:-1] if number == '1' and unit.endswith('s') else unit}"


def read_out(text: str) -> str:
    """Abbreviations, units and version marks as words ("e.g." -> "for example",
    "10 MB" -> "10 megabytes", "v3" -> "version 3")."""
    for pattern, words in _ABBREVIATIONS:
        text = pattern.sub(words, text)
    text = _UNIT.sub(_unit, text)
    text = _VERSION_WORD.sub(r"version \1", text)
    return re.sub(r"\b([Vv]ersion) version\b", r"\1", text)  # "Version v3" said once
