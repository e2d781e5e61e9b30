"""One request to the session host: checked (the caller's uid, its world, the data dir it
names) and refused in one line, or served by a fork: a supervisor forked from the preloaded
host, or a new host launched for a caller under a session's supervisor. Apart from host.py,
the host's life (its start, warm-up and wait between requests), because this is all a caller's
bytes reach: the checks and the forks."""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import socket
from collections.abc import Callable

import looop.sessions.supervisor as supervisor
from looop.core.proctitle import show_role
from looop.core.sameworld import Here, same_world
from looop.home.anchors import shown
from looop.home.peers import LIMITS, peer
from looop.sessions.hostdoor import HostDoor
from looop.sessions.hostnames import home_id
from looop.sessions.protocol import read_reply, reply_of

REQUEST_MAX = 4 * 1024 * 1024


def serve_one(
    conn: socket.socket,
    held: tuple[socket.socket, HostDoor | None],
    lock_fd: int,
    own: str,
    here: Here,
) -> bool:
    """One request; True when it asked the host to stop."""
    try:
        caller, uid = peer(conn)
        if uid != os.geteuid():
            return False
        conn.settimeout(5.0)
        buf = read_reply(conn, REQUEST_MAX)
        req = reply_of(buf) if b"\n" in buf else None
    except Exception:  # hostile bytes (deep nesting, bad UTF-8, a slow peer): drop them
        return False
    if req is None:
        return False
    if req.get("stop") is True:
        _answer(conn, b"ok stopping\n")
        return True
    refused = _refusal(req, caller, own, here)
    if refused is not None:
        _answer(conn, refused)
    elif "launch" in req:
        _forked(conn, held, lock_fd, lambda: _launch(conn, req))
    else:
        _fork_supervisor(conn, req, held, lock_fd)
        gc.collect()  # its cyclic garbage too (see _fork_supervisor)
    return False


def _answer(conn: socket.socket, line: bytes) -> None:
    with contextlib.suppress(OSError):  # a caller gone already has nobody to read it
        conn.sendall(line)


def _refusal(req: dict[str, object], caller: int, own: str, here: Here) -> bytes | None:
    """The line a request is refused with, or None when it is served."""
    launch = "launch" in req
    if not (_well_launch(req) if launch else _well_formed(req)):
        return b"err the session host got a malformed request\n"
    if not same_world(caller, here):  # a sandboxed or containered caller: never lift its limits
        return b"unavailable the caller sees another filesystem or namespace\n"
    if launch:
        return None
    args = req["args"]
    assert isinstance(args, list)
    if not own or home_id(_flag(args, "--root")) != own:  # another home's: its own host serves it
        return b"unavailable this session host serves another data dir\n"
    return None


def _fork_supervisor(
    conn: socket.socket,
    req: dict[str, object],
    held: tuple[socket.socket, HostDoor | None],
    lock_fd: int,
) -> None:
    """A session's supervisor, forked from this preloaded host. Nothing of it stays in the
    host once forked: every object the host made after its freeze, live or cyclic garbage,
    is inherited by every later supervisor, whose collections touch it and so copy its
    pages. When the host kept each live session's request and prepared supervisor (~6 kB),
    a worker cost a few kB more per live worker started before it."""
    # Everything that needs no process of its own is done here, before the fork: what the
    # host builds is shared with the supervisor, what the supervisor builds is its own copy.
    args, env, cwd = req["args"], req["env"], req["cwd"]
    assert isinstance(args, list) and isinstance(env, dict) and isinstance(cwd, str)
    if not os.path.isdir(cwd):  # before `prepare` makes its cgroup, which nothing would end
        why = "Not a directory" if os.path.exists(cwd) else "No such file or directory"
        _answer(conn, f"err-cwd {why}\n".encode())
        return
    door = held[1]
    sid = _flag(args, "--id")
    # a worker's session: its contract verbs knock on this home's door (sessions/hostdoor.py);
    # a sandboxed worker's box has its own (LOOOP_DOOR=1)
    if (
        door is not None
        and sid
        and env.get("LOOOP_SESSION_ID") == sid
        and not env.get("LOOOP_DOOR")
    ):
        env["LOOOP_DOOR"] = door.named()
    at = args.index("--") if "--" in args else len(args)  # `--ready-fd FD` before the command
    prepared = supervisor.prepare([*args[:at], "--ready-fd", str(conn.fileno()), *args[at:]], env)
    plan = limit_plan(req.get("limits"), req.get("nice"))
    host = shown(held[0].getsockname().decode("utf-8", "replace"))
    _forked(conn, held, lock_fd, lambda: _child(conn, req, prepared, plan, host))


