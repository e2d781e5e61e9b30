"""The sandbox host: one per home (data dir), shared by every sandboxed worker, run_shell, a
verify and the decider. It loads srt's library once (boxhost.mjs), and each sandboxed command
is wrapped there into its bubblewrap line, which looop then runs itself — no srt (node)
process stays beside a sandboxed worker, and the host exits once it wrapped nothing for IDLE_S.

The box's network goes to the home's own filter (sandbox/netfilter.py, srt's rules in looop's
code), which this module starts on demand beside the host: the host points the wrapped line's
bridge at the filter's socket and answers with the credentials in the box's proxy URL (a fresh
128-bit id as the user, a token of its own), and the box is registered under them with its
lists (sandbox/netboxes.py) before the line is returned. A box presenting no credentials, or
another box's, reaches nothing. The box's first step hands its proxy ports to the filter
(sandbox/netjoin.py), which accepts on them itself: no relay process stays in the box.

The host is found by its socket in the runtime dir (`sbx-<key>.sock`, key = the home and the
srt it loads); the filter by its abstract name (`net-<key>`, key = the home: home/anchors.py),
which keeps it single and survives an emptied runtime dir, and it serves the boxes on
`net-<key>.sock` there, bound again when asked after a wipe; its boxes' records are its own
(sandbox/netboxes.py). Each is started on demand under a lock; a host or filter that died is
started again by the next wrap. `looop down` stops both. Where srt's
library is not beside the srt found (a wrapper script), each command runs under srt itself,
with srt's own proxy, as before."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from looop.core import cgroup
from looop.home import jsonio
from looop.home.anchors import anchor, shown
from looop.home.errors import LooopError
from looop.home.hashing import fnv1a_128
from looop.home.peers import connect, holder, peer
from looop.home.sessionfiles import remove_tree
from looop.home.where import program_on, runtime_base, runtime_dir
from looop.sandbox.netboxes import Boxes, command_lines
from looop.sandbox.netjoin import read_line

if TYPE_CHECKING:
    from looop.core.context import Ctx

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boxhost.mjs")
# run in each box first, by this interpreter: hands the box's proxy ports to the filter
NETJOIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netjoin.py")
IDLE_S = 30
FILTER_IDLE_S = 30  # the filter: no box left and no connection for this long
# The host's heap kept small: a young generation of 1 MB and no optimizing compiler (it
# wraps a few lines a minute and pipes bytes natively): ~27 MB PSS instead of ~45.
NODE_FLAGS = ("--max-semi-space-size=1", "--lite-mode")
START_TIMEOUT_S = 30.0  # node loads srt and starts its proxy and bridge: ~1 s, far more when busy
TITLE = b"looop: sandbox host "  # what `ps -o args` shows of it (boxhost.mjs sets it)
SUN_PATH_MAX = 107  # bytes of a unix socket's path, its NUL aside
END_GRACE_S = 5.0  # a filter's own shutdown on TERM, before `down` KILLs it
WRAP_TIMEOUT_S = 60.0  # srt walks the write roots for files it protects: big trees take time


class HostError(LooopError):
    pass


class Home:
    """What finds a home's sandbox host: the runtime base, the data dir, the child's env.
    A plain class: the box's launcher (sandbox/boxrun.py) imports this on every start."""

    __slots__ = ("base", "data", "env")

    def __init__(self, base: str, data: str, env: dict[str, str]) -> None:
        self.base, self.data, self.env = base, data, env


def home_of(ctx: Ctx) -> Home:
    """The home of this context: its host runs with looop's own environment."""
    return Home(runtime_base(ctx.env), str(ctx.paths.data), ctx.child_env())


def library(prog: str) -> str | None:
    """srt's dist/index.js beside the srt CLI `prog` (npm links `srt` to dist/cli.js)."""
    real = os.path.realpath(prog)
    if os.path.basename(real) != "cli.js":
        return None
    lib = os.path.join(os.path.dirname(real), "index.js")
    return lib if os.path.isfile(lib) else None


