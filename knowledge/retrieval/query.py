"""Conversational questions cleaned for lexical search.

People write to a help desk the way they talk: "Hi team! so what should i do about my
invoice? thanks in advance :)". The words that carry no topic (greetings, thanks, sign-offs,
politeness, talk about asking) match every page that says "thanks" or "help" in its footer
and push BM25 towards boilerplate. They are removed before the lexical search; the dense
half reads the question as written, and so does everything shown to people.
"""

from __future__ import annotations

import re

# Whole phrases first (longest first), then single words; case-insensitive, word-bounded.
_PHRASES = (
    "thanks in advance",
    "thank you",
    "many thanks",
    "any ideas",
    "any help",
    "any advice",
    "i was wondering",
    "i am wondering",
    "i'm wondering",
    "can you tell me",
    "could you tell me",
    "can someone tell me",
    "does anyone know",
    "anyone know",
    "let me know",
    "i need help",
    "would be appreciated",
    "much appreciated",
    "quick question",
    "good morning",
    "good afternoon",
    "good evening",
)
_WORDS = (
    "hi",
    "hello",
    "hey",
    "hiya",
    "thanks",
    "thx",
    "cheers",
    "regards",
    "please",
    "pls",
    "plz",
    "kindly",
    "appreciated",
    "um",
    "uh",
    "lol",
    "guys",
    "folks",
)
_FILLER = re.compile(
    r"(?i)(?<![\w'])(?:"
    + "|".join(re.escape(p) for p in sorted(_PHRASES, key=len, reverse=True))
    + r"|(?:"
    + "|".join(_WORDS)
    + r"))(?![\w'])"
)
_EMOTICON = re.compile(r"[:;]-?[()DPp]|[!?]{2,}")


def lexical_query(question: str) -> str:
    """`question` without conversational filler; the question itself if nothing is left."""
    cleaned = " ".join(_FILLER.sub(" ", _EMOTICON.sub(" ", question)).split())
    return cleaned if re.search(r"\w", cleaned) else question


# A sentence that asks: it ends with a question mark or opens with a question word or an
# auxiliary ("how …", "is there …", "can I …"). English grammar, not any set's phrasing.
_ASKS = re.compile(
    r"^\W*(?:how|what|what's|whats|which|who|whom|whose|why|when|where|is|are|was|were"
    r"|do|does|did|can|could|should|would|will|shall|may|might|must)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def ask_and_situation(question: str) -> tuple[str, str]:
    """The question split into what it asks and the situation told around it: "we run a
    shop on X. how do I refund an order?" asks the second sentence. A question of one
    sentence, or with no sentence that asks, is all ask."""
    sentences = [s for s in _SENTENCE_END.split(question.strip()) if s.strip()]
    asks = [s for s in sentences if s.rstrip().endswith("?") or _ASKS.match(s)]
    if len(sentences) <= 1 or not asks:
        return question, ""
    return " ".join(asks), " ".join(s for s in sentences if s not in asks)
