"""A sandboxed worker's terminal. Its line runs under a waiter inside srt
(sandbox/boxwait.pl, in perl-base): looop's PTY, opened as nobody's controlling terminal on
the host, becomes the controlling terminal of the worker's session in the box (job control,
^C to its foreground job, resizes as SIGWINCH), and nothing outside the box reads its input.
Where perl or this machine's setsid number is missing, or LOOOP_BOX_WAITER=relay, the pty
relay (sandbox/ptyrelay.py, looop's own Python) gives the worker a pty of its own inside
instead, at ~4 MB a worker against ~1.

The note each writes (`sandbox/<id>/tmp/.looop-pty`, from inside) says when the worker
runs its program and how it ended: `worker start` waits for the first (so a program that is
not there fails the verb as it does unsandboxed), the supervisor reads the second (a signal
is recorded as that signal, never as srt's code)."""

from __future__ import annotations

import os
import select
import shlex
import sys
import termios

from looop.core.context import Ctx
from looop.home import store
from looop.home.store import NotRegular
from looop.home.where import program_on

NOTE = ".looop-pty"  # in the worker's TMPDIR, the one folder of its own it writes
_HERE = os.path.dirname(os.path.abspath(__file__))
RELAY = os.path.join(_HERE, "ptyrelay.py")
WAITER = os.path.join(_HERE, "boxwait.pl")
# setsid(2)'s number, which perl-base can call only by number (its POSIX module is ~1.7 MB)
SETSID_NR = {"x86_64": 112, "aarch64": 157}
START_WAIT_S = 30.0  # srt itself takes ~1 s to start a box; far longer on a loaded machine


def box_line(note: str, argv: list[str], env: dict[str, str]) -> tuple[str, bool]:
    """(the shell line srt runs, whether it takes looop's PTY as its terminal inside): the
    waiter where it can run, else the relay."""
    perl = program_on("perl", env.get("PATH", ""))  # "" finds nothing
    nr = SETSID_NR.get(os.uname().machine)
    if env.get("LOOOP_BOX_WAITER") != "relay" and perl and nr and os.path.isfile(WAITER):
        return waiter_line(note, argv, perl, nr, "PERL_BADLANG" not in env), True
    return relay_line(note, argv), False


def waiter_line(
    note: str, argv: list[str], perl: str, setsid_nr: int, quiet_locale: bool = True
) -> str:
    """The waiter, exec'd, with the worker's argv after `--` (see sandbox/boxwait.pl).
    `quiet_locale`: PERL_BADLANG=0, else a LANG this machine lacks would have perl warn on the
    worker's screen at every start (the worker keeps it: it only quiets perl)."""
    store.remove(note)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    words = [perl, WAITER, str(setsid_nr), str(termios.TIOCSCTTY), str(flags), note]
    quiet = "PERL_BADLANG=0 " if quiet_locale else ""
    return f"{quiet}exec " + shlex.join([*words, "--", *argv])


def note_path(ctx: Ctx, wid: str) -> str:
    return os.path.join(str(ctx.paths.rooms), wid, "tmp", NOTE)


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
