"""The verb table: which module holds each verb, its line in `looop --help`, its aliases and
old spellings; and what the entry point hands every verb (`Entry`). Light: `looop --help`
reads it without loading a verb."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import click

from looop.home import where
from looop.home.clock import Clock, SystemClock


class Entry:
    """What the entry point hands every verb (click's context object): the environment and
    the clock, read once from the process — or given by a test."""

    __slots__ = ("clock", "env")

    def __init__(self, env: dict[str, str], clock: Clock | None = None) -> None:
        self.env = env
        self.clock = clock if clock is not None else SystemClock(env.get("TZ"))


def _entry() -> Entry:
    c = click.get_current_context(silent=True)
    found = c.find_object(Entry) if c is not None else None
    return found if found is not None else Entry(dict(os.environ))


def process_env() -> dict[str, str]:
    """The environment the entry point was given (this process's when run for real)."""
    return _entry().env


def process_clock(env: Mapping[str, str]) -> Clock:
    """The clock the entry point was given (the real one, in TZ's zone, when run for real)."""
    return _entry().clock


def home_here() -> tuple[str, str, dict[str, str], Clock]:
    """The data dir, config, env and clock a verb that reads the home as strings runs on (no
    Ctx: `status`, `ls`, `needs` and the session verbs, which a human runs most)."""
    env = process_env()
    return *where.resolve(env, os.getcwd()), env, process_clock(env)


# Bounded number options: every count and duration a flag takes has a ceiling, and NaN is
# refused (click's ranges let it through: NaN compares false with both ends).
MAX_COUNT = 1_000_000_000
MAX_OFFSET = (1 << 63) - 1
MAX_SECONDS = 3660 * 86400.0  # ten years: longer than any real wait, short of any overflow


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


# Each family's module (cli/NAME.py) -> its verbs: each its VERB_cmd or VERB_group there, an
# alias's VERB the last word of its ALIASES spelling. A module loads only when its verb runs (keeps
# workers' calls fast); `looop --help`'s rows are cli/verbs.txt's.
FAMILIES = {
    "lifecycle": "init pulse up down demo doctor",
    "tickwork": "tick",
    "status": "status state",
    "reads": "journal help completion config",
    "runs": "runs",
    "root": "version",
    "mailbox": "asks tell told claim unclaim",
    "cost": "cost",
    "answer": "answer",
    "needs": "needs ls",
    "workers": "worker w restart prune worktrees",
    "diff": "diff",
    "steermove": "kill",
    "sessionwatch": "shot screenshot ss log logs expect wait-idle",
    "wait": "ask wait",
    "sessions": "send key resize attach detach flag unflag",
    "review": "review",
    "land": "land",
    "steer": "goal sensor playbook schedule",
    "steering": "run",
    "web": "web",
    "mcp": "mcp",
    "watch": "watch",
    "service": "service",
    "pod": "pod",
    "hosts": "host",
    "satellite": "satellite",
}
COMMANDS = {verb: f"looop.cli.{mod}" for mod, verbs in FAMILIES.items() for verb in verbs.split()}
# A group's sub-verbs its moves' module adds to it when it loads (cli/steering.py, through the
# executor): a read of the group (`goal ls`) loads none of a move's machinery.
SUBVERBS = {
    group: {sub: "looop.cli.steering" for sub in subs.split()}
    for group, subs in {
        "goal": "write w archive rm",
        "sensor": "write w add rm run",
        "playbook": "write w",
        "schedule": "write w rm drop",
    }.items()
}
# Second spellings: listed once, compactly, under the verbs in `looop --help`.
ALIASES = {
    "state": "status",
    "screenshot": "shot",
    "ss": "shot",
    "logs": "log",
    "w": "worker",
    "ls": "worker list",
    "kill": "worker kill",
    "diff": "worker diff",
}
# v1.0's second spelling of every `write` subcommand (`looop goal w ID BODY`), hidden in help.
WRITE_ALIAS = "w"
# Old spellings kept working but never shown.
HIDDEN = {"config": "completion", "satellite": "host"}