def key(data: str, lib: str) -> str:
    return fnv1a_128(f"{os.path.abspath(data)}\0{lib}".encode("utf-8", "surrogateescape"))


def socket_path(base: str, data: str, lib: str) -> str:
    return os.path.join(runtime_dir(base), f"sbx-{key(data, lib)}.sock")


def runtime_dirs(base: str) -> list[str]:
    """The runtime dirs every box is denied, this home's and the default one, made now (0700):
    srt hides only what is there when the box starts."""
    dirs = [runtime_dir(b) for b in dict.fromkeys((base, "/tmp"))]
    for d in dirs:
        os.makedirs(d, mode=0o700, exist_ok=True)
    return dirs


def _checked(home: Home, lib: str) -> str:
    return _short(socket_path(home.base, home.data, lib), "the sandbox host's socket")


def _short(sock: str, what: str) -> str:
    if len(os.fsencode(sock)) > SUN_PATH_MAX:
        raise HostError(
            f"{what} {sock} is longer than a unix socket path may be: "
            "set LOOOP_RUNTIME_DIR to a shorter absolute path"
        )
    return sock


def wrap(home: Home, lib: str, settings: dict[str, object], command: str, door: str = "") -> str:
    """The shell line that runs `command` inside srt's sandbox under `settings`, wrapped by
    this home's host (started when none serves), its network pointed at the home's filter
    (sandbox/netfilter.py), where the box is registered with its lists before this returns —
    and, for a worker's box, as that worker's (`door`: the contract door it may knock on).
    Raises HostError, one line."""
    sock = _checked(home, lib)
    net = filter_socket(home)
    runtime_dirs(home.base)  # again: a tmp cleaner may have taken them since the settings
    ensure_filter(home)
    ask = {"command": command, "settings": settings, "filter": net}
    if sys.executable and os.path.isfile(NETJOIN):
        ask["join"] = [sys.executable, NETJOIN]
    req = jsonio.dumps(ask) + "\n"
    try:
        reply = _ask(sock, req)
    except OSError:
        _start(home, lib, sock)
        try:
            reply = _ask(sock, req)
        except OSError as e:
            raise HostError(f"the sandbox host ({sock}) does not answer: {e}") from None
    wrapped, user, digest, mark = (reply.get(k) for k in ("command", "user", "digest", "mark"))
    if not all(isinstance(v, str) for v in (wrapped, user, digest, mark)):
        raise HostError(f"the sandbox host could not wrap the command: {reply.get('error')}")
    assert isinstance(wrapped, str) and isinstance(user, str)
    assert isinstance(digest, str) and isinstance(mark, str)
    allowed, denied = _lists(settings)
    try:
        Boxes(_boxes_dir(net)).add(user, digest, allowed, denied, mark, door)
    except OSError as e:
        raise HostError(f"the sandbox's filter cannot take the box: {e}") from None
    ensure_filter(home)  # one that went idle meanwhile is back before the box runs
    return wrapped


def _lists(settings: dict[str, object]) -> tuple[list[str], list[str]]:
    net = settings.get("network")
    got = net if isinstance(net, dict) else {}
    allowed, denied = got.get("allowedDomains", []), got.get("deniedDomains", [])
    return [str(d) for d in allowed or []], [str(d) for d in denied or []]


def ensure(home: Home, lib: str) -> None:
    """The home's host and filter serve (started now when none does). Raises HostError."""
    sock = _checked(home, lib)
    if not _pings(sock):
        _start(home, lib, sock)
    ensure_filter(home)


def filter_socket(home: Home) -> str:
    """Where the home's filter serves: in the runtime dir, keyed by the home alone (boxes of
    any srt the home uses share it)."""
    sock = os.path.join(runtime_dir(home.base), f"net-{key(home.data, '')}.sock")
    return _short(sock, "the sandbox filter's socket")


def filter_name(home: Home) -> str:
    """The filter's abstract name (home/anchors.py): no file, so emptying the runtime dir
    neither hides a running filter nor lets a second one start."""
    return anchor(home.base, f"net-{key(home.data, '')}")


