"""The link a person can open for a passage: never a server path.

- a web page: its URL and the section's anchor (set at ingest, `Chunk.link`);
- a Slack upload: its Slack permalink (the upload's `url`, set at ingest);
- a file added from disk: the datasource's `base_url` (where, say, the handbook is
  published) joined with the file's path under the datasource's `root` folder, plus the
  section's anchor as GitHub and most renderers make it; with no `base_url`, no link.

`''` means "no link": show the title alone.
"""

from __future__ import annotations

import posixpath
from pathlib import PurePath
from urllib.parse import quote

from yarl import URL

from knowledge.errors import KnowledgeError
from knowledge.ingest.chunking import github_slug
from knowledge.models import Chunk


def is_web_link(link: str | None) -> bool:
    return bool(link) and str(link).lower().startswith(("http://", "https://"))


def checked_base_url(url: str) -> str:
    """A base URL as given, if it is an absolute http(s) URL; KnowledgeError otherwise."""
    try:
        parsed = URL(url.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise KnowledgeError(f"a base URL must be an absolute http(s) URL, not {url!r}")
    return str(parsed)


def is_local_file(source: str) -> bool:
    return "://" not in source and not source.startswith("slack:") and source.startswith("/")


def file_link(chunk: Chunk, base_url: str, root: str = "") -> str:
    """`base_url` + the file's path under `root` (its name alone when outside) + anchor."""
    if not base_url or not is_local_file(chunk.source):
        return ""
    path = PurePath(chunk.source)
    inside = bool(root) and path.is_relative_to(root)
    rel = path.relative_to(root).as_posix() if inside else path.name
    anchor = github_slug(chunk.section.split(" > ")[-1]) if chunk.section else ""
    link = base_url.rstrip("/") + "/" + quote(rel)
    return f"{link}#{anchor}" if anchor else link


def person_link(chunk: Chunk, settings: dict[str, str] | None) -> str:
    """The chunk's link a person can open, or ''."""
    if is_web_link(chunk.link):
        return str(chunk.link)
    if settings:
        return file_link(chunk, settings.get("base_url", ""), settings.get("root", ""))
    return ""


def common_root(sources: list[str]) -> str:
    """The folder the datasource's local files share ('' when it has none)."""
    files = [s for s in sources if is_local_file(s)]
    if not files:
        return ""
    if len(files) == 1:
        return posixpath.dirname(files[0])
    return posixpath.commonpath(files)
