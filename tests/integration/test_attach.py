"""Attach a real terminal (pexpect) to a live session: type, see output, resize, detach, exit."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import psutil
import pytest

import looop.sessions.attach as attach_mod
from looop.sessions.attach import CLEANUP
from looop.sessions.client import detach, kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session, list_sessions
from tests.clocks import FixedClock

PATH = "/usr/local/bin:/usr/bin:/bin"
ATTACH = [sys.executable, "-m", "looop.sessions.attach"]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    data.mkdir()
    yield data
    for s in list_sessions(data):
        if s.alive:
            try:
                kill(data, s.id)
            except SessionError:
                pass  # finished on its own meanwhile


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": PATH, "HOME": str(home), "TERM": "xterm", "LC_ALL": "C", **extra}


def start_shell(root: Path, sid: str, size: tuple[int, int] = (80, 24)) -> None:
    spawn(
        root,
        sid,
        ["bash", "--norc", "--noprofile", "-i"],
        cwd=root,
        env=env_for(root, PS1="IN$ "),
        size=size,
    )


def attach_spawn(root: Path, sid: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    return pexpect.spawn(
        ATTACH[0],
        [*ATTACH[1:], "--root", str(root), sid],
        cwd=str(root),
        env=env_for(root),
        dimensions=(rows, cols),
        encoding="utf-8",
        codec_errors="replace",
        timeout=10,
    )


def outer_shell(root: Path) -> pexpect.spawn:
    sh = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile"],
        cwd=str(root),
        env=env_for(root, PS1="OUT$ "),
        encoding="utf-8",
        codec_errors="replace",
        timeout=10,
    )
    sh.expect_exact("OUT$ ")
    return sh


def lflag(child: pexpect.spawn) -> int:
    # On Linux the master side reports the terminal settings of the pty pair.
    attrs: list[int] = termios.tcgetattr(child.child_fd)
    return attrs[3]


def attach_cmd(root: Path, sid: str) -> str:
    return f"{' '.join(ATTACH)} --root {root} {sid}; echo rc=$?"


def wait_size(root: Path, sid: str, cols: int, rows: int, within_s: float = 10.0) -> None:
    # The supervisor records every applied size in status.json; poll it briefly.
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        s = get_session(root, sid)
        if (s.cols, s.rows) == (cols, rows):
            return
        time.sleep(0.02)
    raise AssertionError(f"session {sid} never reached {cols}x{rows}")


@pytest.mark.timeout(30)
def test_type_then_detach_with_ctrl_backslash_twice_restores_the_terminal(root: Path) -> None:
    start_shell(root, "sh1")
    sh = outer_shell(root)
    sh.sendline(f"stty -g > {root}/before")
    sh.expect_exact("OUT$ ")
    sh.sendline(attach_cmd(root, "sh1") + f"; stty -g > {root}/after")
    sh.expect_exact("[attached to session sh1 · Ctrl-\\ twice detaches]")  # says how to leave
    sh.expect_exact("IN$ ")
    # While attached the local terminal is raw: no line editing, no echo, no signal keys.
    flags = lflag(sh)
    assert not flags & termios.ICANON
    assert not flags & termios.ECHO
    assert not flags & termios.ISIG

    sh.sendline("echo hello-$((6*7))")
    sh.expect_exact("hello-42")
    sh.expect_exact("IN$ ")

    sh.send("\x1c\x1c")
    # the note starts a line of its own: the worker's prompt line it ends on stays intact
    sh.expect_exact(CLEANUP.decode() + "\r\n[detached from session sh1]")
    sh.expect_exact("rc=0")
    sh.expect_exact("OUT$ ")
    assert (root / "after").read_text() == (root / "before").read_text()
    # Detaching leaves the program running.
    assert get_session(root, "sh1").alive
    sh.sendline("exit")
    sh.expect(pexpect.EOF)


@pytest.mark.timeout(30)
def test_single_ctrl_backslash_reaches_the_program_with_the_next_key(root: Path) -> None:
    # Raw mode in the session so 0x1c is a byte to `od`, not SIGQUIT; od prints every 4 bytes.
    script = "stty raw -echo; echo ready; exec od -An -tx1 -w4"
    spawn(root, "od1", ["sh", "-c", script], cwd=root, env=env_for(root))
    child = attach_spawn(root, "od1")
    child.expect_exact("ready")
    child.send("\x1c")
    child.send("abc")
    child.expect_exact("1c 61 62 63")
    child.send("\x1c\x1c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert get_session(root, "od1").alive


@pytest.mark.timeout(30)
def test_attach_returns_the_exit_code_of_the_program(root: Path) -> None:
    script = "read line; echo got:$line; exit 7"
    spawn(root, "ex1", ["sh", "-c", script], cwd=root, env=env_for(root))
    child = attach_spawn(root, "ex1")
    child.sendline("ping")
    child.expect_exact("got:ping")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 7
    # The program ended on its own: its modes are its business, no cleanup sequence.
    assert "\x1b[?1049l" not in child.before


@pytest.mark.timeout(30)
def test_attach_to_a_finished_session_prints_its_log_and_code(root: Path) -> None:
    script = "echo first-line; printf 'no-newline-tail'; exit 3"
    spawn(root, "done1", ["sh", "-c", script], cwd=root, env=env_for(root))
    assert wait(root, "done1", 10.0, FixedClock()) == 3
    proc = subprocess.run(
        [*ATTACH, "--root", str(root), "done1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stdout.endswith(b"first-line\r\nno-newline-tail")
    assert b"\x1b[" not in proc.stdout  # not a terminal: no cleanup sequence


@pytest.mark.timeout(30)
def test_attach_sends_the_local_size_and_follows_sigwinch(root: Path) -> None:
    start_shell(root, "rs1", size=(100, 30))
    child = attach_spawn(root, "rs1", rows=24, cols=80)
    child.expect_exact("IN$ ")
    child.sendline("stty size")
    child.expect_exact("24 80")
    child.expect_exact("IN$ ")
    child.setwinsize(40, 132)
    wait_size(root, "rs1", 132, 40)
    child.sendline("stty size")
    child.expect_exact("40 132")
    child.send("\x1c\x1c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.timeout(30)
def test_detach_from_another_terminal_ends_the_attach_with_zero(root: Path) -> None:
    start_shell(root, "kick1")
    child = attach_spawn(root, "kick1")
    child.expect_exact("IN$ ")
    detach(root, "kick1")
    child.expect_exact("[detached from session kick1]")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert get_session(root, "kick1").alive


@pytest.mark.timeout(30)
def test_sigterm_restores_the_terminal(root: Path) -> None:
    start_shell(root, "term1")
    sh = outer_shell(root)
    sh.sendline(f"stty -g > {root}/before")
    sh.expect_exact("OUT$ ")
    sh.sendline(attach_cmd(root, "term1") + f"; stty -g > {root}/after")
    sh.expect_exact("IN$ ")
    assert not lflag(sh) & termios.ICANON
    (client,) = [
        p
        for p in psutil.Process(sh.pid).children()
        if "looop.sessions.attach" in " ".join(p.cmdline())
    ]
    os.kill(client.pid, signal.SIGTERM)
    sh.expect_exact(CLEANUP.decode())
    sh.expect_exact("rc=143")
    sh.expect_exact("OUT$ ")
    assert (root / "after").read_text() == (root / "before").read_text()
    assert get_session(root, "term1").alive
    sh.sendline("exit")
    sh.expect(pexpect.EOF)


@pytest.mark.timeout(30)
def test_attach_to_an_unknown_session_is_one_line_error(root: Path) -> None:
    proc = subprocess.run(
        [*ATTACH, "--root", str(root), "nope"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "nope" in err
    assert err.count("\n") == 1


# ---- the client against a scripted stand-in supervisor (no real session needed) ----------------


class FakeSession:
    def __init__(self, alive: bool, exit_code: int | None = None, state: str = "running") -> None:
        self.alive = alive
        self.exit_code = exit_code
        self.state = state
        self.signaled = False
        self.label = state
        self.dir = Path("/nonexistent")


def read_frame(conn: socket.socket) -> tuple[int, bytes] | None:
    header = recv_exact(conn, 5)
    if header is None:
        return None
    tag, length = struct.unpack(">BI", header)
    payload = recv_exact(conn, length) if length else b""
    return None if payload is None else (tag, payload)


def recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def frame(tag: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BI", tag, len(payload)) + payload


Script = Callable[[socket.socket, dict[str, object]], None]


class Fake:
    """One accept, one attach line, then `script(conn, hello)`; records what it received."""

    def __init__(self, script: Script) -> None:
        self.dir = tempfile.mkdtemp(prefix="att", dir="/tmp")
        self.path = Path(self.dir) / "s.sock"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(1)
        self.script = script
        self.hello: dict[str, object] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                line = b""
                while not line.endswith(b"\n"):
                    line += conn.recv(1)
                self.hello = json.loads(line)
                self.script(conn, self.hello)
        except BaseException as exc:  # surfaced by close()
            self.error = exc

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.error is not None:
            raise self.error


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Fake]]:
    made: list[Fake] = []

    def make(script: Script, session: FakeSession | None = None) -> Fake:
        f = Fake(script)
        made.append(f)

        def connect(root: Path, sid: str, op: str) -> socket.socket:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(f.path))
            return sock

        monkeypatch.setattr(attach_mod, "connect", connect)
        s = session or FakeSession(alive=True)
        monkeypatch.setattr(attach_mod, "get_session", lambda root, sid: s)
        return f

    yield make
    for f in made:
        f.close()


@pytest.fixture
def pipes() -> Iterator[tuple[int, int, int, int]]:
    """(stdin read end, stdin write end, stdout read end, stdout write end)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    yield in_r, in_w, out_r, out_w
    for fd in (in_r, in_w, out_r, out_w):
        with contextlib.suppress(OSError):
            os.close(fd)


def drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            out += chunk
    return out


@pytest.mark.timeout(20)
def test_client_prints_output_skips_unknown_frames_and_returns_exit_code(
    fake: Callable[..., Fake], pipes: tuple[int, int, int, int], tmp_path: Path
) -> None:
    def script(conn: socket.socket, hello: dict[str, object]) -> None:
        conn.sendall(frame(1, b"hello ") + frame(9, b"future") + frame(1, b"world"))
        conn.sendall(frame(2, struct.pack(">Bi", 0, 5)))

    f = fake(script)
    in_r, _, out_r, out_w = pipes
    code = attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w)
    assert code == 5
    assert drain(out_r) == b"hello world"
    # Not a terminal: the size falls back to 80x24.
    f.close()
    assert f.hello == {"op": "attach", "cols": 80, "rows": 24}


@pytest.mark.timeout(20)
def test_client_forwards_input_through_the_filter_and_detaches(
    fake: Callable[..., Fake], pipes: tuple[int, int, int, int], tmp_path: Path
) -> None:
    got: list[bytes] = []
    in_r, in_w, out_r, out_w = pipes

    def script(conn: socket.socket, hello: dict[str, object]) -> None:
        os.write(in_w, b"ab\x1c")
        while (fr := read_frame(conn)) is not None:
            assert fr[0] == 1
            got.append(fr[1])
            if fr[1] == b"ab":
                os.write(in_w, b"c")  # releases the withheld press
            elif fr[1] == b"\x1cc":
                os.write(in_w, b"\x1c\x1cnever-sent")

    fake(script)
    code = attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w)
    assert code == 0
    assert b"".join(got) == b"ab\x1cc"
    assert drain(out_r) == b""  # a pipe gets no terminal cleanup


