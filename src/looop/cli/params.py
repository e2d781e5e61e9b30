"""Bounded number options: every count and duration a flag takes has a ceiling, and NaN is
refused (click's ranges let it through: NaN compares false with both ends)."""

from __future__ import annotations

import copy
import math
from typing import Any

import click

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


def seconds(low: float = 0.0, high: float = MAX_SECONDS) -> Seconds:
    return Seconds(min=low, max=high)


def count(low: int = 0, high: int = MAX_COUNT) -> click.IntRange:
    return click.IntRange(min=low, max=high)


def hidden_alias(group: click.Group, cmd: click.Command, name: str) -> None:
    """`name` runs `cmd` too, without a second row in the group's help (v1.0's spellings)."""
    alias = copy.copy(cmd)
    alias.hidden = True
    group.add_command(alias, name)
