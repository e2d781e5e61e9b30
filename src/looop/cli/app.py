"""Builds the Ctx from the real process: the only place that reads os.environ and the real clock."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from looop.core.clock import Clock, SystemClock
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.core.paths import Paths


def looop_bin() -> str:
    """How children call us back: the console script beside this interpreter, else PATH."""
    here = Path(sys.executable).parent / "looop"
    if here.exists():
        return str(here)
    import shutil  # lazy: only a looop run from outside its venv looks on PATH

    return shutil.which("looop") or "looop"


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


def make_ctx(events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    env = process_env()
    paths = Paths.resolve(env, Path.cwd())
    fmt = "json" if env.get("LOOOP_LOG_FORMAT", "").strip().lower() == "json" else "human"
    force = env.get("LOOOP_COLOR", "").strip()
    if fmt == "json" or force == "0":
        color = False
    elif force == "1":
        color = True
    else:
        out = sys.stdout if events_to == "stdout" else sys.stderr
        color = out.isatty() and "NO_COLOR" not in env
    clock = _entry().clock
    em = Emitter(
        clock=clock,
        events_path=paths.events,
        stream={"stdout": sys.stdout, "stderr": sys.stderr}.get(events_to or ""),
        fmt="json" if fmt == "json" else "human",
        color=color,
        warn_to=sys.stderr,  # verbs that show no events still say what is wrong with the config
    )
    return Ctx(paths=paths, clock=clock, env=env, events=em, bin=looop_bin())