@pytest.mark.timeout(20)
def test_client_detaches_on_the_keys_given_in_dockers_spelling(
    fake: Callable[..., Fake], pipes: tuple[int, int, int, int], tmp_path: Path
) -> None:
    got: list[bytes] = []
    in_r, in_w, _, out_w = pipes

    def script(conn: socket.socket, hello: dict[str, object]) -> None:
        os.write(in_w, b"\x1c\x1cab\x18")  # Ctrl-\\ twice is a key like any other now
        while (fr := read_frame(conn)) is not None:
            got.append(fr[1])
            if b"".join(got) == b"\x1c\x1cab":
                os.write(in_w, b"c")  # releases the withheld Ctrl-X
            elif b"".join(got).endswith(b"\x18c"):
                os.write(in_w, b"\x18dnever-sent")

    fake(script)
    code = attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w, detach_keys="ctrl-x,d")
    assert code == 0
    assert b"".join(got) == b"\x1c\x1cab\x18c"


@pytest.mark.timeout(20)
def test_client_sends_resize_on_sigwinch(
    fake: Callable[..., Fake], pipes: tuple[int, int, int, int], tmp_path: Path
) -> None:
    resized: list[bytes] = []

    def script(conn: socket.socket, hello: dict[str, object]) -> None:
        conn.settimeout(0.05)
        while not resized:
            os.kill(os.getpid(), signal.SIGWINCH)  # repeated: the handler may not be in yet
            try:
                fr = read_frame(conn)
            except TimeoutError:
                continue
            if fr is not None and fr[0] == 2:
                resized.append(fr[1])
        conn.settimeout(None)
        conn.sendall(frame(3))

    fake(script)
    in_r, _, _, out_w = pipes
    assert attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w) == 0
    assert resized == [struct.pack(">HH", 80, 24)]


