"""The beat host's callers: a `looop tick`, `kill` or `worker start` handed to the home's
preloaded beat host (beathost.py) over its socket (an abstract name: anchors.py) — its key and
socket, the request,
the conversation (fds passed, signals forwarded, the exit code returned) — and starting or
stopping that host. Runs on every such verb: standard library's light modules only.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # not `signal` (its enums); loaded at startup
import _socket
import os
import sys

from looop.hot.anchors import anchor, listening
from looop.hot.errors import LooopError
from looop.hot.peers import caller_limits, connect, peer
from looop.hot.where import resolve, runtime_base, runtime_dir

TYPE_CHECKING = False  # the client runs on every `looop tick`: no typing, no contextlib

if TYPE_CHECKING:
    from collections.abc import Mapping

    from looop.hot.clock import Clock

IDLE_ENV = "LOOOP_BEAT_HOST_IDLE"
IDLE_S = 300.0  # the knob's default
REQUEST_MAX = 4 * 1024 * 1024
FDS = 3  # the caller's stdin, stdout and stderr
INT_BYTES = 4  # bytes of a C int (an fd in SCM_RIGHTS)
_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
# the looop package this host runs (hot/ is one room of it: every room is preloaded code)
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERPRETER_ENV = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUTF8",
    "PYTHONIOENCODING",
    "PYTHONHASHSEED",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "PYTHONWARNINGS",
    "PYTHONDEVMODE",
)

# -- naming --------------------------------------------------------------------------------


def home_of(env: Mapping[str, str], cwd: str) -> str:
    """The identity of the data dir `env` and `cwd` name (its real path and inode); "" when
    they name none (the verb run in place says why)."""
    try:
        data = os.path.realpath(resolve(env, cwd)[0])
    except LooopError:
        return ""
    try:
        st = os.stat(data)
    except OSError:
        return data  # not made yet (`looop init` not run): its name alone
    return f"{data}\0{st.st_dev}:{st.st_ino}"


def beat_key(env: Mapping[str, str], executable: str = sys.executable, cwd: str = "/") -> str:
    """Interpreter, its settings, package and version file, and the data dir: which host a
    caller talks to. The host itself checks the files it preloaded on every request (see
    `_fresh`)."""
    parts = [executable, PACKAGE, *(f"{k}={env.get(k, '')}" for k in _INTERPRETER_ENV)]
    parts.append(home_of(env, cwd))
    try:
        st = os.stat(os.path.join(PACKAGE, "__init__.py"))  # the version lives there
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    except OSError:
        pass
    return _fnv48("\n".join(parts).encode("utf-8", "surrogateescape"))


def _fnv48(raw: bytes) -> str:
    """FNV-1a (64 bit) of `raw`, its low 48 bits as 12 hex digits: a name, not a secret (a
    host checks its caller's data dir itself). Not blake2: its module is a shared library to
    map on every tick and kill, for a few hundred bytes."""
    h = 0xCBF29CE484222325
    for byte in raw:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h & 0xFFFFFFFFFFFF:012x}"


def beat_socket(key: str, base: str = "/tmp") -> str:
    """Where the beat host of `key` listens: an abstract name no tmp cleaner can remove."""
    return anchor(base, f"beat-{key}")


def idle_secs(env: Mapping[str, str]) -> float | None:
    """LOOOP_BEAT_HOST_IDLE (default 300 s; 0 = no host); None when it is not a number
    (the beat then runs here and its knobs say what is wrong)."""
    raw = env.get(IDLE_ENV, "").strip()
    if not raw:
        return IDLE_S
    try:
        v = float(raw)
    except ValueError:
        return None
    return v if 0 <= v <= 86_400 else None


# -- client side ---------------------------------------------------------------------------


class Served(SystemExit):
    """The verb ran in a child of the beat host; this process only waited for its exit code,
    so it ends as a light verb does (see hot/boot.py)."""


def hand_over(argv: list[str], env: dict[str, str], clock: Clock | None) -> None:
    """A beat, a kill or a worker start runs in a child of the beat host when one answers (the
    imports paid once): Served with the child's exit code. Back when no host took it, or when
    a clock was injected (tests, the host's own child), which always runs it here."""
    if clock is None:
        code = beat_remotely(argv, env)
        if code is not None:
            raise Served(code)


def beat_remotely(argv: list[str], env: dict[str, str], base: str | None = None) -> int | None:
    """Run `looop ARGV` in a child of the beat host and return its exit code; None when no
    host took it (nothing ran: run it here)."""
    idle = idle_secs(env)
    if not idle or not _real_stdio():
        return None
    if base is None:
        try:
            base = runtime_base(env)
        except LooopError:
            return None  # the verb run here says what is wrong with it
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # a cwd that is gone: the beat in place says what is wrong
    key = beat_key(env, cwd=cwd)
    sock = connect(beat_socket(key, base))  # whose it is, `peer` says before anything is sent
    if sock is None:
        _start_host(key, idle, env, base, cwd)  # for the next beat; this one runs here
        return None
    try:
        if peer(sock)[1] != os.geteuid():
            return None
        return _converse(sock, argv, env)
    finally:
        sock.close()


def _real_stdio() -> bool:
    """stdout and stderr are this process's fds 1 and 2 (not a test's captured streams)."""
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, OSError):
        return False


def encode_request(argv: list[str], cwd: str, env: Mapping[str, str]) -> bytes:
    """The request's fields (see the module's doc); ValueError when one holds a NUL."""
    umask = os.umask(0o022)
    os.umask(umask)
    fields = [f"argv={a}" for a in argv]
    fields += [f"cwd={cwd}", f"umask={umask}", f"nice={os.getpriority(os.PRIO_PROCESS, 0)}"]
    fields += [f"limit={name}:{soft}:{hard}" for name, (soft, hard) in caller_limits().items()]
    fields += [f"env={k}={v}" for k, v in env.items()]
    if any("\0" in f for f in fields):
        raise ValueError("a field holds a NUL")
    return ("\0".join(fields) + "\0\0").encode("utf-8", "surrogateescape")


def _converse(sock: _socket.socket, argv: list[str], env: dict[str, str]) -> int | None:
    try:
        body = encode_request(argv, os.getcwd(), env)
    except (ValueError, OSError):
        return None  # a cwd that is gone, a NUL: the beat in place says what is wrong
    fds = b"".join(fd.to_bytes(INT_BYTES, sys.byteorder) for fd in range(FDS))
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        sent = sock.sendmsg([body], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        if sent < len(body):
            sock.sendall(body[sent:])
    except OSError:
        return None  # a host going away, a closed stdin: nothing ran
    reader = _Lines(sock)
    first = reader.line()
    if not first.startswith(b"pid ") or not first[4:].isdigit():
        return None  # `unavailable`, `stale`, or the host hung up: nothing ran
    forwarded = _forward_signals(int(first[4:]))
    last = reader.line()
    if last.startswith(b"exit ") and last[5:].lstrip(b"-").isdigit():
        return int(last[5:])
    if forwarded:
        return 128 + forwarded[-1]
    sys.stderr.write("looop: the beat ended without an exit code (killed?); see `looop status`\n")
    return 1


class _Lines:
    """Lines from the host, read as they come (a signal handler may run between reads)."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(256)
            except OSError:
                chunk = b""
            if not chunk:
                out, self.buf = self.buf, b""
                return out
            self.buf += chunk
        out, self.buf = self.buf.split(b"\n", 1)
        return out


def _forward_signals(pid: int) -> list[int]:
    """Ctrl-C (and TERM, HUP) meant for this beat go to the child that runs it."""
    got: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        got.append(signum)
        try:
            os.kill(pid, signum)
        except OSError:
            pass  # it ended meanwhile: its exit line is on its way

    for name in _SIGNALS:
        _signal.signal(getattr(_signal, name), forward)
    return got


def _start_host(key: str, idle_s: float, env: Mapping[str, str], base: str, cwd: str) -> None:
    """Start a host in the background (its first request is the next beat); never fails."""
    # lazy: the host's door: only a beat that found no host pays for starting one
    from looop.sessions.hostclient import HostUnavailable, start_host_process

    cmd = [sys.executable, "-m", "looop.beathost", "--key", key, "--base", base]
    cmd += ["--cwd", cwd, "--idle-s", f"{idle_s:g}"]
    err = os.path.join(runtime_dir(base), f"beat-{key}.err")
    try:
        start_host_process(cmd, env, err, wait=False)
    except (OSError, LooopError, HostUnavailable):  # LooopError: a SessionError among them
        pass


def stop_beat_hosts(base: str) -> int:
    """Ask every beat host of the runtime dir to exit, whatever its build or home (a test
    run's end); how many answered."""
    return sum(_stop(a) for a in listening(base, "beat-"))


def stop_beat_host(env: Mapping[str, str], base: str | None = None, cwd: str = "/") -> bool:
    """Ask this build's beat host for the data dir of `env` to exit (tests, `looop down`);
    True when one answered."""
    return _stop(beat_socket(beat_key(env, cwd=cwd), base or runtime_base(env)))


def _stop(path: str) -> bool:
    sock = connect(path)
    if sock is None:
        return False
    try:
        if peer(sock)[1] != os.geteuid():
            return False  # another user's name: not ours to stop
        sock.settimeout(2.0)
        sock.sendall(b"stop\0\0")
        sock.recv(64)
    except OSError:
        pass
    finally:
        sock.close()
    return True
