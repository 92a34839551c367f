"""A clock fakes read instead of time: tests move it forward, nothing sleeps."""

from __future__ import annotations


class FakeClock:
    """Seconds since an arbitrary epoch; only `advance` changes it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.now += seconds