@pytest.mark.timeout(20)
def test_client_reports_the_recorded_code_when_the_connection_drops_after_the_end(
    fake: Callable[..., Fake], pipes: tuple[int, int, int, int], tmp_path: Path
) -> None:
    session = FakeSession(alive=True)

    def script(conn: socket.socket, hello: dict[str, object]) -> None:
        session.alive, session.exit_code, session.state = False, 9, "exited"

    fake(script, session)
    in_r, _, _, out_w = pipes
    assert attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w) == 9


@pytest.mark.timeout(20)
def test_client_fails_with_one_line_when_a_live_session_drops_the_connection(
    fake: Callable[..., Fake],
    pipes: tuple[int, int, int, int],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attach_mod, "_LOST_GRACE_S", 0.1)
    fake(lambda conn, hello: None)
    in_r, _, _, out_w = pipes
    assert attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w) == 1
    err = capfd.readouterr().err
    assert "lost the connection" in err
    assert err.count("\n") == 1


@pytest.mark.timeout(20)
def test_client_surfaces_a_refused_attach(
    fake: Callable[..., Fake], pipes: tuple[int, int, int, int], tmp_path: Path
) -> None:
    def script(conn: socket.socket, hello: dict[str, object]) -> None:
        conn.sendall(b'{"ok":false,"error":"session is shutting down"}\n')

    fake(script)
    in_r, _, _, out_w = pipes
    with pytest.raises(SessionError, match="session is shutting down"):
        attach_mod.attach(tmp_path, "x", stdin_fd=in_r, stdout_fd=out_w)


# ---- what the worker prints reaches the human's terminal through the gate (sessions.termgate) --

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOSTILE = FIXTURES / "hostile_term.py"


def _load_hostile() -> Any:
    spec = importlib.util.spec_from_file_location("hostile_term", HOSTILE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _log_ends_with(root: Path, sid: str, tail: bytes, within_s: float = 10.0) -> None:
    log = Path(get_session(root, sid).dir, "output.log")
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if log.read_bytes().endswith(tail):
            return
        time.sleep(0.01)
    raise AssertionError(f"the worker never printed {tail!r}")


def _run_hostile(root: Path, sid: str, argv: list[str], env: dict[str, str]) -> bytes:
    """Start the hostile worker, attach a real terminal to it with argv, return every byte the
    terminal received."""
    hostile = _load_hostile()
    spawn(root, sid, [sys.executable, str(HOSTILE)], cwd=root, env=env_for(root), size=(80, 24))
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(root), env=env, timeout=15)
    child.expect_exact(b"ready")
    child.sendline(b"")
    for first, _second in hostile.SPLIT:
        # The first half is in the log, so the pump read it on its own: the halves reach the
        # attached client in different frames.
        _log_ends_with(root, sid, b"<" + first)
        child.sendline(b"")
    child.expect(pexpect.EOF)
    got: bytes = child.before
    child.close()
    assert child.exitstatus == 0
    return got


