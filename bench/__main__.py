"""`python -m bench [NAME ...] [--quick]`: run benches (all when no NAME is given)."""

from __future__ import annotations

import argparse

from bench import (
    answer,
    answer_quality,
    avatar,
    crawl_bench,
    flood,
    index_bench,
    live_sse,
    slack_bench,
    store_bench,
    visibility,
    writers,
)

BENCHES = {
    "index": index_bench.run,
    "writers": writers.run,
    "answer": answer.run_bench,
    "quality": lambda quick: answer_quality.run(None, show=False),
    "store": store_bench.run,
    "avatar": avatar.run,
    "live_sse": live_sse.run,
    "slack": slack_bench.run,
    "flood": flood.run,
    "visibility": visibility.run,
    "crawl": crawl_bench.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        choices=[[], *BENCHES],
        metavar="NAME",
        help=f"one of: {', '.join(BENCHES)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small corpora, fewer rounds")
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="slack: the default settings (real embedding, the shared eval corpus) instead",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="slack --defaults: also run git REF (e.g. main) in the same run, for ratios",
    )
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="slack --defaults: each mention asks a different question of the shared eval set",
    )
    args = parser.parse_args()
    for name in args.names or list(BENCHES):
        if name == "slack":
            slack_bench.run(
                quick=args.quick,
                defaults=args.defaults,
                baseline=args.baseline,
                distinct=args.distinct,
            )
        else:
            BENCHES[name](quick=args.quick)


if __name__ == "__main__":
    main()
