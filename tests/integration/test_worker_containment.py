"""A worker's run ends whole: whatever its agent started (a setsid app-server, a double-forked
daemon, an `env -i setsid` child, one that ignores SIGHUP) dies with `looop kill`, with
`looop down`, and after its supervisor was SIGKILLed — in a cgroup where one can be made,
by the supervisor's subreaper sweep where not. Found afterwards by a tag in argv, as a user
would look with ps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.sessions.state import get_session, list_sessions, settle_dead
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import clean_env, kill_sessions, process_ended, wait_until, wire
from tests.procwatch import FIXTURES, by_argv, cgroups_here, describe, kill_all

pytestmark = [pytest.mark.timeout(120), pytest.mark.process]

LEFT = 5  # the agent itself, app-server, double fork, env -i, nohup


KINDS = [
    pytest.param(
        "cgroup",
        marks=pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here"),
    ),
    "sweep",
]


def _env(ctx: Ctx, kind: str) -> dict[str, str]:
    extra = {"LOOOP_NO_CGROUP": "1"} if kind == "sweep" else {}
    return clean_env(ctx.paths.data.parent, ctx.paths.data, **extra)


def _looop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _leaky(ctx: Ctx, kind: str, wid: str) -> str:
    """Start worker `wid` running the leaky agent; its tag once all it leaks is in place."""
    tag = f"leak{os.getpid()}x{os.urandom(4).hex()}"
    ctx = replace(ctx, env={**ctx.env, **_env(ctx, kind)})
    agent = f"{FIXTURES / 'leaky_agent.sh'} {tag} {sys.executable} {{{{prompt_file}}}}"
    start_worker(ctx, ctx.knobs(), StartRequest(wid, "x", command=agent))

    def in_place() -> bool:  # each one running python and ignoring the hangup already
        pids = by_argv(tag)
        return len(pids) == LEFT and all(_ignores_hup(p) for p in pids)

    wait_until(in_place, 20, f"{LEFT} processes tagged {tag}, each ignoring SIGHUP")
    return tag


def _ignores_hup(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ign = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("SigIgn:")), "0")
    return bool(int(ign, 16) & (1 << (signal.SIGHUP - 1)))


@pytest.fixture
def fleet(ctx: Ctx) -> object:
    wire(ctx, [])
    tags: list[str] = []
    yield tags
    kill_sessions(ctx.paths.data)
    for tag in tags:
        kill_all(by_argv(tag))


@pytest.mark.parametrize("kind", KINDS)
def test_looop_kill_leaves_nothing_behind(ctx: Ctx, fleet: list[str], kind: str) -> None:
    tag = _leaky(ctx, kind, "w1")
    fleet.append(tag)
    meta = json.loads((ctx.paths.data / "sessions" / "w1" / "meta.json").read_text())
    assert meta["contain"] == kind
    r = _looop(_env(ctx, kind), "kill", "w1")
    assert r.returncode == 0, r.stdout + r.stderr
    left = by_argv(tag)
    assert left == [], f"outlived `looop kill`: {describe(left)}"
    s = get_session(ctx.paths.data, "w1")
    assert s.state == "killed" and not s.alive
    status = json.loads((ctx.paths.data / "sessions" / "w1" / "status.json").read_text())
    assert status["survivors"] == 0
    if kind == "cgroup":  # removed as its supervisor exits, just after it answered the kill
        gone = lambda: not os.path.exists(meta["cgroup"])  # noqa: E731
        wait_until(gone, 10, "its cgroup removed once its supervisor ended")


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_that_ends_on_its_own_takes_its_daemons_along(
    ctx: Ctx, fleet: list[str], kind: str
) -> None:
    tag = _leaky(ctx, kind, "w1")
    fleet.append(tag)
    agent = get_session(ctx.paths.data, "w1").child_pid
    assert agent is not None and agent in by_argv(tag)
    os.kill(agent, signal.SIGTERM)  # the agent exits; its app-server must not stay
    wait_until(lambda: not get_session(ctx.paths.data, "w1").alive, 20, "the session's end")
    assert by_argv(tag) == [], describe(by_argv(tag))


def test_looop_down_leaves_nothing_behind(ctx: Ctx, fleet: list[str]) -> None:
    kinds = ["sweep", "cgroup"] if cgroups_here() else ["sweep"]
    for i, kind in enumerate(kinds):
        fleet.append(_leaky(ctx, kind, f"w{i}"))
    r = _looop(_env(ctx, "cgroup"), "down")
    assert r.returncode == 0, r.stdout + r.stderr
    for tag in fleet:
        assert by_argv(tag) == [], f"outlived `looop down`: {describe(by_argv(tag))}"


def _sigkill_supervisor(ctx: Ctx, wid: str) -> None:
    """The OOM killer's way: the supervisor dies at once and its lock is released."""
    sup = get_session(ctx.paths.data, wid).supervisor_pid
    assert sup is not None
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: process_ended(sup), 10, "the supervisor's death")
    wait_until(lambda: not get_session(ctx.paths.data, wid).alive, 10, "its lock released")


@pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")
def test_a_sigkilled_supervisors_leftovers_die_at_the_next_housekeeping(
    ctx: Ctx, fleet: list[str]
) -> None:
    tag = _leaky(ctx, "cgroup", "w1")
    fleet.append(tag)
    _sigkill_supervisor(ctx, "w1")
    # the hangup the dying PTY sent is ignored by most of them: they are still here …
    assert len(by_argv(tag)) >= 3, describe(by_argv(tag))
    assert settle_dead(list_sessions(ctx.paths.data), "2026-01-01T00:00:00.000Z") == ["w1"]
    # … until the pulse's housekeeping settles the dead session
    assert by_argv(tag) == [], describe(by_argv(tag))
    status = json.loads((ctx.paths.data / "sessions" / "w1" / "status.json").read_text())
    assert (status["state"], status["survivors"]) == ("killed", 0)


@pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")
def test_pruning_a_sigkilled_supervisors_session_takes_its_leftovers_and_cgroup_along(
    ctx: Ctx, fleet: list[str]
) -> None:
    """`looop prune` before any beat settled the crash: the session's folder held the only
    record of its cgroup, so removing it must end the group first, not orphan it for good."""
    tag = _leaky(ctx, "cgroup", "w1")
    fleet.append(tag)
    meta = json.loads((ctx.paths.data / "sessions" / "w1" / "meta.json").read_text())
    _sigkill_supervisor(ctx, "w1")
    assert len(by_argv(tag)) >= 3, describe(by_argv(tag))
    r = _looop(_env(ctx, "cgroup"), "prune")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (ctx.paths.data / "sessions" / "w1").exists()
    assert by_argv(tag) == [], f"outlived `looop prune`: {describe(by_argv(tag))}"
    assert not os.path.exists(meta["cgroup"]), "its cgroup was left behind"


def test_ls_says_how_each_worker_is_contained(ctx: Ctx, fleet: list[str]) -> None:
    kinds = ["sweep", "cgroup"] if cgroups_here() else ["sweep"]
    for i, kind in enumerate(kinds):
        fleet.append(_leaky(ctx, kind, f"w{i}"))
    r = _looop(_env(ctx, "cgroup"), "ls")
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.splitlines()
    col = head.split().index("CONTAIN")
    got = {row.split()[0]: row.split()[col] for row in rows if row.startswith("w")}
    assert got == {f"w{i}": kind for i, kind in enumerate(kinds)}
    rows_json = json.loads(_looop(_env(ctx, "cgroup"), "ls", "--json").stdout)
    assert {r["id"]: r["contain"] for r in rows_json if r["id"] != "pulse"} == got
