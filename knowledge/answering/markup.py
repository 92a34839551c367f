"""Markdown/HTML inline-markup patterns shared by everything that turns passages into prose.

The composer (written answers) and the spoken variant strip markup in different orders and
keep different things, but what counts as an image, a link, a tag or a finished sentence is
the same for both: one definition here, so a fix to one cannot miss the other.
"""

from __future__ import annotations

import re

IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")  # group 1: the label
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
# A fenced code block; an unclosed one runs to the end (a stream may not have closed it yet).
FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
CITATION = re.compile(r"\s*\[\^?\d+(?:\s*[,–-]\s*\d+)*\]")  # [1], [1, 2], [2-4], [^1]
URL = re.compile(r"(?:https?://|www\.)[^\s<>`]*[^\s<>`.,;:!?)\]'\"]")  # trailing punctuation left
TERMINAL = re.compile(r"[.!?][\"')\]]*$")  # ends like a sentence (closing quote/bracket allowed)
# A file or folder path written in prose: ./docs, ~/x, /srv/a/b.pdf, docs/setup.md, a/b/c —
# not "and/or", "24/7" or "TCP/IP" (one slash, no file extension). A trailing period is
# left out by whoever uses it.
PATH = re.compile(
    r"(?<![\w/.:~-])(?:(?:\.{1,2}|~)?/[\w.-]*[\w-](?:/[\w.{}-]+)*/?"
    r"|[\w-]+(?:/[\w.{}-]+){2,}/?"
    r"|[\w-]+(?:/[\w.-]+)*/[\w-]+\.[A-Za-z0-9]{1,5})(?![\w/])"
)
