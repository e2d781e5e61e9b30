"""A worker on an SSH host is bounded as one at home, by the home's knobs: a fork flood there
stops at the home's worker_max_pids (the host's user is not root: RLIMIT_NPROC holds it) and
the home names the worker, its host and the bound; a worker keeping more than the home's
worker_max_disk there is paused whole on its host — a `setsid` child of its own too — and
`worker continue` lets all of it go on."""

from __future__ import annotations

import json
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import until, wait_until
from tests.hosts.conftest import Home
from tests.hosts.util import looop

FLOOD = """import os, time
n = 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(300)
        os._exit(0)
    n += 1
print(f"flood started {n}", flush=True)
time.sleep(300)
"""


START_CALL_TASKS = 8  # the most tasks a `worker start` call runs on its host as the user


def _python_line(code: str) -> str:
    """A worker line running `code` (hex: no quoting to get wrong)."""
    run = f"exec(bytes.fromhex('{code.encode().hex()}').decode())"
    return f'python3 -c "{run}" # {{{{prompt_file}}}}'


def _events(home: Home, name: str) -> list[dict[str, object]]:
    path = home.data / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e.get("event") == name]


def _row(home: Home, wid: str) -> dict[str, object]:
    rows = json.loads(looop(home.data, "ls", "--all", "--json").stdout)
    return next(r for r in rows if r["id"] == wid)


@pytest.mark.timeout(180)
def test_a_fork_flood_on_a_host_stops_at_the_homes_bound_and_is_named(home: Home) -> None:
    d = home.data
    bound = {"LOOOP_WORKER_MAX_PIDS": "40"}
    # the host's user runs other things when the worker starts, which end once it flooded
    # (as the very call that started it does): the flood still holds its whole bound
    user = pwd.getpwnam(next(h for h in home.lab.hosts if h.name == "h1").user)
    ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    others = [subprocess.Popen(["setpriv", *ids, "sleep", "300"]) for _ in range(6)]
    try:
        start = looop(
            d,
            "worker",
            "start",
            "fb1",
            "x",
            "--host",
            "h1",
            "--command",
            _python_line(FLOOD),
            env=bound,
        )
        assert start.returncode == 0, start.stderr
        seen = looop(d, "expect", "fb1", r"flood started \d+", "--timeout", "60s")
        assert seen.returncode == 0, seen.stderr
        started = int(re.findall(r"flood started (\d+)", looop(d, "shot", "fb1").stdout)[0])
        # RLIMIT_NPROC bounds the run to what its user ran at the spawn plus 40; what `worker
        # start`'s own call ran there (its ssh session, shell and satellite with its threads)
        # ends right after, and a flood slower than that call's end takes those slots too
        assert started < 40 + START_CALL_TASKS, f"{started} processes started under 40"
        for p in others:
            p.kill()
            p.wait(timeout=10)
        # at its bound whatever else the host's user starts or ends meanwhile (the polls of
        # `expect` and `ls` are that user's processes too)
        limited = lambda: _row(home, "fb1")["health"] == "at its process limit"  # noqa: E731
        wait_until(limited, 30, "fb1 at its process limit in ls")
        row = _row(home, "fb1")
        assert row["alive"] and row["health"] == "at its process limit", row
        assert row["limit"] == "pids", row
        # the beat says it once, naming the worker, its host and the bound
        tick = looop(d, "tick", timeout=240, env=bound)
        said = [e for e in _events(home, "worker_at_limit") if e.get("id") == "fb1"]
        assert said and said[0]["host"] == "h1" and said[0]["limit"] == "pids", tick.stderr
        assert said[0]["max"] == 40, said
        line = "worker fb1 on host h1 is at its process limit 40"
        assert line in tick.stdout + tick.stderr, tick.stdout + tick.stderr
        looop(d, "tick", timeout=240, env=bound)
        again = [e for e in _events(home, "worker_at_limit") if e.get("id") == "fb1"]
        assert len(again) == 1, again
    finally:
        for p in others:
            p.kill()
            p.wait(timeout=10)
        looop(d, "kill", "fb1")


FILLER = """import os, subprocess, time
reports = os.environ["LOOOP_REPORTS_DIR"]
os.makedirs(reports, exist_ok=True)
with open(os.path.join(reports, "fd1.md"), "wb") as f:
    f.write(os.urandom(12 << 20))
# orphaned at once in a session of its own: its supervisor adopts it, a pause reaches it
counter = os.path.join(os.environ["HOME"], "fd1.count")
# appended, never truncated: a pause landing between a truncation and its write would leave
# no count to read
loop = f"i=0; while :; do i=$((i+1)); echo $i >> {counter}; sleep 0.05; done"
subprocess.run(["sh", "-c", f"setsid sh -c '{loop}' &"], check=True)
print("filled", flush=True)
time.sleep(300)
"""


