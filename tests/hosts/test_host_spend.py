"""Spend of a worker on an SSH host: its agent CLI's records stay on that host, where the
home's meter (loop/workmeter.py, which reads this machine's files) does not reach. So such a
worker shows "unmetered" (`ls`, the dashboard's rows), never a spend of $0.00. A custom
command's budget counts what it reports (its `cost report` rows come home through the
contract): past it, the worker is paused on its host."""

from __future__ import annotations

import json

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop

SLEEP = "sleep 300 # {{prompt_file}}"


@pytest.mark.timeout(120)
def test_a_host_worker_is_unmetered_and_paused_there_past_its_reported_budget(home: Home) -> None:
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

        # a custom command's budget on a host named: it counts what the worker reports (its
        # reports come home through the contract); past it, the worker is paused on its host
        named = looop(
            d, "worker", "start", "sp2", "x", "--host", "h2", "--budget", "0.01", "--command", SLEEP
        )
        assert named.returncode == 0, named.stderr
        assert "counts only what sp2 reports" in named.stdout, named.stdout
        assert (d / "hosts" / "workers" / "sp2.json").exists()
        said = looop(d, "cost", "report", "worker", "sp2", "custom", "0.05")  # as relayed home
        assert said.returncode == 0 and "recorded $0.05" in said.stdout, said.stderr
        looop(d, "tick", timeout=240)
        rows = {r["id"]: r for r in json.loads(looop(d, "ls", "--json").stdout)}
        assert rows["sp2"]["health"] == "over budget", rows["sp2"]
        assert rows["sp2"]["spend_usd"] == 0.05, rows["sp2"]
        assert '"worker_over_budget"' in (d / "events.jsonl").read_text()

        # one worker here already: the hosts h2 and h3 have more room left than the home
        here = looop(d, "worker", "start", "sp0", "x", "--host", "local", "--command", SLEEP)
        assert here.returncode == 0, here.stderr
        # without a budget a start goes to the host with the most room, as before
        free = looop(d, "worker", "start", "sp4", "x", "--command", SLEEP)
        assert free.returncode == 0, free.stderr
        assert (d / "hosts" / "workers" / "sp4.json").exists()
        # placed (no host named) with a budget: placed by the same rule, metered by its reports
        placed = looop(d, "worker", "start", "sp3", "x", "--budget", "5", "--command", SLEEP)
        assert placed.returncode == 0, placed.stderr
        assert json.loads((d / "budgets" / "sp3.json").read_text())["usd"] == 5
    finally:
        for wid in ("sp0", "sp1", "sp2", "sp3", "sp4"):
            looop(d, "kill", wid)
