"""A sandboxed worker's terminal: its line runs under the pty relay (workers/ptyrelay.py)
inside srt, so it has a controlling terminal of its own there (job control, ^C to its
foreground job, resizes) while looop's PTY stays no one's controlling terminal inside.

The relay's note (`sandbox/<id>/tmp/.looop-pty`, written from inside) says when the worker
runs its program and how it ended: `worker start` waits for the first (so a program that is
not there fails the verb as it does unsandboxed), the supervisor reads the second (a signal
is recorded as that signal, never as srt's code)."""

from __future__ import annotations

import os
import select
import shlex
import sys

from looop.core.context import Ctx
from looop.hot import store
from looop.hot.store import NotRegular

NOTE = ".looop-pty"  # in the worker's TMPDIR, the one folder of its own it writes
RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ptyrelay.py")
START_WAIT_S = 30.0  # srt itself takes ~1 s to start a box; far longer on a loaded machine


def note_path(ctx: Ctx, wid: str) -> str:
    return os.path.join(str(ctx.paths.sandbox), wid, "tmp", NOTE)


def relay_line(note: str, argv: list[str], python: str | None = None) -> str:
    """The shell line srt runs: the relay, exec'd, with the worker's argv after `--`. The
    interpreter is looop's own (readable inside: srt binds the filesystem read-only); -I -S:
    no site-packages, no environment, a start of a few ms. The last run's note goes first."""
    if not os.path.isfile(RELAY):
        raise OSError(f"the pty relay {RELAY} is not a file on disk")
    store.remove(note)
    words = [python or sys.executable, "-I", "-S", RELAY, note, "--", *argv]
    return "exec " + shlex.join(words)


def read_note(path: str) -> str | None:
    """The note's one line, read without following a link or blocking; None when absent or
    unreadable (it is the worker's own file: never trusted beyond what it can say)."""
    try:
        raw = store.read_regular(path, 64, follow=False)
    except (OSError, NotRegular):
        return None
    return raw[:64].decode("ascii", "replace").strip()


def started(ctx: Ctx, wid: str, alive: object, poll_s: float) -> bool:
    """Wait until the worker runs its program (the relay's note says `run`) or its session
    ended (False: the caller reads how). `alive()` says whether the session still lives.
    After START_WAIT_S it counts as started (a start that slow is srt's, not a missing
    program's)."""
    assert callable(alive)
    path = note_path(ctx, wid)
    deadline = ctx.clock.monotonic() + START_WAIT_S
    while ctx.clock.monotonic() < deadline:
        if not alive():
            return False
        if read_note(path) == "run":
            return True
        select.select([], [], [], poll_s)
    return True
