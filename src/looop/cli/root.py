"""The click root group with lazily imported subcommands."""

from __future__ import annotations

import importlib
from typing import Any

import click

from looop import __version__
from looop.cli.main import COMMANDS
from looop.core.errors import LooopError


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        mod, attr = target.split(":")
        cmd = getattr(importlib.import_module(mod), attr)
        assert isinstance(cmd, click.Command)
        return cmd


SHORT_HELP = """A tiny, portable, Kubernetes-shaped control loop for agent-driven work.

\b
Start here:
  looop                 start the pulse and stream it (Ctrl-C stops everything)
  looop init            choose the agent CLI (claude, codex, opencode, pi, custom)
  looop up | down       start / stop the pulse in the background
  looop status          pulse, last beat, failures at a glance
  looop tick --dry-run  print the prompt the next decision would get
  looop demo            an offline demo in a throwaway data dir
  looop help            the full manual
"""


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    help=SHORT_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(
    __version__, "--version", "-V", prog_name="looop", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is None:
        from looop.cli.lifecycle import foreground

        ctx.exit(foreground())


def run_click(args: list[str]) -> None:
    try:
        rv: Any = cli.main(args=args, prog_name="looop", standalone_mode=False)
    except click.exceptions.Abort:
        raise SystemExit(130) from None
    except click.exceptions.NoArgsIsHelpError as e:
        # a bare group (`looop goal`) is a request for its help, not a mistake
        click.echo(e.ctx.get_help() if e.ctx is not None else "")
        return
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "looop"
        raise LooopError(f"{e.format_message()} (see `{where} --help`)") from None
    except click.ClickException as e:
        raise LooopError(e.format_message()) from None
    except LooopError:
        raise
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
