"""Builds the Ctx from the real process: the only place that reads os.environ and the real clock."""

from __future__ import annotations

from looop.cli.commands import process_clock, process_env
from looop.cli.ctxbuild import ctx_for
from looop.cli.ctxbuild import looop_bin as looop_bin
from looop.core.context import Ctx


def make_ctx(events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    env = process_env()
    return ctx_for(env, process_clock(env), events_to)
