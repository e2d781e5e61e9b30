"""Builds the Ctx from the real process: the only place that reads os.environ and the real clock."""

from __future__ import annotations

import os
from collections.abc import Mapping

import click

from looop.cli.commands import Entry
from looop.cli.ctxbuild import ctx_for
from looop.cli.ctxbuild import looop_bin as looop_bin
from looop.core.context import Ctx
from looop.home.clock import Clock


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


def make_ctx(events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    return ctx_for(process_env(), _entry().clock, events_to)
