"""Starting a session: the readiness handshake with a new supervisor, forked by the session
host (host.py) or, without one, started as its own interpreter.

Kept apart from client.py so a worker start loads only what a start needs (no socket
module, no subprocess unless the host is unreachable, no log readers)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from looop.home.errors import CorruptState
from looop.home.logfiles import MAX_BYTES, MAX_FILES
from looop.home.where import runtime_base
from looop.sessions.hostclient import HostUnavailable, read_line, start_ready
from looop.sessions.hostclient import request as host_request
from looop.sessions.hostnames import HOST_IDLE_S
from looop.sessions.state import (
    SUPERVISOR_ERR,
    Session,
    SessionError,
    get_session,
    load_session,
    reuse,
    session_dir,
    validate_id,
)

READY_TIMEOUT_S = 10.0


def _ms(secs: float | None, when: bool = True) -> str | None:
    """Seconds as a flag's milliseconds (at least 1); None (no flag) without them."""
    return str(max(1, round(secs * 1000))) if secs is not None and when else None


def spawn(
    root: Path,
    sid: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    size: tuple[int, int] = (80, 24),
    timeout_s: float | None = None,
    idle_timeout_s: float | None = None,
    host_idle_s: float = HOST_IDLE_S,
    log_cap: tuple[int, int] | None = None,
    restart: tuple[float, float] | None = None,
    watchdog: tuple[str, float] | None = None,
    final_exit: int | None = None,
    end_note: str | None = None,
    box_tty: bool = False,
    bounds: tuple[int, int] | None = None,
    history: tuple[int, str] | None = None,
) -> Session:
    """Start `argv` in a new detached session; returns once its supervisor says it is ready.

    host_idle_s > 0: the session host forks the supervisor (started on demand, exits after
    that long unused); 0: the supervisor starts as its own interpreter. `log_cap`: output.log
    rotates at max bytes into at most max files, earlier runs' logs counted (None: defaults).
    `restart` (first delay, cap): a run that fails (exit code != 0, or a signal no kill op
    sent) starts again after a delay that doubles up to the cap; `watchdog` (file, grace): a
    run whose file was not touched within the seconds its text promises plus the grace is
    ended as failed (so it restarts too); `final_exit`: the code never restarted (systemd's
    RestartPreventExitStatus); `end_note`: where the child may say which signal ended it
    (child.signal_in_note); `box_tty`: the PTY is nobody's controlling terminal, for the
    child to take in its box; `bounds`: (processes, memory bytes), 0: none (core/limits);
    `history` (restarts, last cause): what the session's lost supervisor had counted."""
    sdir = _clear_for_start(root, sid, argv, size, log_cap)
    flags = {  # the supervisor's argv up to `--ready-fd` (added with the command): None, none
        "id": sid,
        "root": os.path.abspath(root),
        "size": f"{size[0]}x{size[1]}",
        "timeout-ms": _ms(timeout_s, (timeout_s or 0) > 0),
        "idle-timeout-ms": _ms(idle_timeout_s, (idle_timeout_s or 0) > 0),
        "log-max-bytes": log_cap and log_cap[0],
        "log-max-files": log_cap and log_cap[1],
        "restart-ms": restart and _ms(restart[0]),
        "restart-max-ms": restart and _ms(restart[1]),
        "final-exit": final_exit if restart is not None else None,
        "watchdog-file": watchdog and os.path.abspath(watchdog[0]),
        "watchdog-ms": watchdog and _ms(watchdog[1]),
        "end-note": end_note or None,  # the child's end note, its box, bounds, history
        "box-tty": 1 if box_tty else None,
        "max-pids": bounds and bounds[0],
        "max-memory-bytes": bounds and bounds[1],
        "restarts": history and history[0],  # started again after its supervisor was lost
        "last-cause": history and history[1].replace("\n", " "),
    }
    cmd = [sys.executable, "-m", "looop.sessions.supervisor"]
    cmd += [a for k, v in flags.items() if v is not None for a in (f"--{k}", str(v))]
    return _started(root, sid, cwd, _ready_line(cmd, argv, sdir, cwd, env, host_idle_s, str(root)))


