"""A worker on a real SSH host at an approval prompt joins the needs-you queue as one at home
does (issue 57 item 3): its satellite judges the screen on the host, `looop needs` lists it
with its host and the command that answers it, the beat tells it once; answered, it leaves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.hosts.conftest import Home
from tests.hosts.util import looop

# what claude draws at its approval prompt (runners/claude.py); a line answers it and, as claude
# does, the prompt is cleared
PROMPTER = (
    "printf 'Do you want to proceed?\\n❯ 1. Yes\\n  2. No\\n'; read -r _; "
    "printf '\\033[2J\\033[H'; echo answered; exec sleep 300 # {{prompt_file}}"
)


def _needs(home: Home) -> list[dict[str, Any]]:
    got = looop(home.data, "needs", "--json")
    assert got.returncode == 0, got.stderr
    return [n for n in json.loads(got.stdout) if n["worker"] == "nw1"]


def _told(home: Home) -> list[dict[str, Any]]:
    path = home.data / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e.get("event") == "worker_needs_input"]


@pytest.mark.timeout(180)
def test_a_far_worker_at_its_approval_prompt_is_in_the_queue_until_answered(home: Home) -> None:
    d = home.data
    start = looop(d, "worker", "start", "nw1", "x", "--host", "h1", "--command", PROMPTER)
    assert start.returncode == 0, start.stderr
    try:
        seen = looop(d, "expect", "nw1", "1. Yes", "--timeout", "30s")
        assert seen.returncode == 0, seen.stderr
        wait_until(lambda: _needs(home), 30, "nw1 in looop needs")
        (need,) = _needs(home)
        assert (need["kind"], need["host"], need["answer"]) == (
            "approval",
            "h1",
            "looop attach nw1",
        )
        assert "Do you want to proceed?" in need["what"]
        for _ in range(2):  # the beat tells it once, not again on the next beat
            looop(d, "tick", timeout=240)
        said = [e for e in _told(home) if e.get("id") == "nw1"]
        assert len(said) == 1 and "Do you want to proceed?" in str(said[0]["said"]), said
        assert looop(d, "send", "nw1", "1").returncode == 0
        assert looop(d, "expect", "nw1", "answered", "--timeout", "30s").returncode == 0
        wait_until(lambda: not _needs(home), 30, "nw1 to leave the queue once answered")
    finally:
        looop(d, "kill", "nw1")