@pytest.mark.timeout(60)
def test_attach_drops_what_would_act_on_the_humans_terminal_and_passes_drawing(
    root: Path,
) -> None:
    hostile = _load_hostile()
    got = _run_hostile(root, "hx1", [*ATTACH, "--root", str(root), "hx1"], env_for(root))
    # Ordinary drawing passes byte for byte: colours, moves, the alternate screen, bracketed
    # paste, mouse modes, a hyperlink, a cursor position query, UTF-8 text.
    assert hostile.ORDINARY in got
    whole_line = got[got.index(b"<") :].split(b"\r\n")[0]
    split_line = got.split(b"\r\n")[got.split(b"\r\n").index(whole_line) + 1]
    for line in (whole_line, split_line):
        assert b"\x1b" not in line
        assert b"\x05" not in line
        assert not any(b"\xc2" + bytes([c]) in line for c in range(0x80, 0xA0))
        assert b"PWNED" not in line
    # Every ESC-introduced sequence (and ENQ) went whole: nothing of it shows either. A C1
    # control goes alone; what followed it is plain text to the terminal.
    whole = [s for s in hostile.WHOLE if not s.startswith(b"\xc2")]
    assert whole_line.count(b"<>") == len(whole)
    assert b"<21t>" in whole_line
    assert split_line.count(b"<>") == len([f for f, _ in hostile.SPLIT if f.startswith(b"\x1b")])
    # Nothing anywhere in the stream reached the terminal as a clipboard write, a title, a
    # report request or a string sequence.
    for bad in (b"\x1b]52", b"\x1b]0;", b"\x1b]2;", b"\x1bP", b"\x1b_", b"\x1b^", b"\x1bX"):
        assert bad not in got
    assert b"\x1b[21t" not in got and b"\x1b[20t" not in got
    # An OSC that never ends hides a bounded stretch, then output shows again.
    assert b"SHOWN-AGAIN\r\nthe-end" in got


@pytest.mark.timeout(60)
def test_looop_attach_passthrough_passes_the_workers_bytes_unfiltered(root: Path) -> None:
    hostile = _load_hostile()
    env = env_for(root, LOOOP_DATA_DIR=str(root))
    got = _run_hostile(
        root, "hx2", [sys.executable, "-m", "looop", "attach", "--passthrough", "hx2"], env
    )
    assert hostile.ORDINARY in got
    for seq in hostile.WHOLE:
        assert b"<" + seq + b">" in got
    for first, second in hostile.SPLIT:
        assert b"<" + first + second + b">" in got


@pytest.mark.timeout(30)
def test_a_finished_sessions_transcript_goes_through_the_gate_too(root: Path) -> None:
    script = r"printf 'a\033]52;c;UFdORUQ=\007b\033]0;PWNED\007c\033[31md\n'; exit 4"
    spawn(root, "fin1", ["sh", "-c", script], cwd=root, env=env_for(root))
    assert wait(root, "fin1", 10.0, FixedClock()) == 4

    def replay(*flags: str) -> bytes:
        proc = subprocess.run(
            [*ATTACH, *flags, "--root", str(root), "fin1"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert proc.returncode == 4
        return proc.stdout

    assert replay() == b"abc\x1b[31md\r\n"
    assert replay("--passthrough") == b"a\x1b]52;c;UFdORUQ=\x07b\x1b]0;PWNED\x07c\x1b[31md\r\n"


@pytest.mark.timeout(30)
def test_the_locale_says_how_the_gate_reads_bytes_above_ascii(root: Path) -> None:
    # Latin-1 text with a C1 CSI (0x9b) in it: an 8-bit terminal would run `CSI 21t`.
    script = r"printf 'caf\351 \23321t'; exit 0"
    spawn(root, "enc1", ["sh", "-c", script], cwd=root, env=env_for(root))
    assert wait(root, "enc1", 10.0, FixedClock()) == 0

    def replay(lc_all: str) -> bytes:
        proc = subprocess.run(
            [*ATTACH, "--root", str(root), "enc1"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env={"PATH": PATH, "HOME": str(root), "LC_ALL": lc_all},
            timeout=20,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert replay("de_DE.ISO-8859-1") == b"caf\xe9 21t"  # the control goes, the text stays
    # A UTF-8 terminal would show neither byte as a control: both become U+FFFD.
    assert replay("C.UTF-8") == "caf\ufffd \ufffd21t".encode()
