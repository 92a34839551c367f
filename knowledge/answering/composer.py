"""The extractive composer: a short answer built from the best sentences of retrieved passages.

Pure: hits in, text and the hits it cites out; no I/O, no model. Used when no language model
is configured, so it has to read as an answer rather than as a dump of chunks. Three steps,
one module each:

- `prose`: passages turned into readable prose units (markup, code, navigation and glue
  dropped; lead-ins kept with their lists);
- `selection`: every readable sentence scored against the question and a short,
  non-redundant set picked (`rank_passages` ranks passages the same way for a language model);
- `writing`: the chosen sentences in the order of their passages and, inside a passage, of
  the document; each run from one passage ends with its `[n]` citation, placed before the
  final period and never inside brackets or quotes.
"""

from __future__ import annotations

from collections.abc import Sequence

from knowledge.answering.prose import prose_units
from knowledge.answering.selection import Embed, rank_passages, select
from knowledge.answering.writing import Composition, write
from knowledge.models import Hit

__all__ = ["Composition", "Embed", "compose", "prose_units", "rank_passages"]


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
    return write(chosen.chosen, hits)
