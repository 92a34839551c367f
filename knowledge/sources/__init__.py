"""Sources: files, folders, URLs and uploaded bytes -> Documents (md, txt, rst, html, pdf, docx).

    load_file(path, max_bytes=...)         one file on disk
    walk_folder(root)                      the files under a folder, plus what was skipped and why
    parse_bytes(data, filename, ...)       raw bytes, e.g. a Slack upload
    await fetch_url(url, max_bytes=...)    an http(s) URL, SSRF-guarded at every redirect
    await fetch_urls(urls, max_bytes=...)  many URLs: (documents, skipped with reasons)

Everything that fails raises SourceError(source, reason) with a short reason for people.
"""

from knowledge.sources.errors import Skipped, SourceError
from knowledge.sources.files import load_file, walk_folder
from knowledge.sources.parsers import SUPPORTED_EXTENSIONS, parse_bytes
from knowledge.sources.urlguard import UrlPolicy
from knowledge.sources.web import fetch_url, fetch_urls, open_session

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Skipped",
    "SourceError",
    "UrlPolicy",
    "fetch_url",
    "fetch_urls",
    "load_file",
    "open_session",
    "parse_bytes",
    "walk_folder",
]
