"""Test helpers: wire a data dir to the scripted runner."""

from __future__ import annotations

import io
import json
import os
import select
import shlex
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import pytest

from looop.core.context import Ctx
from looop.home.anchors import listening
from looop.home.clock import Clock
from looop.home.paths import Paths
from looop.home.peers import holder
from looop.sessions import hostnames, spawner
from looop.spend.days import Held
from looop.spend.report import reports_at
from looop.spend.views import CostReport


def wire(
    ctx: Ctx,
    steps: list[dict[str, Any]],
    prompt_file: bool = False,
    worker: str = "cat {{prompt_file}}",
    **cfg: Any,
) -> Path:
    """Point the config at the scripted runner with these steps; returns the script path."""
    script = ctx.paths.data.parent / "script.json"
    script.write_text(json.dumps(steps))
    pos = script.with_name(script.name + ".pos")
    if pos.exists():
        pos.unlink()
    cmd = f"{shlex.quote(sys.executable)} -m looop.demo.runner --script {shlex.quote(str(script))}"
    if prompt_file:
        cmd += " {{prompt_file}}"
    cfg.setdefault("max_daily_usd", 0)  # the scripted runner reports no cost: budget tests opt in
    obj = {
        "default": "scripted",
        "runners": {"scripted": {"tick": cmd, "worker": worker}},
        **cfg,
    }
    ctx.paths.config.write_text(json.dumps(obj))
    return script


def with_env(ctx: Ctx, **env: str) -> Ctx:
    return replace(ctx, env={**ctx.env, **env})


def said(data: Path) -> str:
    """What events.jsonl says happened besides moves (a worker's end, an answer), a line each:
    what `looop journal --all` shows beside the journal."""
    p = data / "events.jsonl"
    rows = [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []
    return "".join(f"{r['line']}\n" for r in rows if isinstance(r.get("line"), str))


def events(ctx: Ctx) -> list[str]:
    return [name for name, _ in ctx.events.seen]  # type: ignore[attr-defined]


def runner_calls(script: Path) -> int:
    pos = script.with_name(script.name + ".pos")
    return int(pos.read_text()) if pos.exists() else 0


def run_cli(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
) -> tuple[int, str, str]:
    """`looop ARGS` in this process: (exit code, stdout, stderr). With env (and clock) the
    verb sees exactly those, as the entry point hands them down; else the process's own."""
    from looop.verbs.console import run

    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    try:
        run(list(args), env, clock)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def outside_env(**extra: str) -> dict[str, str]:
    """This process's environment without the LOOOP_* settings of the shell running the tests,
    but with the run's own runtime dir: the hosts a test's `looop` starts are the run's, stopped
    with it, never in the user's runtime dir beside their own pulse."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_")}
    env["LOOOP_RUNTIME_DIR"] = os.environ["LOOOP_RUNTIME_DIR"]
    env.update(extra)
    return env


def clean_env(home: Path, data: Path, **extra: str) -> dict[str, str]:
    """The whole environment a CLI test hands `looop`: nothing leaks in from the outside world
    (a LOOOP_* of the shell running the tests, a real HOME)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
        "IS_SANDBOX": "1",
        "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"],  # the run's own hosts
        **extra,
    }


def environ_unchanged(before: dict[str, str], what: str) -> None:
    """Fail naming the variables that `what` changed in this process's environment (but
    PYTEST_CURRENT_TEST, which pytest itself sets for each phase of a test)."""
    now = dict(os.environ)
    keys = (before.keys() | now.keys()) - {"PYTEST_CURRENT_TEST"}
    changed = sorted(k for k in keys if before.get(k) != now.get(k))
    if changed:
        raise AssertionError(f"{what} changed os.environ: {changed}; pass env_extra instead")


