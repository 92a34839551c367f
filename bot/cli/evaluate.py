"""`avatarbot eval …` commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from bot.cli.output import console, err_console, fail, settings
from knowledge.answer_eval import AnswerReport, AnswerResult, run_answer_eval, word_count
from knowledge.errors import KnowledgeError
from knowledge.evaluation import EvalReport, run_retrieval_eval

app = typer.Typer(no_args_is_help=True)


@app.command()
def retrieval(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Holds corpus/, questions.jsonl")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Passages per search.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Index DIR/corpus into a throw-away knowledge base and score DIR/questions.jsonl."""
    config = settings().knowledge_config()
    bar, on_progress = _progress()
    try:
        with bar:
            report = run_retrieval_eval(folder, config, k=k, progress=on_progress)
    except KnowledgeError as exc:  # the base of every knowledge error
        fail(str(exc))
    if as_json:
        print(json.dumps(report.summary()))
        return
    _print(report)


@app.command()
def answers(
    folders: Annotated[
        list[Path],
        typer.Argument(metavar="DIR...", help="Sets, each holding corpus/ and questions.jsonl"),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per set (one line each).")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Answer only the first N questions.")
    ] = None,
    lead_words: Annotated[
        int | None,
        typer.Option(
            "--lead-words", min=1, help="Cut the lead baseline at N words, not the answer's length."
        ),
    ] = None,
    per_question: Annotated[
        bool,
        typer.Option(
            "--per-question",
            help="Also show every question: its answer's recall beside the lead's, worst first "
            "(with --json: one JSON line per question after its set's figures).",
        ),
    ] = False,
) -> None:
    """Answer each DIR/questions.jsonl (rows with an `answer`) as the bot would and score the
    answers against the references, beside a lead baseline from the same retrieval."""
    s = settings()
    for folder in folders:
        bar, on_progress = _progress()
        try:
            with bar:
                report, results = run_answer_eval(
                    folder,
                    s.knowledge_config(),
                    s.answer_config(),
                    limit=limit,
                    lead_words=lead_words,
                    progress=on_progress,
                )
        except KnowledgeError as exc:
            fail(str(exc))
        worst_first = sorted(results, key=lambda r: r.scores[0] - r.baseline_scores[0])
        if as_json:
            print(json.dumps(report.summary()))
            if per_question:
                for r in worst_first:
                    print(json.dumps(r.row()))
            continue
        _print_answers(report, folder)
        if per_question:
            _print_questions(worst_first)


def _print_questions(results: list[AnswerResult]) -> None:
    table = Table(title="Per question (where the answer loses to the lead first)")
    for column in ("question", "recall", "lead", "words", "gold cited"):
        table.add_column(column, justify="left" if column == "question" else "right")
    for r in results:
        table.add_row(
            escape(r.question.question),
            f"{r.scores[0]:.2f}",
            f"{r.baseline_scores[0]:.2f}",
            str(word_count(r.text)),
            "yes" if r.gold_cited else "no",
        )
    console.print(table)


def _progress() -> tuple[Progress, Callable[[str, int, int], None]]:
    # Progress goes to stderr so `--json` keeps stdout to exactly one object.
    bar = Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    tasks: dict[str, int] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, on_progress


def _print_answers(report: AnswerReport, folder: Path) -> None:
    table = Table(
        title=f"{escape(str(folder))}: {report.questions} answers ({report.path}) vs the lead"
    )
    for column in ("", "recall", "precision", "words"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row(
        report.path, f"{report.recall:.3f}", f"{report.precision:.3f}", f"{report.words:.1f}"
    )
    table.add_row(
        f"lead baseline ({report.lead_words} words)"
        if report.lead_words
        else "lead baseline (same length)",
        f"{report.baseline_recall:.3f}",
        f"{report.baseline_precision:.3f}",
        f"{report.baseline_words:.1f}",
    )
    console.print(table)
    ratio = report.recall / report.baseline_recall if report.baseline_recall else float("inf")
    console.print(
        f"answer / lead recall {ratio:.2f}x\n"
        f"gold source cited {report.gold_cited:.2f}   grounded {report.grounded:.2f}\n"
        f"answer latency p50 {report.p50_ms:.1f} ms   p95 {report.p95_ms:.1f} ms"
    )
    if report.spoken:
        console.print(report.spoken.line())


def _print(report: EvalReport) -> None:
    table = Table(title="Per source (worst first)")
    for column in ("source", "questions", "hit@1", f"hit@{report.k}", "MRR@10"):
        table.add_column(column, justify="left" if column == "source" else "right")
    worst_first = sorted(report.per_source.items(), key=lambda kv: (kv[1].mrr_at_10, kv[0]))
    for source, s in worst_first:
        table.add_row(
            escape(source),
            str(s.questions),
            f"{s.hit_at_1:.2f}",
            f"{s.hit_at_k:.2f}",
            f"{s.mrr_at_10:.3f}",
        )
    console.print(table)
    console.print(
        f"{report.questions} questions over {report.documents} documents "
        f"({report.chunks} chunks, embeddings '{report.embedding}')\n"
        f"hit@1 {report.hit_at_1:.3f}   hit@5 {report.hit_at_5:.3f}   "
        + (f"hit@{report.k} {report.hit_at_k:.3f}   " if report.k != 5 else "")
        + f"MRR@10 {report.mrr_at_10:.3f}\n"
        f"search latency p50 {report.p50_ms:.1f} ms   p95 {report.p95_ms:.1f} ms"
    )
