"""Builds the Ctx from the real process: the only place that reads os.environ and the real clock."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from looop.cli.commands import process_clock, process_env
from looop.cli.ctxbuild import ctx_for
from looop.cli.ctxbuild import looop_bin as looop_bin
from looop.core.context import Ctx


def make_ctx(events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    env = process_env()
    return ctx_for(env, process_clock(env), events_to)


def progress_line(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    """What long work says of each step as it begins: on a terminal only, so a script's
    stderr stays for errors."""
    if not stream.isatty():
        return lambda step: None
    return lambda step: print(f"looop: {step}…", file=stream, flush=True)
