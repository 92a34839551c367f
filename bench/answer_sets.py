"""Retrieval and offline answers on every development set, from one index of their corpus.

    python -m bench.answer_sets [--data-dir DIR] [--per-question FILE] [--limit N]

The sets: the shared questions (shared/eval/anthropic-docs, written like the documents) and
their Slack rewrites (bench/devsets/slack-rewrites: greetings, situation, typos; same gold
pages and reference answers). Both read the same corpus, so it is indexed once, with the
default settings (EMBEDDINGS=onnx-minilm, no LLM); `--data-dir` keeps that index between runs.
Per set: hit@1 and hit@5 of the gold page, and the answer's recall of the reference (ROUGE-1,
as `avatarbot eval answers`) beside the lead baseline of the same length from the same
retrieval, their ratio, the answer's words, and the share grounded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from knowledge.answer_eval import answer_report
from knowledge.config import AnswerConfig, KnowledgeConfig
from knowledge.evaluation import corpus_of, load_questions, questions_of, retrieval_report
from knowledge.index import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "shared": ROOT.parent / "shared" / "eval" / "anthropic-docs",
    "slack-rewrites": ROOT / "bench" / "devsets" / "slack-rewrites",
}


def run(data_dir: Path, limit: int | None, per_question: Path | None) -> None:
    corpus = corpus_of(SETS["shared"])
    kb = KnowledgeBase(KnowledgeConfig(data_dir=data_dir))
    if kb.is_empty():
        kb.add([corpus])
    kb.search("warm up")
    head = f"{'set':16} {'hit@1':>6} {'hit@5':>6} {'answer':>7} {'lead':>6} {'ratio':>6}"
    print(head + f" {'words':>6} {'grounded':>8}")
    dump = []
    for name, folder in SETS.items():
        if corpus_of(folder) != corpus:
            raise SystemExit(f"{name}: not over the shared corpus")
        questions = load_questions(questions_of(folder))[:limit]
        retrieval = retrieval_report(kb, corpus, questions)
        report, results = answer_report(kb, corpus, questions, AnswerConfig())
        ratio = report.recall / max(report.baseline_recall, 1e-9)
        print(
            f"{name:16} {retrieval.hit_at_1:6.3f} {retrieval.hit_at_5:6.3f} "
            f"{report.recall:7.3f} {report.baseline_recall:6.3f} {ratio:6.2f} "
            f"{report.words:6.1f} {report.grounded:8.2f}"
        )
        for r in results:
            dump.append({"set": name, **r.row()})
    if per_question:
        per_question.write_text("".join(json.dumps(d) + "\n" for d in dump))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.answer_sets", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="keep the index here between runs")
    parser.add_argument("--limit", type=int, help="only the first N questions of each set")
    parser.add_argument("--per-question", type=Path, help="write one JSON line per answer")
    args = parser.parse_args()
    if args.data_dir:
        run(args.data_dir, args.limit, args.per_question)
        return
    with tempfile.TemporaryDirectory(prefix="bench-sets-") as tmp:
        run(Path(tmp), args.limit, args.per_question)


if __name__ == "__main__":
    main()