def _forked(
    conn: socket.socket,
    held: tuple[socket.socket, HostDoor | None],
    lock_fd: int,
    body: Callable[[], int],
) -> None:
    """`body` in a forked intermediate, the host's listeners and lock let go, exiting with
    its code; waited for (it exits as soon as it has forked what it starts)."""
    try:
        pid = os.fork()
    except OSError as e:
        _answer(conn, f"err the session host cannot fork: {e.strerror}\n".encode())
        return
    if pid == 0:
        code = 127
        try:
            held[0].close()  # the host's listeners and lock: their names die with the host
            if held[1] is not None:
                held[1].close()
            os.close(lock_fd)
            code = body()
        finally:
            os._exit(code)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _flag(args: list[str], name: str) -> str:
    """A supervisor request's `name` flag (in the args before the command's `--`)."""
    head = args[: args.index("--")] if "--" in args else args
    return head[head.index(name) + 1] if name in head[:-1] else ""


def _well_launch(req: dict[str, object]) -> bool:
    """A launch asks for a preloaded host and nothing else: this interpreter's sibling
    running the host module, an environment and an error file."""
    cmd, env, err = req.get("launch"), req.get("env"), req.get("err")
    return (
        isinstance(cmd, list)
        and len(cmd) >= 3
        and all(isinstance(a, str) and "\0" not in a for a in cmd)
        and cmd[0].startswith("/")
        and cmd[1] == "-m"
        and cmd[2] == "looop.sessions.host"
        and "--ready-fd" not in cmd
        and isinstance(err, str)
        and err.startswith("/")
        and "\0" not in err
        and _well_formed({"args": ["--"], "cwd": "/", "env": env, "err": err})
    )


def _launch(conn: socket.socket, req: dict[str, object]) -> int:
    """In the intermediate: start a host for a caller under a session's supervisor, our
    child's child, adopted by whatever adopted us (init), never by that supervisor. Its
    readiness line goes straight to the caller over this connection."""
    cmd, env, err = req["launch"], req["env"], req["err"]
    assert isinstance(cmd, list) and isinstance(env, dict) and isinstance(err, str)
    os.setsid()
    if os.fork() > 0:
        return 0
    fd = conn.detach()
    os.set_inheritable(fd, True)
    null = os.open(os.devnull, os.O_RDWR)
    efd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(efd, 2)
    os.chdir("/")
    os.execve(cmd[0], [*cmd, "--ready-fd", str(fd)], env)


def _well_formed(req: dict[str, object]) -> bool:
    args, cwd, env, err = req.get("args"), req.get("cwd"), req.get("env"), req.get("err")
    return (
        isinstance(args, list)
        and "--" in args
        and all(isinstance(a, str) and "\0" not in a for a in args)
        and isinstance(cwd, str)
        and "\0" not in cwd
        and isinstance(env, dict)
        and all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
            for k, v in env.items()
        )
        and (err is None or (isinstance(err, str) and "\0" not in err))
    )


def _child(
    conn: socket.socket,
    req: dict[str, object],
    prepared: supervisor.Supervisor,
    plan: tuple[list[tuple[int, int, int]], int | None],
    host: str,
) -> int:
    """In the forked intermediate: become the supervisor's parent-to-be, exactly like a
    freshly started supervisor does (new session, fork, the intermediate exits). Its title
    names the host that forked it: a start from inside its run asks that host (spawner)."""
    args, cwd, env = req["args"], req["cwd"], req["env"]
    assert isinstance(args, list) and isinstance(cwd, str) and isinstance(env, dict)
    fd = conn.detach()  # the supervisor's ready fd: it writes its line and closes it
    err = req.get("err")
    if isinstance(err, str):
        with contextlib.suppress(OSError):
            efd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(efd, 2)
            os.close(efd)
    try:
        os.chdir(cwd)
    except OSError as e:
        os.write(fd, f"err-cwd {e.strerror or e}\n".encode())
        return 1
    umask = req.get("umask")
    if isinstance(umask, int):
        os.umask(umask & 0o777)
    apply_limits(*plan)
    sid = _flag(args, "--id") or "?"
    show_role(f"looop: supervisor {sid} (host {host})", f"looop:{sid}")
    if not supervisor.detach(fd):
        return 1
    return int(supervisor.start(prepared))


def limit_plan(limits: object, nice: object) -> tuple[list[tuple[int, int, int]], int | None]:
    """In the host, before the fork: which of the caller's limits (and nice value) differ
    from the host's own, so the forked supervisor only sets those (lowering is always
    allowed; a limit the host cannot raise stays the host's)."""
    plan: list[tuple[int, int, int]] = []
    if isinstance(limits, dict):
        for name, pair in limits.items():
            which = getattr(resource, name, None) if name in LIMITS else None
            if which is None or not isinstance(pair, list) or len(pair) != 2:
                continue
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            if ints and tuple(pair) != resource.getrlimit(which):
                plan.append((which, pair[0], pair[1]))
    want = None
    if isinstance(nice, int) and not isinstance(nice, bool):
        want = max(-20, min(19, nice))
        if want == os.getpriority(os.PRIO_PROCESS, 0):
            want = None
    return plan, want


def apply_limits(plan: list[tuple[int, int, int]], nice: int | None) -> None:
    """In the forked supervisor: what `limit_plan` found different."""
    for which, soft, hard in plan:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (soft, hard))
    if nice is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
