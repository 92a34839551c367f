"""Retrieval and answer evaluation: metric arithmetic, set validation, the CLI's JSON contract
(`eval answers` on a tiny set with known answers)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge.answer_eval import overlap
from knowledge.evaluation import (
    EvalSetError,
    Question,
    QuestionResult,
    load_questions,
    summarize,
)
from tests.fakes.openai_server import API_KEY, FakeOpenAI, Reply
from tests.fakes.server import serve


def result(gold: tuple[str, ...], ranked: tuple[str, ...], ms: float) -> QuestionResult:
    return QuestionResult(Question("q", gold), ranked, ms)


def test_metrics_over_distinct_sources() -> None:
    results = [
        result(("a",), ("a", "b"), 10.0),  # rank 1
        result(("c", "b"), ("x", "b", "c"), 20.0),  # rank 2 (first gold found)
        result(("d",), ("x", "y", "z", "w", "v", "d"), 30.0),  # rank 6
        result(("e",), ("x",), 40.0),  # miss
    ]
    report = summarize(results, k=5)
    assert report.questions == 4
    assert report.hit_at_1 == 0.25 and report.hit_at_5 == 0.5
    assert report.mrr_at_10 == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)
    assert report.p50_ms == pytest.approx(25.0)
    assert report.per_source["b"].questions == 1 and report.per_source["e"].hit_at_k == 0.0
    assert summarize(results, k=6).hit_at_k == 0.75


def test_bad_question_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text('{"question": "ok?", "sources": ["a.md"]}\n{"question": "no sources"}\n')
    with pytest.raises(EvalSetError, match=r"questions.jsonl:2"):
        load_questions(path)


def make_set(folder: Path) -> Path:
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "tokens.md").write_text("# Tokens\n\nRotate the Slack token every ninety days.\n")
    (corpus / "videos.md").write_text("# Videos\n\nRendered videos are uploaded to the thread.\n")
    (corpus / "deploy.md").write_text("# Deploy\n\nRun the bot with docker compose up.\n")
    rows = [
        {"question": "How often do I rotate the token?", "sources": ["tokens.md"]},
        {"question": "Where are rendered videos uploaded?", "sources": ["videos.md"]},
        {"question": "How do I run it with docker?", "sources": ["deploy.md"]},
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATARBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EMBEDDINGS", "none")
    monkeypatch.delenv("LLM_MODEL", raising=False)  # the extractive path
    return CliRunner()


def test_cli_json_is_one_object_with_the_documented_keys(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["eval", "retrieval", str(make_set(tmp_path / "set")), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert {"questions", "hit_at_1", "hit_at_5", "mrr_at_10", "p50_ms", "p95_ms"} <= set(figures)
    assert figures["questions"] == 3 and figures["hit_at_1"] == 1.0 and figures["mrr_at_10"] == 1.0
    assert not (tmp_path / "data").exists()  # a throw-away knowledge base, not the real one


def test_cli_table_and_a_missing_corpus(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["eval", "retrieval", str(make_set(tmp_path / "set")), "-k", "2"])
    assert result.exit_code == 0 and "hit@2" in result.output and "tokens.md" in result.output
    result = cli.invoke(app, ["eval", "retrieval", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "no corpus/ folder" in result.output


# --- eval answers ----------------------------------------------------------------------------

KEYS = {
    "questions",
    "recall",
    "precision",
    "gold_cited",
    "grounded",
    "words",
    "baseline_recall",
    "p50_ms",
    "p95_ms",
    "spoken_fidelity",
    "spoken_sentences",
    "spoken_broken",
}


def test_recall_and_precision_count_stemmed_content_words() -> None:
    # Reference content words: rotat, token, everi, nineti, day (5); the answer has 4 of
    # them among its 7 content words ("are", "the" are stop words, [1] is a citation).
    recall, precision = overlap(
        "Tokens are rotated every ninety minutes, like keys [1].",
        "Rotate the token every ninety days.",
    )
    assert recall == pytest.approx(4 / 5)
    assert precision == pytest.approx(4 / 7)
    assert overlap("", "anything") == (0.0, 0.0)


def make_answer_set(folder: Path, *, answers: bool = True) -> Path:
    """Pages whose answer is not in their first sentences: the lead baseline misses it."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    filler = (
        "This page belongs to the operations handbook of the support team. It was reviewed "
        "by the platform group last spring and is kept in the shared drive. "
    )
    (corpus / "tokens.md").write_text(
        "# Tokens\n\n" + filler + "Rotate the Slack token every ninety days.\n"
    )
    (corpus / "videos.md").write_text(
        "# Videos\n\n" + filler + "Rendered videos are uploaded to the Slack thread.\n"
    )
    (corpus / "deploy.md").write_text(
        "# Deploy\n\n" + filler + "Deploy the bot with docker compose on one server.\n"
    )
    rows = [
        ("How often do I rotate the Slack token?", "tokens.md", "Every ninety days."),
        ("Where are rendered videos uploaded?", "videos.md", "To the Slack thread."),
        ("How do I deploy the bot?", "deploy.md", "With docker compose."),
    ]
    lines = [
        json.dumps({"question": q, "sources": [s], **({"answer": a} if answers else {})})
        for q, s, a in rows
    ]
    (folder / "questions.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_json_has_exactly_the_documented_keys_and_beats_the_lead(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = cli.invoke(app, ["eval", "answers", str(make_answer_set(tmp_path / "set")), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == KEYS
    assert figures["questions"] == 3
    assert figures["grounded"] == 1.0 and figures["gold_cited"] == 1.0
    # The composer says the sentence that answers; the page's first words do not.
    assert figures["recall"] == 1.0
    assert figures["baseline_recall"] < 0.5
    assert 0 < figures["words"] < 20
    assert not (tmp_path / "data").exists()  # a throw-away knowledge base


def test_limit_table_and_bad_sets(cli: CliRunner, tmp_path: Path) -> None:
    folder = make_answer_set(tmp_path / "set")
    result = cli.invoke(app, ["eval", "answers", str(folder), "--limit", "2", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["questions"] == 2
    # A fixed-length lead: how long the page's first words must be to match the answer.
    result = cli.invoke(app, ["eval", "answers", str(folder), "--limit", "1", "--lead-words", "30"])
    assert result.exit_code == 0 and "lead baseline (30 words)" in result.output
    assert "recall" in result.output and "p95" in result.output
    no_answers = make_answer_set(tmp_path / "bare", answers=False)
    result = cli.invoke(app, ["eval", "answers", str(no_answers)])
    assert result.exit_code != 0 and "no question has an 'answer' field" in result.output
    result = cli.invoke(app, ["eval", "answers", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "no corpus/ folder" in result.output


async def test_with_llm_model_the_model_path_is_measured(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeOpenAI()
    # Every answer cites passage [1] and says the reference words.
    server.default = Reply(text="Every ninety days, to the Slack thread, with docker compose [1].")
    async with serve(server.app()) as base_url:
        monkeypatch.setenv("LLM_MODEL", "openai:gpt-4o-mini")
        monkeypatch.setenv("LLM_BASE_URL", f"{base_url}/v1")
        monkeypatch.setenv("LLM_API_KEY", API_KEY)
        folder = make_answer_set(tmp_path / "set")
        # The CLI runs its own event loop: off this one, which serves the fake model.
        result = await asyncio.to_thread(
            cli.invoke, app, ["eval", "answers", str(folder), "--json"]
        )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["questions"] == 3 and figures["grounded"] == 1.0
    assert figures["gold_cited"] == 1.0 and figures["recall"] > figures["baseline_recall"]
    asked = [r["messages"][-1]["content"] for r in server.requests]
    assert sum("How do I deploy the bot?" in a for a in asked) == 1  # one call per question


def test_several_sets_and_the_per_question_dump(cli: CliRunner, tmp_path: Path) -> None:
    first, second = make_answer_set(tmp_path / "one"), make_answer_set(tmp_path / "two")
    args = ["eval", "answers", str(first), str(second), "--limit", "2", "--per-question"]
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # Each set's figures, then its questions, worst answer-vs-lead first.
    assert [set(r) == KEYS for r in rows] == [True, False, False, True, False, False]
    questions = rows[1:3]
    assert {q["question"] for q in questions} == {
        "How often do I rotate the Slack token?",
        "Where are rendered videos uploaded?",
    }
    assert all(q["recall"] == 1.0 and q["gold_cited"] and q["answer"] for q in questions)
    gaps = [q["recall"] - q["baseline_recall"] for q in questions]
    assert gaps == sorted(gaps)
    result = cli.invoke(app, args)
    assert result.exit_code == 0 and result.output.count("Per question") == 2
    assert "answer / lead recall" in result.output


def test_a_set_over_another_sets_corpus_asks_its_own_questions(
    cli: CliRunner, tmp_path: Path
) -> None:
    shared = make_answer_set(tmp_path / "shared")
    chatty = tmp_path / "chatty"
    chatty.mkdir()
    (chatty / "corpus").symlink_to(shared / "corpus")
    (chatty / "questions.jsonl").write_text(
        json.dumps(
            {
                "question": "hey! we're moving servers this week. how do I deploy the bot?",
                "sources": ["deploy.md"],
                "answer": "With docker compose.",
            }
        )
        + "\n"
    )
    result = cli.invoke(app, ["eval", "answers", str(chatty), "--json", "--per-question"])
    assert result.exit_code == 0, result.output
    figures, row = (json.loads(line) for line in result.stdout.splitlines())
    assert figures["questions"] == 1 and figures["gold_cited"] == 1.0
    assert row["question"].startswith("hey! we're moving servers")
    assert "docker compose" in row["answer"]
