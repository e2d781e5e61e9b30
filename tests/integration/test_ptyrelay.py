"""What runs first inside a sandboxed worker's box, on real PTYs, outside srt: the perl waiter
(sandbox/boxwait.pl) and the pty relay (sandbox/ptyrelay.py) where perl cannot serve. The worker
has a controlling terminal (^C typed on looop's side interrupts its foreground job, the shell
lives on), and each ends as the worker ended (its code, 128+N and a `signal N` note for a
signal, 127 and one line for a program it cannot run); the relay gives looop's PTY its modes
back."""

from __future__ import annotations

import os
import pty
import select
import shlex
import shutil
import signal
import sys
import termios
import time
from pathlib import Path

import pytest

from looop.sandbox.boxtty import RELAY, SETSID_NR, waiter_line
from looop.sandbox.ptyrelay import raw

pytestmark = pytest.mark.timeout(60)


PERL = shutil.which("perl")
BOTH = pytest.mark.parametrize(
    "box",
    [
        pytest.param(
            "waiter",
            marks=pytest.mark.skipif(
                PERL is None or os.uname().machine not in SETSID_NR, reason="no perl waiter here"
            ),
        ),
        "relay",
    ],
)


def _line(box: str, note: Path, argv: tuple[str, ...]) -> str:
    if box == "relay":
        return shlex.join([sys.executable, "-I", "-S", RELAY, str(note), "--", *argv])
    assert PERL is not None
    line = waiter_line(str(note), list(argv), PERL, SETSID_NR[os.uname().machine], False)
    return line.removeprefix("exec ")


class Outer:
    """looop's side: a PTY whose slave is the box program's stdio."""

    def __init__(self, note: Path, *argv: str, box: str = "relay") -> None:
        words = shlex.split(_line(box, note, argv))
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the box's first program, as srt would exec it
            os.execv(words[0], words)
        self.out = b""

    def see(self, marker: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, (marker, self.out[-500:])
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    got = os.read(self.fd, 4096)
                except OSError:
                    got = b""
                assert got, (marker, self.out[-500:])
                self.out += got

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def end(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.drain(deadline)
                return os.waitstatus_to_exitcode(status)
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    pass
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"the relay did not end: {self.out[-500:]!r}")

    def drain(self, deadline: float) -> None:
        """What the box's programs wrote before they ended: the kernel hands a PTY's output to
        its master a moment after the write (a reaped child's last line may not be there
        yet), and says EIO once every writer closed the slave and all of it was read."""
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.fd], [], [], left)[0]:
                continue
            try:
                got = os.read(self.fd, 4096)
            except OSError:
                return
            if not got:
                return
            self.out += got


def _noted(note: Path, want: str, timeout: float = 15) -> None:
    """Until the note says `want`: the waiter writes it beside the worker, which may well
    print first."""
    deadline = time.monotonic() + timeout
    while not (note.exists() and note.read_text() == want):
        assert time.monotonic() < deadline, (want, note.read_text() if note.exists() else None)
        time.sleep(0.01)


def test_ctrl_c_reaches_the_foreground_job_and_the_shell_lives_on(tmp_path: Path) -> None:
    note = tmp_path / "note"
    term = Outer(note, "bash", "--norc", "--noprofile", "-i")
    term.type(b"echo ready-$((40+2))\r")
    term.see(b"ready-42")
    _noted(note, "run\n")
    assert not termios.tcgetattr(term.fd)[3] & termios.ISIG  # looop's PTY: raw
    term.type(b"sh -c 'echo st\"\"arted; exec sleep 100'\r")
    term.see(b"started")  # the job runs: ^C now hits it, not bash's own line
    term.type(b"\x03")
    term.type(b"echo after-$?\r")
    term.see(b"after-130")
    term.type(b"exit 3\r")
    assert term.end() == 3
    assert note.read_text() == "exit 3\n"
    assert termios.tcgetattr(term.fd)[3] & termios.ISIG  # its modes back


@BOTH
def test_a_signal_death_is_128_plus_n_and_said_in_the_note(tmp_path: Path, box: str) -> None:
    note = tmp_path / "note"
    term = Outer(note, "bash", "-c", "sleep 0.2; kill -TERM $$", box=box)
    assert term.end() == 128 + signal.SIGTERM
    assert note.read_text() == f"signal {int(signal.SIGTERM)}\n"


@BOTH
def test_a_program_it_cannot_run_is_127_and_one_line(tmp_path: Path, box: str) -> None:
    note = tmp_path / "note"
    term = Outer(note, str(tmp_path / "no-such-program"), "x", box=box)
    assert term.end() == 127
    assert b"looop: cannot run" in term.out and b"No such file or directory" in term.out
    assert note.read_text() == "exit 127\n"


@BOTH
def test_a_bash_line_is_run_once_it_became_its_program(tmp_path: Path, box: str) -> None:
    note = tmp_path / "note"
    term = Outer(note, "bash", "-c", "exec sleep 5", box=box)
    deadline = time.monotonic() + 0.8  # before START_S: seen as the program, not by the clock
    while not (note.exists() and note.read_text() == "run\n"):
        assert time.monotonic() < deadline, "no `run` note"
        time.sleep(0.01)
    os.kill(term.pid, signal.SIGTERM)  # forwarded to the worker
    assert term.end() == 128 + signal.SIGTERM


def test_raw_mode_passes_every_byte() -> None:
    mine, theirs = pty.openpty()
    try:
        attrs = raw(termios.tcgetattr(theirs))
        assert not attrs[3] & (termios.ISIG | termios.ICANON | termios.ECHO)
        assert not attrs[0] & (termios.ICRNL | termios.IXON)
        assert not attrs[1] & termios.OPOST
    finally:
        os.close(mine)
        os.close(theirs)


@pytest.mark.skipif(PERL is None or os.uname().machine not in SETSID_NR, reason="no perl here")
def test_the_waiter_gives_the_worker_looops_pty_with_job_control(tmp_path: Path) -> None:
    note = tmp_path / "note"
    term = Outer(note, "bash", "--norc", "--noprofile", "-i", box="waiter")
    term.type(b"echo ready-$((40+2)) jc-${-//[^m]/}\r")
    term.see(b"ready-42 jc-m")
    _noted(note, "run\n")
    term.type(b"sh -c 'echo st\"\"arted; exec sleep 100'\r")
    term.see(b"started")
    term.type(b"\x03")  # looop's PTY stays cooked: the line discipline signals the job
    term.type(b"echo after-$?\r")
    term.see(b"after-130")
    term.type(b"exit 3\r")
    assert term.end() == 3
    assert note.read_text() == "exit 3\n"
