"""Files and folders on disk -> documents. The only module here that touches the file system."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from knowledge.models import Document
from knowledge.sources.errors import Skipped, SourceError, too_large
from knowledge.sources.parsers import parse_bytes, unsupported_reason

MISSING = "no such file or folder"


def load_file(path: Path, *, max_bytes: int) -> Document:
    """Load one file; source is its resolved absolute path. Raises SourceError.

    The size is checked from stat() before reading, so a huge file is never read into memory.
    """
    resolved = Path(path).expanduser().resolve()
    source = str(resolved)
    if not resolved.exists():  # before the type: a mistyped folder is missing, not "no extension"
        raise SourceError(source, MISSING)
    reason = unsupported_reason(resolved.name)
    if reason:
        raise SourceError(source, reason)
    try:
        size = resolved.stat().st_size
        if not resolved.is_file():
            raise SourceError(source, "not a regular file")
        if size > max_bytes:
            raise too_large(source, size, max_bytes)
        data = resolved.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError(source, MISSING) from exc
    except PermissionError as exc:
        raise SourceError(source, "permission denied") from exc
    except IsADirectoryError as exc:
        raise SourceError(source, "not a regular file") from exc
    except OSError as exc:
        raise SourceError(source, f"cannot read: {exc.strerror or exc}") from exc
    return parse_bytes(data, resolved.name, source=source, max_bytes=max_bytes)


def walk_folder(root: Path) -> Iterator[Path | Skipped]:
    """Every loadable file under root, depth first in name order, yielded as found.

    Hidden files and folders (leading dot) and unsupported types come out as Skipped with a
    reason. Symlinked folders are followed once: a folder already visited (a symlink loop or
    a second link to the same place) is skipped, so the walk always ends.
    """
    root = Path(root).expanduser()
    try:
        stat = root.stat()
    except OSError as exc:
        yield Skipped(str(root), f"cannot read folder: {exc.strerror or exc}")
        return
    yield from _walk(root, {(stat.st_dev, stat.st_ino)})


def _walk(folder: Path, visited: set[tuple[int, int]]) -> Iterator[Path | Skipped]:
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        yield Skipped(str(folder), f"cannot read folder: {exc.strerror or exc}")
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            yield Skipped(str(path), "hidden")
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks
            is_file = entry.is_file()
        except OSError as exc:
            yield Skipped(str(path), f"cannot read: {exc.strerror or exc}")
            continue
        if is_dir:
            stat = entry.stat()
            key = (stat.st_dev, stat.st_ino)
            if key in visited:
                yield Skipped(str(path), "folder already visited (symlink loop)")
                continue
            visited.add(key)
            yield from _walk(path, visited)
        elif is_file:
            reason = unsupported_reason(entry.name)
            yield Skipped(str(path), reason) if reason else path
        elif entry.is_symlink():
            yield Skipped(str(path), "broken symlink")
        else:
            yield Skipped(str(path), "not a regular file")
