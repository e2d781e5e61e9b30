"""A sandboxed worker's terminal behaves like an unsandboxed one (real srt, bubblewrap and PTYs):
Ctrl-C from `looop key` and from a decision's send_key interrupts the foreground job and the
shell lives on, Ctrl-Z then `fg` work, `tty` is a pty of its own, a resize reaches the program;
TIOCSTI from inside never reaches looop's PTY; a signal death is recorded as that signal; and
a program that is not there fails `worker start` with the same line as unsandboxed."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import termios
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.sessions.client import expect, resize
from tests.sandbox.test_sandboxed_worker import LOOOP, Box

pytestmark = pytest.mark.timeout(150)

WID = "t1"


class Term(Box):
    """A Box whose decider hands back the decision a test writes (a send_key move)."""

    def __init__(self, tmp_path: Path, srt: Path, sandbox: object = "off") -> None:
        super().__init__(tmp_path, srt, sandbox)
        self.next = tmp_path / "next.json"
        decider = tmp_path / "decider.sh"
        decider.write_text(f'cat "{self.next}" > "$LOOOP_DECISION"\n')
        cfg = json.loads((self.data / "config.json").read_text())
        cfg["runners"]["claude"]["tick"] = f"bash {decider} {{{{prompt_file}}}}"
        (self.data / "config.json").write_text(json.dumps(cfg))
        self.offset = 0

    def decide(self, decision: dict[str, object]) -> None:
        self.next.write_text(json.dumps(decision))
        done = self.looop("tick", "--force")
        assert done.returncode == 0, done.stdout + done.stderr

    def typed(self, line: str) -> None:
        done = self.looop("send", WID, line)
        assert done.returncode == 0, done.stderr

    def key(self, *names: str) -> None:
        done = self.looop("key", WID, *names)
        assert done.returncode == 0, done.stderr

    def see(self, pattern: str, timeout: float = 30) -> str:
        """Wait for `pattern` in the worker's output after the last thing seen (the match's
        own end, not expect's read position: two lines may come in one read)."""
        found: list[re.Match[bytes]] = []

        def seen() -> bool:
            raw = (self.data / "sessions" / WID / "output.log").read_bytes()[self.offset :]
            m = re.search(pattern.encode(), raw)
            if m is not None:
                found.append(m)
            return m is not None

        code, _, _ = expect(
            self.data, WID, pattern, since=self.offset, timeout_s=timeout, clock=SystemClock()
        )
        assert code == 0 and seen(), (pattern, code, self.log()[-2000:])
        self.offset += found[0].end()  # bytes, as expect's `since` counts them
        return found[0].group(0).decode(errors="replace")

    def log(self) -> str:
        return (self.data / "sessions" / WID / "output.log").read_text(errors="replace")

    def status(self) -> dict[str, object]:
        raw = (self.data / "sessions" / WID / "status.json").read_text()
        got: dict[str, object] = json.loads(raw)
        return got


# a python loop that says when it runs and when it is continued (markers computed, so the
# echo of the typed line never matches them)
LOOP = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGCONT, lambda *a: os.write(1, b'resu' + b'med\\n'))\n"
    "os.write(1, b'loo' + b'ping\\n')\n"
    "while True: time.sleep(0.05)"
)


def _shell(tmp_path: Path, srt: Path, waiter: str = "") -> Term:
    """A sandboxed interactive bash; `waiter` "relay": under the pty relay (where the perl
    waiter cannot run)."""
    term = Term(tmp_path, srt)
    if waiter:
        term.env["LOOOP_BOX_WAITER"] = waiter
    elif shutil.which("perl", path=term.env["PATH"]) is None:
        pytest.skip("no perl here: every box starts the relay")
    done = term.looop(
        "worker", "start", WID, "go", "--command", "bash --norc # {{prompt_file}}", "--sandbox"
    )
    assert done.returncode == 0 and "✓" in done.stdout, done.stderr
    term.typed("echo ready-$((40+2))")
    term.see("ready-42")
    return term


