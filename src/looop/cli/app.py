"""The Ctx a verb runs on, built from what the entry point hands down (its env and clock): the
only place that reads os.environ and the real clock; every click verb and a beat share it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from looop.cli.commands import process_clock, process_env
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.clock import Clock
from looop.home.knobs import env_knob
from looop.home.paths import Paths
from looop.home.terminal import colour_on


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


def looop_bin() -> str:
    """How children call us back: the console script beside this interpreter, else PATH."""
    here = Path(sys.executable).parent / "looop"
    if here.exists():
        return str(here)
    return _on_path("looop") or "looop"  # a looop run from outside its venv


def _on_path(name: str) -> str | None:
    """shutil.which(name) for a bare name on POSIX, without shutil (bz2, lzma, fnmatch: 4-8 ms
    that every verb through click and each satellite call would pay)."""
    path = os.environ.get("PATH")
    if path is None:
        try:
            path = os.confstr("CS_PATH")
        except (AttributeError, ValueError):
            path = os.defpath
    if not path:
        return None
    seen: set[str] = set()
    for d in path.split(os.pathsep):
        if d in seen:
            continue
        seen.add(d)
        full = os.path.join(d, name)
        if os.path.exists(full) and os.access(full, os.X_OK) and not os.path.isdir(full):
            return full
    return None


def ctx_for(env: dict[str, str], clock: Clock, events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    paths = Paths.resolve(env, Path.cwd())
    fmt = "json" if env.get("LOOOP_LOG_FORMAT", "").strip().lower() == "json" else "human"
    out = sys.stdout if events_to == "stdout" else sys.stderr
    color = fmt != "json" and colour_on(out.isatty(), env)
    em = Emitter(
        clock=clock,
        events_path=paths.events,
        stream={"stdout": sys.stdout, "stderr": sys.stderr}.get(events_to or ""),
        fmt="json" if fmt == "json" else "human",
        color=color,
        warn_to=sys.stderr,  # verbs that show no events still say what is wrong with the config
        max_bytes=env_knob("events_max_bytes", env),
    )
    return Ctx(paths=paths, clock=clock, env=env, events=em, bin=looop_bin())
