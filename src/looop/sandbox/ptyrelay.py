"""A sandboxed worker's own terminal, made inside the sandbox.

bubblewrap (under srt) starts its command in a new session (`--new-session`, against TIOCSTI
injection), so the worker has no controlling terminal: no job control, and ^C on looop's PTY
would signal srt itself. This relay runs inside srt: it opens a fresh pty there, starts the
worker on it as leader of a new session with that pty as its controlling terminal, and copies
bytes between its own stdio (looop's PTY, in raw mode, so ^C, ^Z and ^\\ arrive as bytes and
the inner line discipline signals the worker's foreground job) and the inner master; a new
window size on looop's PTY is passed on (polled: outside our session, no SIGWINCH reaches us).
looop's PTY stays no one's controlling terminal inside, so TIOCSTI on it fails; TIOCSTI on the
inner pty reaches only the sandbox's own processes.

Run by looop's interpreter as a script, `python -I -S ptyrelay.py NOTE -- ARGV...`: stdlib
only, no looop import. NOTE (a file in the worker's TMPDIR, "-" for none) says `run` once the
worker runs its program (exec'd, or a `bash -c` line became another program or stayed a shell
for START_S), then `exit N` or `signal N`. The relay exits with the worker's code, or 128+N
for signal N (what srt passes on as a code; the note lets looop record the signal).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import sys
import termios
import time
from typing import Any

START_S = 1.0  # a `bash -c` line that has not exec'd another program by then stays a shell
RESIZE_POLL_S = 0.2  # how soon a new window size reaches the worker
DRAIN_QUIET_S = 0.1  # after the worker ended: its last output, until quiet this long …
DRAIN_CAP_S = 1.0  # … or this long at most
CHUNK = 65536
BUFFER_MAX = 1 << 18  # stop reading a side while this much waits for the other
# sessions/oscalls' list again: this file runs alone inside the box (by its path, with no
# looop to import); a unit test holds the two equal
_DEFAULTED = "HUP INT QUIT TERM CHLD PIPE ALRM XFSZ TSTP TTIN TTOU USR1 USR2 WINCH"
_RESET = [f"SIG{n}" for n in _DEFAULTED.split()]
_FORWARD = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def raw(attrs: list[Any]) -> list[Any]:
    """`attrs` (tcgetattr's list) made raw: every byte passes, nothing is signalled or echoed."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    assert isinstance(iflag, int) and isinstance(oflag, int)
    assert isinstance(cflag, int) and isinstance(lflag, int) and isinstance(cc, list)
    t = termios
    iflag &= ~(t.IGNBRK | t.BRKINT | t.PARMRK | t.ISTRIP | t.INLCR | t.IGNCR | t.ICRNL | t.IXON)
    oflag &= ~t.OPOST
    cflag = (cflag & ~(t.CSIZE | t.PARENB)) | t.CS8
    lflag &= ~(t.ECHO | t.ECHONL | t.ICANON | t.ISIG | t.IEXTEN)
    cc = list(cc)
    cc[t.VMIN], cc[t.VTIME] = 1, 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


def write_note(path: str, text: str) -> None:
    if path == "-":
        return
    tmp = f"{path}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, text.encode() + b"\n")
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        pass  # a note that cannot be written: looop reads the plain exit code instead


def _winsize(fd: int) -> bytes | None:
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def _read(fd: int) -> bytes | None:
    """What `fd` has (b"": at its end, or failed); None when nothing is there after all."""
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _status(path: str) -> tuple[str, list[str]]:
    """(Name, NSpid) of one /proc/<pid>/status; ("", []) when unreadable."""
    name, nspid = "", []
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("Name:"):
                name = line[5:].strip()
            elif line.startswith("NSpid:"):
                nspid = line[6:].split()
    return name, nspid


def _program_of(pid: int) -> str | None:
    """The name (comm) of our child `pid`. srt's seccomp helper runs us in a pid namespace of
    its own below the one /proc shows, so /proc/<pid> may be someone else: the child is the
    entry whose NSpid, as deep as ours, ends in its pid."""
    depth = len(_status("/proc/self/status")[1])
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        name, nspid = _status(f"/proc/{entry}/status")
        if len(nspid) == depth and nspid and nspid[-1] == str(pid):
            return name
    return None


def _cloexec_inherited() -> None:
    """Whatever srt or bubblewrap left open stays out of the worker."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def spawn(argv: list[str], slave: int) -> int:
    """The worker on the inner pty: a new session whose controlling terminal it is (the
    leader opens it by name), default signals, an empty mask."""
    return os.posix_spawnp(
        argv[0],
        argv,
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
            (os.POSIX_SPAWN_DUP2, 0, 1),
            (os.POSIX_SPAWN_DUP2, 0, 2),
        ],
        setsid=True,
        setsigmask=(),
        setsigdef=[getattr(signal, n) for n in _RESET if hasattr(signal, n)],
    )


class Relay:
    def __init__(self, note: str, argv: list[str]) -> None:
        self.note = note
        self.argv = argv
        self.tty = os.isatty(0)
        self.saved = termios.tcgetattr(0) if self.tty else None
        self.flags0 = fcntl.fcntl(0, fcntl.F_GETFL)
        self.size = _winsize(0) if self.tty else None
        self.master, self.slave = os.openpty()
        self.wake_r, self.wake_w = os.pipe()
        self.pid = 0
        self.status: int | None = None
        self.to_inner = bytearray()
        self.to_outer = bytearray()
        self.outer_open = True

    def start(self) -> int | None:
        """The worker started; its exit code (127/126 with a line) when it cannot be."""
        if self.saved is not None:
            termios.tcsetattr(self.slave, termios.TCSANOW, self.saved)
        if self.size is not None:
            fcntl.ioctl(self.slave, termios.TIOCSWINSZ, self.size)
        for w in (self.wake_r, self.wake_w):
            os.set_blocking(w, False)
        signal.set_wakeup_fd(self.wake_w)
        for sig in (signal.SIGCHLD, *_FORWARD):
            signal.signal(sig, lambda *_a: None)
        try:
            self.pid = spawn(self.argv, self.slave)
        except OSError as e:
            os.write(2, f"looop: cannot run {self.argv[0]}: {e.strerror}\r\n".encode())
            return 127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        finally:
            os.close(self.slave)  # else the master never sees EOF when the worker ends
        if self.saved is not None:
            termios.tcsetattr(0, termios.TCSANOW, raw(self.saved))
        os.set_blocking(0, False)  # fds 0-2 share one description: the writes too
        os.set_blocking(self.master, False)
        return None

    def restore(self) -> None:
        try:
            fcntl.fcntl(0, fcntl.F_SETFL, self.flags0)
            if self.saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
        except OSError:
            pass

    def reap(self) -> None:
        if self.status is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == self.pid:
            self.status = status

    def signals(self) -> None:
        try:
            got = os.read(self.wake_r, 256)
        except BlockingIOError:
            return
        for num in got:
            if num in _FORWARD and self.status is None:
                with contextlib.suppress(OSError):
                    os.killpg(self.pid, num)
        self.reap()

    def resize(self) -> None:
        if not self.tty:
            return
        size = _winsize(0)
        if size is not None and size != self.size:
            self.size = size
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)  # SIGWINCH to its job

    def pump(self, timeout: float, reading: bool = True) -> bool:
        """One round of copying; False once the inner master is at its end."""
        rl = [self.wake_r]
        wl = []
        alive = True
        if self.outer_open and len(self.to_inner) < BUFFER_MAX and self.status is None:
            rl.append(0)
        if reading and len(self.to_outer) < BUFFER_MAX:
            rl.append(self.master)
        if self.to_inner and self.status is None:
            wl.append(self.master)
        if self.to_outer:
            wl.append(1)
        try:
            r, w, _ = select.select(rl, wl, [], timeout)
        except InterruptedError:
            return True
        if self.wake_r in r:
            self.signals()
        if 0 in r and (data := _read(0)) is not None:
            self.to_inner += data
            if not data:  # looop's PTY hung up: so does the worker's
                self.outer_open = False
                self.hangup()
        if self.master in r and (data := _read(self.master)) is not None:
            self.to_outer += data
            alive = bool(data)  # b"": EIO, every slave descriptor is closed
        if self.master in w:
            self.to_inner = self._write(self.master, self.to_inner)
        if 1 in w:
            self.to_outer = self._write(1, self.to_outer)
        return alive

    @staticmethod
    def _write(fd: int, buf: bytearray) -> bytearray:
        try:
            n = os.write(fd, buf)
        except BlockingIOError:
            return buf
        except OSError:
            return bytearray()  # the other side is gone: nothing will read it
        del buf[:n]
        return buf

    def hangup(self) -> None:
        if self.status is None:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGHUP)

    def watch_start(self) -> None:
        """`run` in the note once the worker runs its program (see the module's doc)."""
        bash_c = os.path.basename(self.argv[0]) == "bash" and self.argv[1:2] == ["-c"]
        if bash_c:
            # posix_spawn returns once the child has its new memory, a moment before the
            # kernel renames it: until it is seen as bash, our own name is the unexec'd child
            own, seen_bash = _status("/proc/self/status")[0], False
            deadline = time.monotonic() + START_S
            while self.status is None and time.monotonic() < deadline:
                name = _program_of(self.pid)
                seen_bash = seen_bash or name == "bash"
                if name is not None and name != "bash" and (seen_bash or name != own):
                    break
                self.pump(0.02)
                self.reap()
        if self.status is None:
            write_note(self.note, "run")

    def run(self) -> int:
        self.watch_start()
        alive = True
        while self.status is None:
            alive = self.pump(RESIZE_POLL_S, alive) and alive
            self.resize()
            self.reap()
        # the worker ended: its last output, then whatever is left to write out
        deadline, quiet = time.monotonic() + DRAIN_CAP_S, time.monotonic() + DRAIN_QUIET_S
        while alive and time.monotonic() < min(deadline, quiet):
            had = len(self.to_outer)
            alive = self.pump(max(0.0, min(deadline, quiet) - time.monotonic()))
            if len(self.to_outer) != had:
                quiet = time.monotonic() + DRAIN_QUIET_S
        self.restore()
        os.set_blocking(1, True)
        while self.to_outer:
            self.to_outer = self._write(1, self.to_outer)
        status = self.status
        if os.WIFSIGNALED(status):
            num = os.WTERMSIG(status)
            write_note(self.note, f"signal {num}")
            return 128 + num
        code = os.waitstatus_to_exitcode(status)
        write_note(self.note, f"exit {code}")
        return code


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        os.write(2, b"usage: ptyrelay.py NOTE -- ARGV...\n")
        return 2
    _cloexec_inherited()
    relay = Relay(args[0], args[2:])
    failed = relay.start()
    if failed is not None:
        write_note(relay.note, f"exit {failed}")
        return failed
    try:
        return relay.run()
    finally:
        relay.restore()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
