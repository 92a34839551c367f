"""What goes wrong with a source, in words a user can act on."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.errors import KnowledgeError


class SourceError(KnowledgeError):
    """A source that could not be loaded; `reason` is short and meant for people."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class HttpStatusError(SourceError):
    """The server answered with a status that is not a page (404, 410, 500, ...)."""

    def __init__(self, source: str, status: int) -> None:
        super().__init__(source, f"HTTP {status}")
        self.status = status

    @property
    def gone(self) -> bool:
        """The page is no longer there (so a sync removes it), not merely failing now."""
        return self.status in (404, 410)


@dataclass(frozen=True)
class Skipped:
    """A source left out on purpose (hidden, unsupported, ...), for walk results and reports."""

    source: str
    reason: str


def human_size(n: int | float) -> str:
    """1536 -> '1.5 KB', 20 MiB -> '20 MB' (binary units, short labels, no trailing .0)."""
    for unit, scale in (("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(n)} bytes"


def too_large(source: str, size: int, limit: int) -> SourceError:
    return SourceError(source, f"too large: {human_size(size)} > {human_size(limit)} limit")