@pytest.mark.parametrize("waiter", ["", "relay"], ids=["waiter", "relay"])
def test_ctrl_c_interrupts_the_foreground_job_and_the_shell_lives_on(
    tmp_path: Path, srt: Path, waiter: str
) -> None:
    term = _shell(tmp_path, srt, waiter)
    try:
        # its controlling terminal: job control on. Under the waiter it is looop's PTY, which
        # bubblewrap binds as /dev/console; the relay's is a pty of the box's own
        term.typed('echo "tty=$(tty) jc=${-//[^m]/}"')
        got = term.see(r"tty=/\S* jc=\w*")
        named = "/dev/pts/" if waiter == "relay" else "/dev/console"
        assert f"tty={named}" in got and got.endswith("jc=m"), got
        # `looop key W C-c` interrupts sleep (once it runs: a ^C typed ahead would end the
        # shell's own line); the next command runs in the same shell
        term.typed("sh -c 'echo st\"\"arted; exec sleep 100'")
        term.see("started")
        term.key("C-c")
        term.typed("echo after-sleep-$?")
        term.see("after-sleep-130", timeout=15)
        # a decision's send_key interrupts a python loop
        term.typed(f"python3 -c {shlex.quote(LOOP)}")
        term.see("looping")
        term.decide({"action": "send_key", "id": WID, "keys": ["C-c"]})
        term.see("KeyboardInterrupt", timeout=15)
        term.typed("echo after-py-$?")
        term.see(r"after-py-\d+", timeout=15)  # the shell took the next line
        # Ctrl-Z stops the job, fg brings it back to the foreground, Ctrl-C ends it there
        term.typed(f"python3 -c {shlex.quote(LOOP)}")
        term.see("looping")
        term.key("C-z")
        term.see("Stopped", timeout=15)
        term.typed("jobs; fg")
        term.see("resumed", timeout=15)
        term.key("C-c")
        term.see("KeyboardInterrupt", timeout=15)
        term.typed("echo after-fg-$?")
        term.see(r"after-fg-\d+", timeout=15)
        assert term.status()["state"] == "running"
    finally:
        term.looop("kill", WID)


def test_a_resize_reaches_the_program(tmp_path: Path, srt: Path) -> None:
    term = _shell(tmp_path, srt)
    try:
        term.typed("echo size-$(stty size | tr ' ' x)")
        term.see("size-40x120")  # the worker's size (launch.WORKER_SIZE) from its start
        # the markers are computed, so the echo of the typed program never matches them
        prog = (
            "import os, signal, time\n"
            "size = lambda: '%d-%d' % tuple(os.get_terminal_size())\n"
            "signal.signal(signal.SIGWINCH, lambda *a: os.write(1, b'got-%s\\n' % size()"
            ".encode()))\n"
            "os.write(1, b'wait' + b'ing\\n')\n"
            "time.sleep(60)"
        )
        term.typed(f"python3 -c {shlex.quote(prog)}")
        term.see("waiting")
        resize(term.data, WID, 101, 33)
        term.see("got-101-33", timeout=15)
        term.key("C-c")
        term.typed("echo size-$(stty size | tr ' ' x)")
        term.see("size-33x101")
    finally:
        term.looop("kill", WID)


# From inside, looop's PTY may be reachable as /dev/console (bubblewrap binds its stdin's
# terminal there) or as the relay's stdin: pushing input into it must fail, and so must
# taking it as a controlling terminal (or it cannot even be opened).
INJECT = r"""
import fcntl, os, sys, termios
for path in ("/dev/tty", "/dev/console", "/proc/%s/fd/0" % sys.argv[1]):
    text = b"echo INNER-$((6*7))\n" if path == "/dev/tty" else b"echo STI-$((6*7))\n"
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        print("open %s=refused:%s" % (path, e.strerror))
        continue
    try:
        for c in text:
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        print("sti %s=pushed" % path)
    except OSError as e:
        print("sti %s=refused:%s" % (path, e.strerror))
    pid = os.fork()
    if pid == 0:
        os.setsid()
        try:
            fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
            print("ctty %s=taken" % path, flush=True)
        except OSError as e:
            print("ctty %s=refused:%s" % (path, e.strerror), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
print("inject-" + "done")
"""


