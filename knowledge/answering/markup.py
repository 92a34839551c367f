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
TERMINAL = re.compile(r"[.!?][\"')\]]*$")  # ends like a sentence (closing quote/bracket allowed)
