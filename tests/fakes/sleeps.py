"""A stand-in for `asyncio.sleep` that records the delays asked for instead of waiting."""

from __future__ import annotations


class Sleeps:
    """Backoff / poll delays a client asked for, recorded instead of slept (no wall-clock)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
