"""A host whose link is cut mid-stream: its workers read `unreachable` (not dead), the ask
stays pending at home, and once the link is back the worker is found alive with its whole
log, and the answer reaches it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop

N = 80
WORKER = (
    'bash -c \'A=$(looop ask --prompt "go on?"); echo "ANSWER=$A"; '
    f"for i in $(seq 1 {N}); do echo tick-$i; sleep 0.1; done; echo ALL-TICKED; cat'"
    " # {{prompt_file}}"
)


def _row(data: Path, wid: str) -> dict[str, object]:
    rows = json.loads(looop(data, "ls", "--json", timeout=60).stdout)
    return next(r for r in rows if r["id"] == wid)


def _wait_pending(data: Path, wid: str) -> str:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        rows = json.loads(looop(data, "asks", "--json").stdout or "[]")
        mine = [r for r in rows if r.get("worker") == wid]
        if mine:
            return str(mine[0]["id"])
        time.sleep(0.2)
    raise AssertionError(f"no pending ask from {wid}: " + looop(data, "log", wid).stdout)


@pytest.mark.timeout(120)
def test_a_cut_link_reads_unreachable_and_recovers_with_the_whole_log(home: Home) -> None:
    d = home.data
    h3 = next(h for h in home.lab.hosts if h.name == "h3")
    start = looop(d, "worker", "start", "cut1", "x", "--host", "h3", "--command", WORKER)
    assert start.returncode == 0, start.stderr
    ask = _wait_pending(d, "cut1")
    looop(d, "answer", ask, "yes")
    assert looop(d, "expect", "cut1", "tick-3", "--timeout", "20s").returncode == 0
    h3.cut()
    try:
        row = _row(d, "cut1")
        assert row["health"] == "unreachable" and row["alive"] is True, row
        # its leases are not reaped, and a verb says the host is out of reach in one line
        shot = looop(d, "shot", "cut1", timeout=60)
        assert shot.returncode != 0 and "does not answer" in shot.stderr, shot.stderr
        assert shot.stderr.count("\n") == 1
        time.sleep(N * 0.1 / 2)  # the worker goes on writing on its host meanwhile
    finally:
        h3.restore()
    row = _row(d, "cut1")
    assert row["alive"] is True and row["health"] != "unreachable", row
    done = looop(d, "expect", "cut1", "ALL-TICKED", "--timeout", "30s")
    assert done.returncode == 0
    log = looop(d, "log", "cut1").stdout
    ticks = [ln.strip() for ln in log.splitlines() if ln.startswith("tick-")]
    assert ticks == [f"tick-{i}" for i in range(1, N + 1)]
    looop(d, "kill", "cut1")


@pytest.mark.timeout(120)
def test_an_ask_made_across_a_cut_is_still_answered(home: Home) -> None:
    d = home.data
    h2 = next(h for h in home.lab.hosts if h.name == "h2")
    cmd = 'bash -c \'A=$(looop ask --prompt "ship it?"); echo "ANSWER=$A"; cat\' # {{prompt_file}}'
    start = looop(d, "worker", "start", "cut2", "x", "--host", "h2", "--command", cmd)
    assert start.returncode == 0, start.stderr
    ask = _wait_pending(d, "cut2")
    h2.cut()
    try:
        assert _row(d, "cut2")["health"] == "unreachable"
        pending = json.loads(looop(d, "asks", "--json").stdout)
        assert any(r["id"] == ask for r in pending)  # still pending, nothing lost
        looop(d, "answer", ask, "shipped")  # answered at home while the host is away
    finally:
        h2.restore()
    assert _row(d, "cut2")["alive"] is True  # the link is back (and the channel with it)
    got = looop(d, "expect", "cut2", "ANSWER=shipped", "--timeout", "40s")
    assert got.returncode == 0, looop(d, "log", "cut2").stdout
    asks = json.loads(looop(d, "asks", "--json").stdout)
    assert not [r for r in asks if r.get("worker") == "cut2"]  # asked once, not twice
    looop(d, "kill", "cut2")
