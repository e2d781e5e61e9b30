"""A repo worker's setup: the config's "worktree" object names, per repository, a command run
in the worker's new worktree before its agent starts (`npm ci`, `make venv`):

    "worktree": {"setup": {"~/src/app": "npm ci"}, "setup_timeout_s": 600}

It lives in the config, never in the repository: a script in the repository is what a worker
can write on its branch, and a start would run it. It runs as the worker would — with the
worker's env (its $LOOOP_PORT too), inside the worker's own sandbox when the worker is
sandboxed (it runs the branch's code: a package's install scripts, a Makefile) — its output
the first thing in the worker's log. A failure, or a run past setup_timeout_s (its whole
process group killed), is the start's error in one line and the worktree is taken back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.home import logfiles
from looop.home.sessionfiles import read_meta
from looop.sandbox.srt import expand
from looop.workers.errors import WorkerError

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Setup:
    line: str
    timeout_s: float = DEFAULT_TIMEOUT_S


def _bad(key: str, want: str, got: object) -> WorkerError:
    return WorkerError(f"config: worktree.{key} must be {want}, not {got!r} — fix the config")


def setup_for(raw: Mapping[str, Any], repo: str, home: str | None) -> Setup | None:
    """The setup the config names for the repository at `repo` (its top folder), if any."""
    obj = raw.get("worktree", {})
    if not isinstance(obj, dict):
        raise WorkerError(f"config: 'worktree' must be an object, not {obj!r} — fix the config")
    setups = obj.get("setup", {})
    want = 'an object of repository path -> command line, e.g. {"~/src/app": "npm ci"}'
    if not isinstance(setups, dict):
        raise _bad("setup", want, setups)
    limit = obj.get("setup_timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 1 <= limit <= 3600:
        raise _bad("setup_timeout_s", "seconds from 1 to 3600", limit)
    top = os.path.realpath(repo)
    for key, line in setups.items():
        if not isinstance(line, str) or not line.strip():
            raise _bad(f"setup.{key}", "a command line", line)
        where = expand(key, home)
        if where is not None and os.path.isabs(where) and os.path.realpath(where) == top:
            return Setup(line.strip(), float(limit))
    return None


def log_dir(sessions: Path, wid: str) -> str:
    """The worker's log folder, made before its session is: the setup's output opens it. Its
    last session was reaped just before, so a log here is a failed setup's: begun again."""
    sdir = sessions / wid
    sdir.mkdir(parents=True, exist_ok=True)
    logs = logfiles.prepare(sdir)
    if read_meta(sdir) is None:
        with contextlib.suppress(FileNotFoundError):
            os.truncate(os.path.join(logs, logfiles.LOG), 0)
    return logs


def run_setup(
    wid: str, setup: Setup, argv: list[str], env: Mapping[str, str], cwd: str, logs: str
) -> None:
    """The setup run to its end in `cwd`, its output appended to the worker's log; raises
    WorkerError (one line) when it fails, cannot start or outlasts its time."""
    where = os.path.join(logs, logfiles.LOG)
    fd = logfiles.open_log(logs)
    try:
        os.write(fd, f"looop: setup: {setup.line}\n".encode())
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: all of it goes at the end
            )
        except OSError as e:
            raise WorkerError(f"worker {wid}: its setup could not start: {e.strerror}") from None
        try:
            code = proc.wait(timeout=setup.timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        _end_group(proc)
        if code is None:
            os.write(fd, b"looop: setup timed out\n")
            raise WorkerError(
                f"worker {wid}: its setup `{setup.line}` took over {setup.timeout_s:g}s "
                f"(worktree.setup_timeout_s) and was stopped — see {where}"
            )
        if code != 0:
            os.write(fd, f"looop: setup failed (exit {code})\n".encode())
            raise WorkerError(
                f"worker {wid}: its setup `{setup.line}` failed (exit {code}) — see {where}, "
                "fix the command (config worktree.setup) or the repository, and start it again"
            )
        os.write(fd, b"looop: setup done\n")
    finally:
        os.close(fd)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """Nothing the setup left behind outlives it (a server it forgot, a hung child)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