def _clear_for_start(
    root: Path,
    sid: str,
    argv: Sequence[str],
    size: tuple[int, int],
    log_cap: tuple[int, int] | None,
) -> Path:
    """The request checked and the id's folder ready for a new run (the last run's corpse
    cleared, its newest logs kept); the folder."""
    validate_id(sid)
    if not argv:
        raise SessionError(f"cannot start session `{sid}`: the command is empty")
    cols, rows = size
    if cols <= 0 or rows <= 0:
        raise SessionError(f"invalid size {cols}x{rows}: use positive COLSxROWS, e.g. 120x40")
    sdir = session_dir(root, sid)
    try:
        existing = load_session(sdir)
    except CorruptState as e:
        raise SessionError(
            f"session `{sid}` has unreadable state ({e}); remove {sdir} to reuse the id"
        ) from e
    if existing is not None:
        if existing.alive:
            raise SessionError(f"session `{sid}` is already running; kill it or pick another id")
        if not reuse(root, sid, (log_cap or (MAX_BYTES, MAX_FILES))[1] - 1):
            raise SessionError(f"session `{sid}` could not be cleared for reuse; try again")
    sdir.mkdir(parents=True, exist_ok=True)
    return sdir


def _started(root: Path, sid: str, cwd: Path, line: bytes | None) -> Session:
    """The new session, once its supervisor's readiness line says ok; else what went wrong."""
    sdir = session_dir(root, sid)
    text = (line or b"").decode("utf-8", "replace").strip()
    if text.startswith("err-cwd"):
        raise SessionError(f"cannot start session `{sid}` in {cwd}: {text[8:].strip()}")
    if text.startswith("ok"):
        return get_session(root, sid)
    if text.startswith("err"):
        raise SessionError(f"cannot start session `{sid}`: {text[3:].strip()}")
    if line is None:
        raise SessionError(
            f"session `{sid}` did not report ready within {READY_TIMEOUT_S:g}s "
            f"(see {sdir / SUPERVISOR_ERR})"
        )
    raise SessionError(
        f"session `{sid}`: its supervisor exited before it was ready (see {sdir / SUPERVISOR_ERR})"
    )


def _ready_line(
    cmd: list[str],
    argv: Sequence[str],
    sdir: Path,
    cwd: Path,
    env: Mapping[str, str],
    idle_s: float,
    home: str,
) -> bytes | None:
    """The new supervisor's readiness line. The host of the data dir `home` forks it (see
    host.py) and the line comes back on the same connection; with no host (`idle_s` 0, or
    none to be had or serving this caller) it starts as its own interpreter."""
    args = [*cmd[3:], "--", *argv]  # the host already is `python -m looop.sessions.supervisor`
    for _ in range(2 if idle_s > 0 else 0):
        try:
            sock = host_request(
                args,
                cwd=str(cwd),
                env=env,
                err_path=str(sdir / SUPERVISOR_ERR),
                home=home,
                idle_s=idle_s,
                base=runtime_base(env),
            )
        except HostUnavailable:
            break
        try:
            line = read_line(sock.fileno(), READY_TIMEOUT_S)
            if line is None or not line.startswith(b"unavailable"):
                return line
            # the host will not serve this caller (another namespace, a sandbox): its
            # supervisor starts here, within the caller's own limits
            break
        except ConnectionResetError:
            # A host that was going away closed the connection with our request unread:
            # nothing started. Once more (a new host comes up), then without a host.
            continue
        finally:
            sock.close()
    return _spawn_direct(cmd, argv, sdir, cwd, env)


def _spawn_direct(
    cmd: list[str], argv: Sequence[str], sdir: Path, cwd: Path, env: Mapping[str, str]
) -> bytes | None:
    """The supervisor as its own interpreter (no host, or the host could not be reached)."""
    try:
        with open(sdir / SUPERVISOR_ERR, "ab") as err:
            fd, tail = err.fileno(), ["--", *argv]
            return start_ready(cmd, tail, err=fd, cwd=str(cwd), env=env, timeout=READY_TIMEOUT_S)
    except OSError as e:
        return f"err-cwd {e.strerror or e}".encode()
