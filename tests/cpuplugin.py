"""Where the suite's CPU goes: one JSON line per test (wall, and CPU by three counts).

Opt-in: `pytest -p tests.cpuplugin` with LOOOP_TEST_CPU=FILE (lines are appended; every xdist
worker writes its own). Summarise with `python -m tests.cpuplugin FILE`. For a whole run's
CPU, daemons between tests included, start pytest from a shell in a cpuacct group of its own
(`mkdir /sys/fs/cgroup/cpuacct/run; echo $$ > /sys/fs/cgroup/cpuacct/run/cgroup.procs`) and
read its `cpuacct.usage` (ns) before and after: the workers' groups are made inside it.

Counts per test: `self` (this pytest process), `kids` (children it reaped: getrusage's
RUSAGE_CHILDREN misses daemons — session and beat hosts, their supervisors and agent CLIs — which
are never reaped by the test), and `group`: the v1 `cpuacct` cgroup the worker moves itself into
at start (where the machine has one and we may write it), which every descendant inherits,
daemons included, and which no setsid or double fork leaves. A daemon outliving its test is
counted in whichever test is running when it burns CPU.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

_CPUACCT = "/sys/fs/cgroup/cpuacct"
_GROUP = pytest.StashKey[str]()


def _usage(group: str | None) -> float:
    if group is None:
        return 0.0
    try:
        with open(os.path.join(group, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9
    except OSError:
        return 0.0


def _rusage() -> tuple[float, float]:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


def _own_cpuacct() -> str:
    """This process's cpuacct cgroup: the worker's group goes inside it, so a group made
    for the whole run counts every worker."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "cpuacct" in controllers.split(","):
                return _CPUACCT + path.rstrip("/")
    raise OSError("no cpuacct hierarchy")


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("LOOOP_TEST_CPU"):
        return
    try:
        group = os.path.join(_own_cpuacct(), f"looop-testcpu-{os.getpid()}")
        os.makedirs(group, exist_ok=True)
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        return  # no writable cpuacct here: only self and kids are counted
    config.stash[_GROUP] = group


def pytest_unconfigure(config: pytest.Config) -> None:
    """Back to the parent group; ours goes once nothing of the run is left in it."""
    group = config.stash.get(_GROUP, None)
    if group is None:
        return
    try:
        with open(os.path.join(os.path.dirname(group), "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        os.rmdir(group)
    except OSError:
        pass  # a daemon of the run still lives there: the folder stays until it ends


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    out = os.environ.get("LOOOP_TEST_CPU")
    if not out:
        yield
        return
    group = item.config.stash.get(_GROUP, None)
    start = time.time()
    t0, g0, (s0, c0) = time.monotonic(), _usage(group), _rusage()
    yield
    t1, g1, (s1, c1) = time.monotonic(), _usage(group), _rusage()
    row = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "id": item.nodeid,
        "start": round(start, 3),  # when, so a run's schedule (who idles when) can be drawn
        "wall": round(t1 - t0, 3),
        "self": round(s1 - s0, 3),
        "kids": round(c1 - c0, 3),
        "group": round(g1 - g0, 3) if group else None,
    }
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


def summary(rows: list[dict[str, Any]], top: int = 20) -> list[str]:
    def cpu(r: dict[str, Any]) -> float:
        g = r.get("group")
        return float(g) if g is not None else float(r["self"]) + float(r["kids"])

    def folder(nodeid: str) -> str:
        parts = nodeid.split("::")[0].split("/")
        return parts[1] if len(parts) > 2 else "tests"

    lines = ["group       tests    wall s     cpu s  (self+kids s)"]
    sums: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    files: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for r in rows:
        for key, table in ((folder(r["id"]), sums), (r["id"].split("::")[0], files)):
            s = table[key]
            s[0] += 1
            s[1] += r["wall"]
            s[2] += cpu(r)
            s[3] += r["self"] + r["kids"]
    for name, (n, wall, c, sk) in sorted(sums.items(), key=lambda kv: -kv[1][2]):
        lines.append(f"{name:<11} {int(n):5d} {wall:9.1f} {c:9.1f}  ({sk:.1f})")
    tot = [sum(s[i] for s in sums.values()) for i in range(4)]
    lines.append(f"{'all':<11} {int(tot[0]):5d} {tot[1]:9.1f} {tot[2]:9.1f}  ({tot[3]:.1f})")
    lines.append(f"-- the {top} files with most cpu: cpu s, wall s, tests")
    for name, (n, wall, c, _) in sorted(files.items(), key=lambda kv: -kv[1][2])[:top]:
        lines.append(f"{c:8.1f} {wall:8.1f} {int(n):4d}  {name}")
    lines.append(f"-- the {top} slowest tests: wall s, cpu s")
    for r in sorted(rows, key=lambda r: -r["wall"])[:top]:
        lines.append(f"{r['wall']:8.1f} {cpu(r):8.1f}  {r['id']}")
    return lines + schedule(rows, cpu)


def schedule(rows: list[dict[str, Any]], cpu: Callable[[dict[str, Any]], float]) -> list[str]:
    """Each xdist worker's share of the run: a worker whose last test ends early idles
    until the run's end (the tail), and its longest test says why."""
    timed = [r for r in rows if "start" in r]
    if not timed:
        return []
    t0 = min(r["start"] for r in timed)
    end = max(r["start"] + r["wall"] for r in timed)
    lines = [f"-- the schedule: {end - t0:.0f} s from the first test's start to the last's end"]
    lines.append("worker  tests  first s   last end s  busy s   cpu s  longest test")
    workers: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in timed:
        workers[r["worker"]].append(r)
    for name, mine in sorted(workers.items()):
        first = min(r["start"] for r in mine) - t0
        last = max(r["start"] + r["wall"] for r in mine) - t0
        busy = sum(r["wall"] for r in mine)
        longest = max(mine, key=lambda r: r["wall"])
        lines.append(
            f"{name:<7} {len(mine):5d} {first:8.0f} {last:12.0f} {busy:7.0f} "
            f"{sum(cpu(r) for r in mine):7.1f}  {longest['wall']:.0f} s {longest['id']}"
        )
    return lines


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print("\n".join(summary([json.loads(line) for line in f if line.strip()])))
