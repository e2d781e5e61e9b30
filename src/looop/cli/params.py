"""Bounded number options: every count and duration a flag takes has a ceiling, and NaN is
refused (click's ranges let it through: NaN compares false with both ends)."""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any

import click

from looop.home.clock import Clock
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
