"""What every verb shares. The Ctx a verb runs on, built from what the entry point hands down
(its env and clock): the only place that reads os.environ and the real clock; every click verb
and a beat share it. And the bodies the steering verbs read: words joined, or stdin."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

import click

from looop.cli.commands import process_clock, process_env
from looop.core.context import Ctx, ctx_for
from looop.home import jsonio
from looop.home.config import Config
from looop.home.errors import LooopError


def make_ctx(events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    env = process_env()
    return ctx_for(env, process_clock(env), events_to)


T = TypeVar("T")
ACTOR = "user (cli)"  # a human at the CLI, as `looop land`, `review --send` and `answer` journal


def from_config(ctx: Ctx, read: Callable[[Config], T], default: T) -> T:
    """What `read` finds in the config, or `default` when the config cannot be read (its
    trouble is said where it matters: status, doctor, the beat)."""
    try:
        return read(ctx.config())
    except LooopError:
        return default


def show_rows(
    rows: Sequence[Any],
    as_json: bool,
    empty: str,
    line: Callable[[Any], str],
    head: str | None = None,
    **dump: Any,
) -> bool:
    """A list verb's output: one JSON array (`dump`: jsonio.dumps's keywords), else `empty`
    when there are none, else `head` and a line per row. True when rows were listed as text
    (a verb's closing note follows them)."""
    if as_json:
        click.echo(jsonio.dumps(rows, **dump))
        return False
    if not rows:
        click.echo(empty)
        return False
    if head is not None:
        click.echo(head)
    for r in rows:
        click.echo(line(r))
    return True


def progress_line(stream: TextIO | None = None) -> Callable[[str], None]:
    """What long work says of each step as it begins: on a terminal only, so a script's
    stderr stays for errors (by default the stderr of the call, not of this module's import)."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        return lambda step: None
    return lambda step: print(f"looop: {step}…", file=stream, flush=True)


JOURNAL_OPT = click.option(
    "--journal", "-j", default=None, help="The journal line (default: a summary of the move)."
)


def hidden_alias(group: click.Group, cmd: click.Command, name: str) -> None:
    """`name` runs `cmd` too, without a second row in the group's help (v1.0's spellings)."""
    alias = copy.copy(cmd)
    alias.hidden = True
    group.add_command(alias, name)


MAX_BODY_BYTES = 4 << 20  # far past any prompt budget; stops a runaway pipe early


def body(parts: tuple[str, ...], what: str) -> str:
    """A body given as words, joined by one space as v1.0 does (`goal write g1 fix the bug`),
    or stdin for `-` / when none is given and stdin is piped."""
    value = " ".join(parts) if parts else None
    if value == "-" or (value is None and not sys.stdin.isatty()):
        data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise LooopError(
                f"the {what} on stdin is over {MAX_BODY_BYTES >> 20} MiB; keep it short and "
                "point at files for the rest"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise LooopError(f"the {what} on stdin is not valid UTF-8") from None
    if value is None:
        raise click.UsageError(f"give the {what} as an argument, or `-` to read it from stdin")
    return value
