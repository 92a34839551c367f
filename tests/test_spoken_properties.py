"""Properties of the avatar's script over generated answers: never a URL, a backtick, a
citation mark or a hole, and the live sentences are exactly the stored script."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from hypothesis import example, given, settings
from hypothesis import strategies as st

from knowledge.answering.sentences import split_sentences
from knowledge.answering.spoken import speakable, spoken_sentences, spoken_variant
from knowledge.spoken_eval import sentence_flaws

NOUNS = ["key", "token", "folder", "answer", "avatar", "thread", "video", "setting", "files"]
VERBS = ["set", "run", "open", "read", "keep", "check", "add", "use", "upload"]
code_text = st.text(
    alphabet=st.sampled_from(list("abcXYZ_-./=${}();<>|&*\"' 019:")), min_size=1, max_size=24
).filter(lambda t: "`" not in t and t.strip())
url = st.builds(
    lambda host, path: f"https://{host}.example.com/{path}",
    st.sampled_from(["docs", "api", "x"]),
    st.sampled_from(["", "a/b", "guide#add", "q?x=1"]),
)
thing = st.one_of(
    st.sampled_from(NOUNS),
    code_text.map(lambda t: f"`{t}`"),
    url,
    st.builds(lambda n, u: f"[{n}]({u})", st.sampled_from(NOUNS), url),
    url.map(lambda u: f"<{u}>"),
    st.sampled_from(["./docs", "./docs/setup.md", "/srv/a/b.pdf", "docs/setup.md", "~/notes/"]),
    st.sampled_from(["SLACK_BOT_TOKEN", "`HEYGEN_LIVE_API=streaming`", "$OPENAI_API_KEY"]),
    st.sampled_from(["/ask-video", "`avatarbot knowledge add ./docs`", "`pip install -e .`"]),
    st.sampled_from(["`--json`", "`-v`", "`.env`", "`config.yaml`", "<@U1>", "<#C1|general>"]),
    st.sampled_from(
        ["POST /v1/messages", "`GET /v3/videos/{id}`", "/v1/models", "docs.example.com"]
    ),
    st.sampled_from(["3 s", "10 MB", "v3", "**bold** files", "_main_ key"]),
)
phrase = st.one_of(
    st.sampled_from(NOUNS + VERBS + [", e.g. files", ", i.e. one key", "(or not)"]),
    st.builds(lambda p, t: f"{p} {t}", st.sampled_from(["with", "at", "see", "in", "to"]), thing),
    st.builds(lambda d, t: f"{d} {t}", st.sampled_from(["the", "a", "your"]), thing),
)
mark = st.sampled_from(["", "", " [1]", " [2][3]", " [1, 2]", " ✅", " :tada:"])
sentence = st.builds(
    lambda verb, rest, m, end: f"{verb.capitalize()} {' '.join(rest)}{m}{end}",
    st.sampled_from(VERBS),
    st.lists(phrase, min_size=1, max_size=5),
    mark,
    st.sampled_from([".", "!", "?", ""]),
)
block = st.sampled_from(
    ["\n\n```bash\navatarbot serve\n```\n\n", '\n\n```\n{"a": 1}\n```\n\n', "\n\n"]
)
answer = st.builds(
    lambda parts, bullets: " ".join(parts) + "".join(f"\n- {b}" for b in bullets),
    st.lists(
        st.one_of(sentence, st.builds(lambda s, b: s + b, sentence, block)), min_size=1, max_size=6
    ),
    st.lists(sentence, max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(answer)
@example("Set key.\n- Set with `a`.")  # a code span that reads as a word: once a hole
@example("Set with `a` with key.")
@example("Set with `-a`.")
def test_the_script_is_plain_whole_speech(text: str) -> None:
    script = speakable(text)
    assert script, text
    assert not re.search(r"https?://|www\.|`|\[\d+\]", script)
    for said in split_sentences(script):
        assert sentence_flaws(said) == [], (said, text)


async def _stream(text: str, size: int) -> AsyncIterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


@settings(max_examples=60, deadline=None)
@given(answer, st.integers(min_value=1, max_value=40), st.sampled_from([5.0, 20.0, 60.0]))
def test_live_sentences_are_the_stored_script(text: str, size: int, seconds: float) -> None:
    async def live() -> list[str]:
        return [s async for s in spoken_sentences(_stream(text, size), seconds)]

    assert " ".join(asyncio.run(live())) == spoken_variant(text, seconds)