def test_tiocsti_from_inside_never_reaches_looops_pty_under_the_relay(
    tmp_path: Path, srt: Path
) -> None:
    term = _shell(tmp_path, srt, "relay")
    try:
        script = tmp_path / "home" / "inject.py"
        script.write_text(INJECT)
        # the shell's parent inside is the relay, whose stdin is looop's PTY
        term.typed(f"python3 {script} $PPID")
        out = term.see("inject-done", timeout=30)
        log = (term.data / "sessions" / WID / "output.log").read_text(errors="replace")
        # its own terminal takes the push (the probe works; it stays inside) …
        assert "sti /dev/tty=pushed" in log, log[-1500:]
        term.see("INNER-42")
        # … looop's PTY refuses both, wherever it shows (or cannot be opened at all)
        for path in ("/dev/console", "/proc/"):
            if f"open {path}" not in log:
                assert f"sti {path}" in log and f"ctty {path}" in log, log[-1500:]
            assert f"sti {path}=pushed" not in log and f"ctty {path}=taken" not in log, out
        # had a byte reached looop's PTY, the relay would have passed it to the shell
        term.typed("echo round-$((1+1))-done")
        term.see("round-2-done")
        log = (term.data / "sessions" / WID / "output.log").read_text(errors="replace")
        assert "STI-42" not in log, log[-1500:]
    finally:
        term.looop("kill", WID)


def test_a_push_from_inside_stays_in_the_box_and_never_reaches_the_humans_terminal(
    tmp_path: Path, srt: Path
) -> None:
    """Under the waiter the worker's terminal is looop's PTY, its controlling terminal inside,
    so TIOCSTI into it works as on any terminal one owns (this kernel keeps legacy_tiocsti):
    the pushed line runs in the worker's own shell, no other session inside can take the
    terminal, and the terminal the human started the worker from, the one `--new-session`
    guards, never gets a byte: nothing of it is inside."""
    term = Term(tmp_path, srt)
    human, human_tty = os.openpty()
    try:
        shell = "bash --norc # {{prompt_file}}"
        started = subprocess.run(
            [LOOOP, "worker", "start", WID, "go", "--command", shell, "--sandbox"],
            stdin=human_tty,
            stdout=human_tty,
            stderr=human_tty,
            env=term.env,
            cwd=term.home,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # the human's terminal
            timeout=60,
            check=False,
        )
        assert started.returncode == 0, _drain(human)
        term.typed("echo ready-$((40+2))")
        term.see("ready-42")
        script = tmp_path / "home" / "inject.py"
        script.write_text(INJECT)
        # every terminal the box can name: its own, /dev/console and the waiter's stdin
        term.typed(f"python3 {script} 1")
        term.see("inject-done", timeout=30)
        log = term.log()
        assert "sti /dev/tty=pushed" in log, log[-1500:]
        term.see("INNER-42")  # the pushed line ran in the worker's own shell …
        term.typed("echo round-$((1+1))-done")
        term.see("round-2-done")
        assert "ctty /dev/tty=taken" not in log and "ctty /dev/console=taken" not in log, log
        # … and the human's terminal saw the start's own lines and nothing else
        seen = _drain(human)
        assert "worker" in seen and "42" not in seen and "echo" not in seen, seen
    finally:
        os.close(human_tty)
        os.close(human)
        term.looop("kill", WID)


def _drain(fd: int) -> str:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            got = os.read(fd, 65536)
        except OSError:
            break
        if not got:
            break
        out += got
    return out.decode(errors="replace")


