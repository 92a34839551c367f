"""Shared CLI plumbing: loading settings once, printing errors as one line (`bot.failures`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperOption

from bot.config import Settings, SettingsError, load_settings

# pypdf logs how it copes with a malformed file ("EOF marker not found"); with no handler
# Python prints that to stderr. The file's row already says "corrupt or unreadable PDF".
logging.getLogger("pypdf").addHandler(logging.NullHandler())

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line to stderr and exit."""
    # escape: messages may hold brackets ("[REDACTED]", ids) that rich would read as markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def failures() -> Iterator[None]:
    """Any layer's error as one line (sentence and what to check), exit status 1."""
    try:
        yield
    except Exception as exc:
        # Imported here, not at the top: the failure wording names every layer's errors
        # (Slack, HTTP, the store), which a command such as `knowledge add` never loads.
        from bot.failures import describe

        if not isinstance(exc, layer_errors()):
            raise
        fail(describe(exc).line)


def layer_errors() -> tuple[type[Exception], ...]:
    """Each layer's base error: what a command turns into one line instead of a traceback."""
    from bot.avatar.errors import AvatarError
    from bot.heygen.errors import HeyGenError
    from bot.store.base import StoreError
    from knowledge.errors import KnowledgeError

    return (KnowledgeError, AvatarError, HeyGenError, StoreError)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), code=2)


def is_tty() -> bool:
    return sys.stdout.isatty()


def _help_type(self: TyperOption | TyperArgument, ctx: typer.Context) -> str | None:
    """What `--help` shows after a parameter: what a user types, never a Python type.

    typer 0.29 prints each parameter's annotation (`--json <bool>`, `PATH <list[str]>`);
    flags take no value, arguments are named already, options show their metavar (or the
    option's name, or the choices).
    """
    if isinstance(self, TyperArgument) or self.is_flag or self.count:
        return None
    if self.metavar is not None:
        return self.metavar
    if self.type_descriptor.is_choice:
        return self.display_type(ctx).strip("<>")
    return (self.name or "value").upper()


TyperOption.display_type_rich = _help_type  # type: ignore[method-assign]
TyperArgument.display_type_rich = _help_type  # type: ignore[method-assign]
