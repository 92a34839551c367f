"""`avatarbot` command line: one typer app, one module per command group.

Each group module owns its commands; this module only wires them together and turns our
error types into one clear line (never a traceback, never a secret).
"""

from __future__ import annotations

import typer

from bot.cli import ask, evaluate, heygen, knowledge, serve
from bot.cli.output import settings
from bot.malloc import few_malloc_arenas

app = typer.Typer(
    name="avatarbot",
    help="Answer questions from your documents; have a HeyGen avatar say them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _validate_settings() -> None:
    """Fail at start, naming the variable, when a setting is invalid."""
    settings()


app.add_typer(knowledge.app, name="knowledge", help="Load, list, remove and search documents.")
app.add_typer(heygen.app, name="heygen", help="HeyGen catalog and test renders.")
app.add_typer(evaluate.app, name="eval", help="Measure retrieval and answer quality.")
app.command("ask")(ask.ask)
app.command("serve")(serve.serve)


def main() -> None:
    few_malloc_arenas()  # before any worker thread exists (memory: see bot/malloc.py)
    app()
