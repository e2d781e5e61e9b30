"""What the verbs' flags and arguments share. Bounded number options: every count and duration
a flag takes has a ceiling, and NaN is refused (click's ranges let it through: NaN compares
false with both ends). And the bodies the steering verbs read: words joined, or stdin."""

from __future__ import annotations

import copy
import math
import sys
from datetime import datetime
from typing import Any

import click

from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.sessions.durations import parse_duration

MAX_COUNT = 1_000_000_000
MAX_OFFSET = (1 << 63) - 1
MAX_SECONDS = 3660 * 86400.0  # ten years: longer than any real wait, short of any overflow

JOURNAL_OPT = click.option(
    "--journal", "-j", default=None, help="The journal line (default: a summary of the move)."
)


class Seconds(click.FloatRange):
    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return rv


def since_time(text: str, clock: Clock, flag: str = "--since") -> float:
    """`--since`'s wall time: a duration ago (10m, 2h, 1d) or a time (2026-11-27T09:00, in
    the local zone unless it names one), as docker, kubectl and journalctl take it."""
    try:
        return clock.now() - (parse_duration(text) or 0.0)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.UsageError(
            f"{flag} {text!r}: give a duration (10m, 2h, 1d) or a time (2026-11-27T09:00)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=clock.zone())).timestamp()


def seconds(low: float = 0.0, high: float = MAX_SECONDS) -> Seconds:
    return Seconds(min=low, max=high)


def count(low: int = 0, high: int = MAX_COUNT) -> click.IntRange:
    return click.IntRange(min=low, max=high)


def hidden_alias(group: click.Group, cmd: click.Command, name: str) -> None:
    """`name` runs `cmd` too, without a second row in the group's help (v1.0's spellings)."""
    alias = copy.copy(cmd)
    alias.hidden = True
    group.add_command(alias, name)


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