def _knock(name: str) -> str | None:
    """What this user's filter on `name` says of its socket: "ok" once it serves there (bound
    again if it went), else why not; None when no filter of ours answers on the name."""
    s = connect(name)
    if s is None:
        return None
    try:
        if peer(s)[1] != os.geteuid():
            return None  # another user's squat: told nothing
        s.settimeout(START_TIMEOUT_S)
        s.sendall(b"?")
        said = read_line(s, 4096)
    except OSError:
        return None
    finally:
        s.close()
    return said.decode("utf-8", "replace").strip() or None


def _boxes_dir(net: str) -> str:
    return net[: -len(".sock")] + ".boxes"


def _alive(sock: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.connect(sock)
    except OSError:
        return False
    finally:
        s.close()
    return True


def ensure_filter(home: Home) -> None:
    """The home's filter serves on its socket: asked on its name (it binds its socket again
    if the runtime dir was emptied), started now (under its lock) when none answers.
    Raises HostError, one line."""
    net, name = filter_socket(home), filter_name(home)
    if _serving(name, net):
        return
    argv = [sys.executable, "-m", "looop.sandbox.netfilter", net, _boxes_dir(net)]
    argv += [str(FILTER_IDLE_S), shown(name)]
    # in the home's data dir, as the host: it ends with its home, and its argv names no
    # home (a worker's leftovers are found by their argv naming its data dir)
    what = "the sandbox's network filter"
    started = _start_locked(net, lambda: _serving(name, net), argv, home, what, home.data)
    if started and not _serving(name, net):  # one that lost the name to another: its socket
        raise HostError(f"{what} does not serve on {net} (its errors: {net[:-5]}.err)")


def _start_locked(
    sock: str, up: Callable[[], bool], argv: list[str], home: Home, what: str, cwd: str = "/"
) -> bool:
    """Start `argv` for `sock` (under its start lock) unless `up()` says another caller did
    meanwhile; whether this one started it."""
    os.makedirs(os.path.dirname(sock), mode=0o700, exist_ok=True)
    stem = sock[: -len(".sock")]
    lock = os.open(stem + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if up():
            return False  # another caller started it while we waited
        _spawn_detached(argv, home.env, stem + ".err", what, os.path.abspath(cwd))
        return True
    finally:
        os.close(lock)


def _serving(name: str, net: str) -> bool:
    """Whether the home's filter serves on `net`: said on its name, else (no filter of ours
    on the name: another user took it) as far as a connect to the socket tells."""
    said = _knock(name)
    if said is None:
        return _alive(net)
    if said != "ok":
        raise HostError(f"the sandbox's network filter cannot serve: {said.removeprefix('no: ')}")
    return True


def as_exec(wrapped: str) -> str:
    """bubblewrap in the shell's place: one process fewer beside each box."""
    return "exec " + wrapped if wrapped.startswith("bwrap ") else wrapped


def _ask(sock: str, line: str) -> dict[str, object]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(WRAP_TIMEOUT_S)
        s.connect(sock)
        s.sendall(line.encode("utf-8", "surrogateescape"))
        buf = read_line(s)
    finally:
        s.close()
    try:
        out = jsonio.loads(buf.decode("utf-8", "surrogateescape"))
    except ValueError:
        raise ConnectionError("the sandbox host closed without an answer") from None
    if not isinstance(out, dict):
        raise ConnectionError("the sandbox host answered nonsense")
    return out


def _start(home: Home, lib: str, sock: str) -> None:
    """Start this home's host unless another caller did meanwhile (under the start lock)."""
    node = program_on("node", home.env.get("PATH", ""))
    if node is None:
        raise HostError("the sandbox host cannot start: node is not on PATH")
    argv = [node, *NODE_FLAGS, SCRIPT, lib, sock, os.path.abspath(home.data), str(IDLE_S)]
    _start_locked(sock, lambda: _pings(sock), argv, home, "the sandbox host")


def _pings(sock: str) -> bool:
    try:
        _ask(sock, '{"ping": true}\n')
    except OSError:
        return False
    return True


def _spawn_detached(
    argv: list[str], env: dict[str, str], err_path: str, what: str, cwd: str = "/"
) -> None:
    """Run `argv --ready-fd N` detached like the session host — its own session, adopted by
    init (or by a run's supervisor, whose sweep spares it by its name), out of any run's
    cgroup, so no session's end takes every other box's filter with it — and wait for its
    "ok". Raises HostError naming `what` and its errors' file."""
    r, w = os.pipe()
    argv = [*argv, "--ready-fd", str(w)]
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        try:
            os.close(r)
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            cgroup.escape()
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(err, 2)
            os.set_inheritable(w, True)
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(w)
    os.close(err)
    os.waitpid(pid, 0)
    try:
        ready = _line(r, START_TIMEOUT_S)
    finally:
        os.close(r)
    if ready != b"ok":
        raise HostError(f"{what} did not start (its errors: {err_path})")


def _line(fd: int, timeout_s: float) -> bytes:
    buf = b""
    while b"\n" not in buf:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            return b""
        got = os.read(fd, 64)
        if not got:
            break
        buf += got
    return buf.split(b"\n", 1)[0].strip()


def stop(base: str, data: str, lib: str | None) -> bool:
    """Ask the home's host to exit, and end its filter (`looop down`: no box of the home is
    left to filter); True when a host answered."""
    _stop_filter(home := Home(base, data, {}))
    _sweep_stem(filter_socket(home))
    if lib is None:
        return False
    sock = socket_path(base, data, lib)
    try:
        _ask(sock, '{"stop": true}\n')
        asked = True
    except OSError:
        asked = False
    # and any host of the same socket its answer did not come from: one whose socket was
    # wiped (the runtime dir emptied) idles out alone, but `down` leaves nothing running
    termed = _term_by_argv(f"{SCRIPT}\0{lib}\0{sock}\0".encode(), data)
    _sweep_stem(sock)
    return asked or termed


def _sweep_stem(sock: str) -> None:
    """What a host or filter of the home killed outright left in the runtime dir: its socket
    when nothing listens there, its error file when empty (one with errors is kept)."""
    stem = sock[: -len(".sock")]
    with contextlib.suppress(OSError):
        if os.path.getsize(stem + ".err") == 0:
            os.unlink(stem + ".err")
    if os.path.exists(sock) and not _alive(sock):
        with contextlib.suppress(OSError):
            os.unlink(sock)


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _ours(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.geteuid()
    except OSError:
        return False


def _term_by_argv(want: bytes, data: str) -> bool:
    """TERM to a host whose socket no longer answers (the runtime dir was emptied under it),
    found by its command line — or, node having written its title over that, by its name
    and its working directory, the home's data dir; True when there was one."""
    found, home = False, os.path.realpath(data)
    for pid, line in command_lines().items():
        if want in line or (line.startswith(TITLE) and _cwd(pid) == home):
            if not _ours(pid):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                found = True
            except OSError:
                continue
    return found


def _stop_filter(home: Home) -> None:
    """TERM to the process serving the home's filter (found by its argv and by its name: the
    socket is the boxes' and takes no orders), and its boxes' records go."""
    net = filter_socket(home)
    want = f"looop.sandbox.netfilter\0{net}\0".encode()
    titled = f"looop: network filter {net}\0".encode()  # its title (core/proctitle.py)
    lines = command_lines().items()
    pids = {p for p, line in lines if (want in line or line.startswith(titled)) and _ours(p)}
    named = holder(filter_name(home))
    _end(pids | ({named} if named else set()))
    remove_tree(os.fspath(_boxes_dir(net)))


def _end(pids: set[int], grace_s: float = END_GRACE_S) -> None:
    """TERM to each, and wait for it to be gone (KILL past the grace): `down` ends the door
    runs next, and a filter still shutting down could start one after that sweep."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue  # gone already
        try:
            signal.pidfd_send_signal(fd, signal.SIGTERM)
            gone, _, _ = select.select([fd], [], [], grace_s)  # readable once it exited
            if not gone:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], grace_s)
        except OSError:
            pass
        finally:
            os.close(fd)
