"""The bodies the steering verbs read, without click: words joined, an argument or stdin. The
click verbs (cli/steer.py, cli/mailbox.py, cli/workers.py) share these; the move itself is
cli/steermove.py, a worker start's check cli/startwork.py."""

from __future__ import annotations

import sys

import click

from looop.home.errors import LooopError

MAX_BODY_BYTES = 4 << 20  # far past any prompt budget; stops a runaway pipe early


def words(parts: tuple[str, ...] | list[str]) -> str | None:
    """A body given as words, joined by one space as v1.0 does (`goal write g1 fix the bug`);
    None when none was given (stdin, or the "give the body" line)."""
    return " ".join(parts) if parts else None


def body(value: str | None, what: str) -> str:
    """A body argument, or stdin for `-` / when omitted and piped."""
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


def nonblank(text: str, what: str, instead: str) -> str:
    """The CLI's own words for what the action refuses anyway (its message names fields)."""
    if not text.strip():
        raise LooopError(f"the {what} is empty — {instead}")
    return text
