"""`avatarbot` command line: one typer app, one module per command group.

Each group module owns its commands; this module only wires them together and turns our
error types into one clear line (never a traceback, never a secret). A command's module is
imported when that command runs (`LazyCommands`): `avatarbot knowledge add` never loads the
Slack app, the HTTP server or the conversation store, which would cost it ~50 MB resident.
"""

from __future__ import annotations

import importlib

import click
import typer
from typer.core import TyperGroup

from bot.cli.output import settings
from bot.malloc import few_malloc_arenas

# name -> (module, attribute: a typer sub-app or a command function, help for the listing)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "ask": ("bot.cli.ask", "ask", ""),
    "serve": ("bot.cli.serve", "serve", ""),
    "knowledge": ("bot.cli.knowledge", "app", "Load, list, remove and search documents."),
    "heygen": ("bot.cli.heygen", "app", "HeyGen catalog and test renders."),
    "eval": ("bot.cli.evaluate", "app", "Measure retrieval and answer quality."),
}


class LazyCommands(TyperGroup):
    """The top-level group: lists COMMANDS, imports one's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, help_text = COMMANDS[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            command: click.Command = typer.main.get_group(target)
            command.help = help_text
        else:
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="avatarbot",
    help="Answer questions from your documents; have a HeyGen avatar say them.",
    cls=LazyCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _validate_settings() -> None:
    """Fail at start, naming the variable, when a setting is invalid."""
    settings()


def main() -> None:
    few_malloc_arenas()  # before any worker thread exists (memory: see bot/malloc.py)
    app()
