"""Build bench/devsets/slack-rewrites/questions.jsonl: the shared set's questions as people type
them in Slack, with the shared set's gold pages and reference answers unchanged.

    python -m bench.devsets.make_slack_rewrites

`slack-rewrites/rewrites.txt` holds one rewrite per shared question, in the shared file's order,
written by hand: the person's situation or a greeting first, then the ask in their own words
(lower case, contractions, "lol", several sentences, the doc's wording only where a user would
know it). This script then adds typos the way fast typing makes them: in every third question
one word of six letters or more has two neighbouring letters swapped, chosen by a seeded
random generator, so the file is the same on every run.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent / "slack-rewrites"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "anthropic-docs"
SEED = 18


def with_typo(text: str, rng: random.Random) -> str:
    """One long plain word with two neighbouring letters swapped."""
    words = [m for m in re.finditer(r"\b[a-z]{6,}\b", text)]
    if not words:
        return text
    word = rng.choice(words)
    i = rng.randrange(1, len(word.group()) - 2)
    w = word.group()
    typo = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    return text[: word.start()] + typo + text[word.end() :]


def build() -> list[dict[str, object]]:
    shared = [json.loads(line) for line in (SHARED / "questions.jsonl").read_text().splitlines()]
    rewrites = (HERE / "rewrites.txt").read_text(encoding="utf-8").splitlines()
    if len(rewrites) != len(shared):
        raise SystemExit(f"{len(rewrites)} rewrites for {len(shared)} shared questions")
    rng = random.Random(SEED)
    rows = []
    for i, (row, text) in enumerate(zip(shared, rewrites, strict=True)):
        text = text.replace("\\n", "\n")
        if i % 3 == 2:
            text = with_typo(text, rng)
        rows.append({"question": text, "sources": row["sources"], "answer": row["answer"]})
    return rows


def main() -> None:
    rows = build()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (HERE / "questions.jsonl").write_text(lines, encoding="utf-8")
    print(f"{len(rows)} questions written to {HERE / 'questions.jsonl'}")


if __name__ == "__main__":
    main()
