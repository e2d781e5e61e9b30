"""A worker on a real SSH host ends in a named outcome (issue 57, item 4): the beat at home
records it once from what the host's satellite said of its end — its exit code, or a kill
from home — and `ls --json` shows it on the far row, as for a worker here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import said
from tests.hosts.conftest import Home
from tests.hosts.util import looop


def _row(d: Path, wid: str) -> dict[str, Any]:
    got = looop(d, "ls", "--all", "--json")
    assert got.returncode == 0, got.stderr
    return next(r for r in json.loads(got.stdout) if r["id"] == wid)


def _ended(d: Path) -> list[dict[str, Any]]:
    path = d / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e.get("event") == "worker_ended"]


@pytest.mark.timeout(240)
def test_a_far_workers_exit_and_kill_are_recorded_once_and_shown(home: Home) -> None:
    d = home.data
    cmd = "sh -c 'echo done; exit 3' # {{prompt_file}}"
    assert looop(d, "worker", "start", "ow1", "x", "--host", "h1", "--command", cmd).returncode == 0
    live = "sh -c 'echo ready; exec sleep 300' # {{prompt_file}}"
    assert (
        looop(d, "worker", "start", "ow2", "x", "--host", "h2", "--command", live).returncode == 0
    )
    try:
        assert looop(d, "wait", "ow1", "--timeout", "60s").returncode == 3
        assert looop(d, "expect", "ow2", "ready", "--timeout", "60s").returncode == 0
        assert looop(d, "kill", "ow2").returncode == 0
        # a beat's sensor reads the far rows after its ends are recorded: ow1, seen over by
        # the first beat, is recorded by the second (ow2, over since its kill, by the first)
        looop(d, "tick", timeout=200)
        looop(d, "tick", timeout=200)
        one, two = _row(d, "ow1"), _row(d, "ow2")
        assert (one["outcome"], one["exit_code"], one["host"]) == ("failed", 3, "h1"), one
        assert two["outcome"] == "killed" and two["host"] == "h2", two
        looop(d, "tick", timeout=200)  # once: a later beat records nothing again
        ends = [(e["id"], e["outcome"]) for e in _ended(d) if e["id"] in ("ow1", "ow2")]
        assert sorted(ends) == [("ow1", "failed"), ("ow2", "killed")], ends
        journal = said(d)
        assert "worker ow1 ended: failed — exit 3" in journal, journal[-2000:]
    finally:
        looop(d, "kill", "ow2")