class Cli:
    """`looop ARGS` in this process with its own env and clock (as `main(argv, env, clock)`
    hands them to every verb); the process's environment stays as it was."""

    def __init__(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        data: Path,
        env: dict[str, str],
        clock: Clock,
    ) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.data = data
        self.env = env  # a test may edit it (drop IS_SANDBOX, prepend to PATH) before a call
        self.clock = clock

    def __call__(
        self, *args: str, stdin: str | None = None, env_extra: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        before = dict(os.environ)
        res = run_cli(
            self.capsys,
            *args,
            stdin=stdin,
            monkeypatch=self.monkeypatch,
            env=self.child_env(**(env_extra or {})),
            clock=self.clock,
        )
        environ_unchanged(before, f"looop {' '.join(args)}")
        return res

    def child_env(self, **extra: str) -> dict[str, str]:
        """The same environment for a `looop` started as a subprocess."""
        return {**self.env, **extra}


# what a stream's last read brought past the event awaited: the next await reads it first
_HELD: weakref.WeakKeyDictionary[IO[bytes], bytes] = weakref.WeakKeyDictionary()


def await_event(stream: IO[bytes], name: str, timeout: float = 30) -> dict[str, Any]:
    """Read JSON event lines until `name` appears (bounded by a deadline). Lines read past
    it are kept for the next call on the same stream (one read may bring several events)."""
    deadline = time.monotonic() + timeout
    buf = _HELD.pop(stream, b"")
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == name:
                _HELD[stream] = buf
                return dict(ev)
        if time.monotonic() >= deadline:
            break
        r, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
    raise AssertionError(f"event {name} not seen within {timeout}s")


def until(cond: Callable[[], object], timeout: float = 10.0, step: float = 0.01) -> bool:
    """The one bounded poll for state another process or thread produces: whether `cond`
    became true within `timeout` (checked once more at the deadline). Never a blind sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def process_ended(pid: int) -> bool:
    """Gone or a zombie; a process that goes between two looks counts as gone."""
    import psutil  # lazy: only process tests need it

    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_until(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """until(), failing the test with what was awaited."""
    if not until(cond, timeout):
        raise AssertionError(f"{what} not reached within {timeout}s")


def kill_sessions(root: Path) -> None:
    """Leave no session process behind, whatever a test did: SIGKILL every child group and
    every live supervisor under `root`."""
    import contextlib
    import signal

    from looop.sessions.state import list_sessions

    for s in list_sessions(root):
        if s.child_pid:
            with contextlib.suppress(OSError):
                os.killpg(s.child_pid, signal.SIGKILL)
        if s.alive and s.supervisor_pid:
            with contextlib.suppress(OSError):
                os.kill(s.supervisor_pid, signal.SIGKILL)


def stop_sessions(root: Path) -> None:
    """Kill every live session under `root` the way a user would (`looop kill`); a session that
    finishes on its own between the listing and the kill is already what the caller wanted."""
    from looop.sessions.client import kill
    from looop.sessions.state import SessionError, get_session, list_sessions

    for s in list_sessions(root):
        if not s.alive:
            continue
        try:
            kill(root, s.id)
        except SessionError:
            if get_session(root, s.id).alive:
                raise


def examples(n: int) -> int:
    """A property test's example count under the loaded hypothesis profile: `n` in the full
    run (`make test`), a tenth (at least the profile's own) under `make check`'s small one."""
    from hypothesis import settings

    small = settings.default.max_examples
    return n if small >= 100 else max(small, n // 10)


def stop_serving(
    sock: socket.socket, thread: threading.Thread, stop: Callable[[], None] | None = None
) -> None:
    """End a listening socket that `thread` accepts on, blocking: shut down first (its accept
    fails at once), or call `stop` (a filter's Ports.close: its selector returns), wait for the
    thread, then close. A socket closed under a thread about to accept on it lets that thread
    accept on whatever socket takes the freed descriptor number next: another test's server,
    whose client then gets this one's answer."""
    if stop is not None:
        stop()
    else:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # never listened, or already shut
    thread.join(10)
    sock.close()


def held(pid: int) -> bool:
    """Whether process `pid` is paused: stopped by a signal, or its cgroup frozen (v2's
    cgroup.events, v1's freezer.state), which /proc shows as sleeping."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except (OSError, IndexError):
        return False
    if state in ("T", "t"):
        return True
    for line in lines:
        _n, names, path = line.split(":", 2)
        for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup") if names == "" else ():
            events = Path(base + path.rstrip("/"), "cgroup.events")
            if events.exists() and "frozen 1" in events.read_text():
                return True
        if "freezer" in names.split(","):
            f = Path("/sys/fs/cgroup/freezer" + path.rstrip("/"), "freezer.state")
            if f.exists() and f.read_text().strip() in ("FROZEN", "FREEZING"):
                return True
    return False


def listens(address: str) -> bool:
    """Whether something listens on a unix socket address (a path, or an abstract `\\0name`
    as the preloaded hosts use: home/anchors.py)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def host_pid(base: str = "/tmp", home: str | None = None, *, key: str | None = None) -> int | None:
    """The pid of the live session host of the data dir `home` (or of `key`), or None."""
    return holder(hostnames.host_socket(spawner._key_of(home, key), base))


def stop_hosts(base: str = "/tmp") -> int:
    """Ask every session host of the runtime dir to exit, whatever its build or home (a
    test run's end); how many answered."""
    return sum(spawner._stop_at(a) for a in listening(base, "host-"))


def can_mount_privately(tmp: Path) -> bool:
    """Whether a private mount namespace with its own tmpfs can be made here (root, or a user
    namespace): the full-disk tests' data dirs live on one."""
    target = tmp / "mount-probe"
    target.mkdir()
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {target}"],
        capture_output=True,
        timeout=30,
    )
    return r.returncode == 0


def cost_reports(
    paths: Paths, clock: Clock, asks: list[tuple[str, str]], held: Held | None = None
) -> list[CostReport]:
    """spend/report.reports_at over a home's Paths."""
    return reports_at(str(paths.data), clock, asks, held)


def cost_report(paths: Paths, clock: Clock, span: str = "today", by: str = "kind") -> CostReport:
    return cost_reports(paths, clock, [(span, by)])[0]