def _count(path: Path) -> int:
    """The counter's last count (each a line appended whole), -1 before its first."""
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return -1


def _settled(path: Path) -> bool:
    """The counter stopped: the same value on two reads 0.3 s (six of its steps) apart."""
    a = _count(path)
    until(lambda: False, 0.3)
    return a == _count(path) and a > 0


@pytest.mark.timeout(180)
def test_a_worker_past_the_homes_disk_bound_is_paused_whole_on_its_host(home: Home) -> None:
    d = home.data
    h1 = next(h for h in home.lab.hosts if h.name == "h1")
    counter = h1.home / "fd1.count"
    bound = {"LOOOP_WORKER_MAX_DISK": str(8 << 20)}
    try:
        start = looop(
            d, "worker", "start", "fd1", "x", "--host", "h1", "--command", _python_line(FILLER)
        )
        assert start.returncode == 0, start.stderr
        assert looop(d, "expect", "fd1", "filled", "--timeout", "60s").returncode == 0
        wait_until(lambda: _count(counter) > 0, 30, "the counter to count")
        tick = looop(d, "tick", timeout=240, env=bound)
        said = [e for e in _events(home, "worker_over_disk") if e.get("id") == "fd1"]
        assert said and said[0]["host"] == "h1", tick.stderr
        out = tick.stdout + tick.stderr
        assert "worker fd1 on host h1 keeps more than its disk limit 8.0 MiB" in out, out
        assert _row(home, "fd1")["health"] == "over disk limit"
        # whole: the counter its supervisor adopted stops too, on its host
        wait_until(lambda: _settled(counter), 10, "the paused counter to settle")
        stuck = _count(counter)
        assert not until(lambda: _count(counter) != stuck, 1.0)  # 20 of its steps: none taken
        go = looop(d, "worker", "continue", "fd1")
        assert go.returncode == 0 and "goes on" in go.stdout, go.stderr
        wait_until(lambda: _count(counter) > stuck, 10, "the counter to go on")
    finally:
        looop(d, "kill", "fd1")


@pytest.mark.timeout(180)
def test_a_worker_started_again_under_the_id_of_one_paused_for_its_disk_is_paused_too(
    home: Home,
) -> None:
    """The mark of a worker paused for its disk and killed so is that run's: the next worker
    of its id is measured and paused in its turn (it was said to be over its bound, never
    paused)."""
    d = home.data
    h1 = next(h for h in home.lab.hosts if h.name == "h1")
    counter = h1.home / "fd2.count"
    bound = {"LOOOP_WORKER_MAX_DISK": str(8 << 20)}
    filler = _python_line(FILLER.replace("fd1", "fd2"))
    try:
        for run in (1, 2):
            counter.unlink(missing_ok=True)
            start = looop(d, "worker", "start", "fd2", "x", "--host", "h1", "--command", filler)
            assert start.returncode == 0, start.stderr
            assert looop(d, "expect", "fd2", "filled", "--timeout", "60s").returncode == 0
            wait_until(lambda: _count(counter) > 0, 30, "the counter to count")
            looop(d, "tick", timeout=240, env=bound)
            wait_until(lambda: _settled(counter), 10, f"run {run}'s counter to settle")
            assert looop(d, "kill", "fd2").returncode == 0  # paused, never let go on
            wait_until(lambda: not _row(home, "fd2")["alive"], 30, f"run {run} to end")
    finally:
        looop(d, "kill", "fd2")


HOG = """import time
x = bytearray(512 << 20)
x[::4096] = b"1" * len(x[::4096])
print("hogging", flush=True)
time.sleep(300)
"""


@pytest.mark.timeout(180)
def test_a_memory_hog_on_a_host_is_killed_at_the_homes_bound_and_named(home: Home) -> None:
    """The host's user is not root: no cgroup holds memory there, its supervisor samples it."""
    d = home.data
    bound = {"LOOOP_WORKER_MAX_MEMORY": str(96 << 20)}
    try:
        start = looop(
            d,
            "worker",
            "start",
            "mh1",
            "x",
            "--host",
            "h2",
            "--command",
            _python_line(HOG),
            env=bound,
        )
        assert start.returncode == 0, start.stderr
        wait_until(lambda: not _row(home, "mh1")["alive"], 60, "the hog to end")
        row = _row(home, "mh1")
        assert row["health"] == "hit its memory limit" and row["limit"] == "memory", row
        tick = looop(d, "tick", timeout=240, env=bound)
        said = [e for e in _events(home, "worker_at_limit") if e.get("id") == "mh1"]
        assert said and said[0]["host"] == "h2" and said[0]["limit"] == "memory", tick.stderr
        line = "worker mh1 on host h2 hit its memory limit 96.0 MiB"
        assert line in tick.stdout + tick.stderr, tick.stdout + tick.stderr
    finally:
        looop(d, "kill", "mh1")
