"""What a long-lived process of looop's shows in `ps -o args` (`looop: supervisor w1`,
`looop: session host /home/me/.looop`), as postgres does, through the setproctitle library.

Its C module is loaded on its own, never through the package, whose `__init__` imports
`logging` (and with it `threading` and `traceback`): a forked supervisor's memory is the
modules it touched (tests/integration/test_session_memory.py). Setting the title also cuts
`/proc/self/comm` to its first 15 bytes, so `comm` is written back after it: a subreaper's
sweep tells looop's own processes by that name (sessions/oscalls.py, core/procstat.py). And the
title is kept to the command line's own room (the library's SPT_NOENV), so /proc/PID/environ
still reads as it did: a run's escapees are told by the marker in it (core/procs.py)."""

from __future__ import annotations

import importlib.machinery
import os
from typing import Any

from looop.core.procstat import name_self

NOENV = "SPT_NOENV"


def _library() -> Any:
    """setproctitle's C module, ready, or None where it is missing (titles then stay as
    they are). Ready means its first call made: it reads its knob from the C environment
    then, set for that call alone so no child inherits it."""
    found = importlib.machinery.PathFinder.find_spec("setproctitle")
    places = found.submodule_search_locations if found is not None else None
    if not places:
        return None
    spec = importlib.machinery.PathFinder.find_spec("setproctitle._setproctitle", list(places))
    if spec is None or spec.loader is None:
        return None
    had = os.environ.get(NOENV)
    os.environ[NOENV] = "1"
    try:
        module: Any = spec.loader.create_module(spec)
        spec.loader.exec_module(module)
        module.getproctitle()
    except (ImportError, OSError):
        return None
    finally:
        if had is None:
            os.environ.pop(NOENV, None)
        else:
            os.environ[NOENV] = had
    return module


# Loaded with this module, never per call: the session host imports it before it forks, so
# a forked supervisor shares it and only writes its title (a load per fork copied ~300 kB).
LIBRARY = _library()


def _comm() -> str:
    try:
        with open("/proc/self/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return ""


def show_role(title: str, comm: str | None = None) -> None:
    """`title` as the whole command line `ps -o args` shows; `comm` as `ps -o comm` (15
    bytes), or the one it had when None (a process no sweep should take for looop's own)."""
    keep = _comm() if comm is None else comm
    if LIBRARY is not None:
        try:
            LIBRARY.setproctitle(title)
        except (OSError, ValueError):  # a NUL in it: the command line stays as it was
            pass
    if keep:
        name_self(keep)
