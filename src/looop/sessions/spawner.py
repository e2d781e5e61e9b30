"""Starting a session: the readiness handshake with a new supervisor, forked by the session
host (host.py) or, without one, started as its own interpreter.

Kept apart from client.py so a worker start loads only what a start needs (no socket
module, no subprocess unless the host is unreachable, no log readers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from looop.home.errors import CorruptState
from looop.home.logfiles import MAX_BYTES, MAX_FILES
from looop.home.where import runtime_base
from looop.sessions.hostclient import HostUnavailable, read_line, start_detached
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


def _supervisor_cmd(
    root: Path,
    sid: str,
    cols: int,
    rows: int,
    timeout_s: float | None,
    idle_timeout_s: float | None,
    log_cap: tuple[int, int] | None = None,
    restart: tuple[float, float] | None = None,
    watchdog: tuple[str, float] | None = None,
    final_exit: int | None = None,
) -> list[str]:
    """The supervisor's argv up to `--ready-fd` (the spawner adds that and the command)."""
    cmd = [
        sys.executable,
        "-m",
        "looop.sessions.supervisor",
        "--id",
        sid,
        "--root",
        os.path.abspath(root),
        "--size",
        f"{cols}x{rows}",
    ]
    if timeout_s is not None and timeout_s > 0:
        cmd += ["--timeout-ms", str(max(1, round(timeout_s * 1000)))]
    if idle_timeout_s is not None and idle_timeout_s > 0:
        cmd += ["--idle-timeout-ms", str(max(1, round(idle_timeout_s * 1000)))]
    if log_cap is not None:
        cmd += ["--log-max-bytes", str(log_cap[0]), "--log-max-files", str(log_cap[1])]
    if restart is not None:
        cmd += ["--restart-ms", _ms(restart[0]), "--restart-max-ms", _ms(restart[1])]
        if final_exit is not None:
            cmd += ["--final-exit", str(final_exit)]
    if watchdog is not None:
        cmd += ["--watchdog-file", os.path.abspath(watchdog[0]), "--watchdog-ms", _ms(watchdog[1])]
    return cmd


def _more_args(
    end_note: str | None,
    box_tty: bool,
    bounds: tuple[int, int] | None,
    history: tuple[int, str] | None,
) -> list[str]:
    """The rest of the supervisor's flags: the child's end note, its box, bounds, history."""
    cmd: list[str] = []
    if end_note:
        cmd += ["--end-note", end_note]
    if box_tty:
        cmd += ["--box-tty", "1"]
    if bounds is not None:
        cmd += ["--max-pids", str(bounds[0]), "--max-memory-bytes", str(bounds[1])]
    if history is not None:  # a session started again after its supervisor was lost
        cmd += ["--restarts", str(history[0]), "--last-cause", history[1].replace("\n", " ")]
    return cmd


def _ms(secs: float) -> str:
    return str(max(1, round(secs * 1000)))


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
    cols, rows = size
    timers = (timeout_s, idle_timeout_s)
    cmd = _supervisor_cmd(root, sid, cols, rows, *timers, log_cap, restart, watchdog, final_exit)
    cmd += _more_args(end_note, box_tty, bounds, history)
    line: bytes | None = None
    via_host = False
    if host_idle_s > 0:
        try:
            line = _spawn_via_host(cmd, argv, sdir, cwd, env, host_idle_s, str(root))
            via_host = True
        except HostUnavailable:
            pass  # start the supervisor as its own interpreter, as without a host
    if not via_host:
        line = _spawn_direct(cmd, argv, sdir, cwd, env)
    return _started(root, sid, cwd, line)


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


def _spawn_via_host(
    cmd: list[str],
    argv: Sequence[str],
    sdir: Path,
    cwd: Path,
    env: Mapping[str, str],
    idle_s: float,
    home: str,
) -> bytes | None:
    """The host of the data dir `home` forks the supervisor (see host.py); its readiness line
    comes back on the same connection. HostUnavailable when nothing was started."""
    args = [*cmd[3:], "--", *argv]  # the host already is `python -m looop.sessions.supervisor`
    for _ in range(2):
        sock = host_request(
            args,
            cwd=str(cwd),
            env=env,
            err_path=str(sdir / SUPERVISOR_ERR),
            home=home,
            idle_s=idle_s,
            base=runtime_base(env),
        )
        try:
            line = read_line(sock.fileno(), READY_TIMEOUT_S)
            if line is not None and line.startswith(b"unavailable"):
                # the host will not serve this caller (another namespace, a sandbox): its
                # supervisor starts here, within the caller's own limits
                raise HostUnavailable(line.decode("utf-8", "replace"))
            return line
        except ConnectionResetError:
            # A host that was going away closed the connection with our request unread:
            # nothing started. Once more (a new host comes up), then without a host.
            continue
        finally:
            sock.close()
    raise HostUnavailable("the session host hung up on the request")


def _spawn_direct(
    cmd: list[str], argv: Sequence[str], sdir: Path, cwd: Path, env: Mapping[str, str]
) -> bytes | None:
    """The supervisor as its own interpreter (no host, or the host could not be reached)."""
    r, w = os.pipe()
    try:
        with open(sdir / SUPERVISOR_ERR, "ab") as err:
            proc = start_detached(
                [*cmd, "--ready-fd", str(w), "--", *argv],
                err=err.fileno(),
                cwd=str(cwd),
                env=env,
                ready_w=w,
            )
    except OSError as e:
        os.close(r)
        return f"err-cwd {e.strerror or e}".encode()
    finally:
        os.close(w)
    try:
        return read_line(r, READY_TIMEOUT_S)
    finally:
        os.close(r)
        try:
            proc.wait(timeout=READY_TIMEOUT_S)  # the intermediate exits right after forking
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