@pytest.mark.parametrize(
    ("command", "state", "code", "signal"),
    [
        ("sh -c 'sleep 0.5; kill -TERM $$' # {{prompt_file}}", "killed", None, 15),
        ("python3 -c 'import os; os.abort()' # {{prompt_file}}", "killed", None, 6),
        ("sh -c 'sleep 0.5; exit 130' # {{prompt_file}}", "exited", 130, None),  # not a signal
        # a note forged from inside is believed only where the code agrees
        ("sh -c 'echo signal 9 > $TMPDIR/.looop-pty; exit 0' # {{prompt_file}}", "exited", 0, None),
    ],
    ids=["sigterm", "sigabrt", "exit-130", "forged-note"],
)
def test_a_worker_ended_by_a_signal_is_recorded_as_that_signal(
    tmp_path: Path, srt: Path, command: str, state: str, code: int | None, signal: int | None
) -> None:
    term = Term(tmp_path, srt)
    ends = []
    for flag in ("--no-sandbox", "--sandbox"):
        done = term.looop("worker", "start", WID, "go", "--command", command, flag)
        assert done.returncode == 0, done.stderr
        term.wait(WID)
        st = term.status()
        ends.append((flag, st["state"], st["exit_code"], st["signaled"], st.get("signal")))
    want = (state, code, signal is not None, signal)
    assert [e[1:] for e in ends] == [want, want], ends


@pytest.mark.parametrize(
    ("args", "worker"),
    [
        (["--command", "/nonexistent/bin # {{prompt_file}}"], "cat {{prompt_file}}"),
        (["--command", "no-such-agent-binary --flag # {{prompt_file}}"], "cat {{prompt_file}}"),
        ([], "no-such-agent-binary {{prompt_file}}"),
        ([], 'no-such-agent-binary "$(cat {{prompt_file}})"'),
    ],
    ids=["missing-path", "missing-command", "runner-not-on-path", "runner-line"],
)
def test_a_missing_program_fails_the_start_with_the_unsandboxed_line(
    tmp_path: Path, srt: Path, args: list[str], worker: str
) -> None:
    term = Term(tmp_path, srt)
    cfg = json.loads((term.data / "config.json").read_text())
    cfg["runners"]["claude"]["worker"] = worker
    (term.data / "config.json").write_text(json.dumps(cfg))
    got = []
    for flag in ("--no-sandbox", "--sandbox"):
        done = term.looop("worker", "start", WID, "work", *args, flag)
        got.append((done.returncode, done.stdout, done.stderr))
    assert got[0][0] == 1 and "✓" not in got[0][1], got
    assert "exited at once with code 127" in got[0][2], got
    assert got[1] == got[0]


def test_a_program_the_sandbox_hides_fails_the_start_in_one_line(tmp_path: Path, srt: Path) -> None:
    """Found on the host's PATH but behind a wall inside (~/.ssh is denied): the relay cannot
    run it, and the start says so instead of printing ✓."""
    term = Term(tmp_path, srt)
    tool = term.home / ".ssh" / "tool"
    tool.write_text("#!/bin/sh\nexec sleep 600\n")
    tool.chmod(0o755)
    done = term.looop(
        "worker", "start", WID, "go", "--command", f"{tool} {{{{prompt_file}}}}", "--sandbox"
    )
    assert done.returncode == 1 and "✓" not in done.stdout, done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    assert "exited at once with code 127" in done.stderr, done.stderr
    assert f"cannot run {tool}" in done.stderr, done.stderr
    # unsandboxed, the same command runs
    ran = term.looop(
        "worker", "start", WID, "go", "--command", f"{tool} {{{{prompt_file}}}}", "--no-sandbox"
    )
    try:
        assert ran.returncode == 0 and "✓" in ran.stdout, ran.stderr
    finally:
        term.looop("kill", WID)
