"""Spend of a worker on an SSH host: its agent CLI's records stay on that host, where the
home's meter (loop/workmeter.py, which reads this machine's files) does not reach. So such a
worker shows "unmetered" (`ls`, the dashboard's rows), never a spend of $0.00, and a
budget — which only a metered worker can be held to — is refused on a host named, and
keeps a placed worker on this machine."""

from __future__ import annotations

import json

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop

SLEEP = "sleep 300 # {{prompt_file}}"


@pytest.mark.timeout(120)
def test_a_host_worker_shows_unmetered_and_a_budget_stays_home(home: Home) -> None:
    d = home.data
    try:
        start = looop(d, "worker", "start", "sp1", "x", "--host", "h1", "--command", SLEEP)
        assert start.returncode == 0, start.stderr
        rows = json.loads(looop(d, "ls", "--json").stdout)
        row = next(r for r in rows if r["id"] == "sp1")
        assert row["host"] == "h1" and row["alive"], row
        assert row["metered"] is False and row["spend_usd"] is None, row
        table = looop(d, "ls").stdout
        line = next(x for x in table.splitlines() if x.startswith("sp1"))
        assert "unmetered" in line and "$" not in line, table
        # the decider is told so too (sys-sessions; the beat's decide has no runner and fails
        # here, after its housekeeping and sensing ran)
        looop(d, "tick", timeout=240)
        snap = json.loads((d / "snapshots" / "sys-sessions.json").read_text())
        assert snap["detail"]["workers"]["sp1"]["spend_usd"] == "unmetered", snap

        # a budget on a host named: refused in one line, nothing started, no budget left
        named = looop(
            d, "worker", "start", "sp2", "x", "--host", "h2", "--budget", "5", "--command", SLEEP
        )
        assert named.returncode == 1, named.stdout
        err = named.stderr.strip()
        assert "its budget needs its spend metered" in err and "--host local" in err, err
        assert len(err.splitlines()) == 1, err
        assert not (d / "hosts" / "workers" / "sp2.json").exists()
        assert not (d / "budgets" / "sp2.json").exists()

        # one worker here already: the hosts h2 and h3 have more room left than the home
        here = looop(d, "worker", "start", "sp0", "x", "--host", "local", "--command", SLEEP)
        assert here.returncode == 0, here.stderr
        # placed (no host named) with a budget: it runs here, where the meter reads its CLI
        placed = looop(d, "worker", "start", "sp3", "x", "--budget", "5", "--command", SLEEP)
        assert placed.returncode == 0, placed.stderr
        assert not (d / "hosts" / "workers" / "sp3.json").exists()
        assert (d / "sessions" / "sp3").is_dir()
        assert json.loads((d / "budgets" / "sp3.json").read_text())["usd"] == 5
        # without a budget the same start goes to the host with the most room, as before
        free = looop(d, "worker", "start", "sp4", "x", "--command", SLEEP)
        assert free.returncode == 0, free.stderr
        assert (d / "hosts" / "workers" / "sp4.json").exists()
    finally:
        for wid in ("sp0", "sp1", "sp3", "sp4"):
            looop(d, "kill", wid)
