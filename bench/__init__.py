"""Benchmarks that print figures side by side with a baseline measured in the same run.

    python -m bench               every bench, full size (a few minutes)
    python -m bench index --quick the index bench on small corpora

Figures, not tests: nothing here asserts on time.
"""
