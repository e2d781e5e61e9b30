"""30 workers across 3 hosts: each host's cap holds, placement without a host follows the
documented rule (most room left), and `looop down` stops every one of them on its host."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop


def _live_on(home: Home) -> dict[str, int]:
    rows = json.loads(looop(home.data, "host", "ls", "--json").stdout)
    return {r["name"]: r["workers"] for r in rows}


@pytest.mark.timeout(180)
def test_thirty_workers_placed_by_room_within_caps_then_down(home: Home) -> None:
    d = home.data
    cap4 = {"LOOOP_MAX_WORKERS": "4"}  # the home counts as a host with room for 4
    for name, cap in (("h1", 9), ("h2", 9), ("h3", 8)):
        (d / "hosts" / f"{name}.json").write_text(
            json.dumps({**json.loads((d / "hosts" / f"{name}.json").read_text()), "cap": cap})
        )
    # placement is one decision at a time (the pulse makes one move a beat): so are these
    placed: dict[str, str] = {}
    for i in range(30):
        wid = f"f{i:02d}"
        done = looop(
            d, "worker", "start", wid, "x", "--command", "sleep 300 # {{prompt_file}}", env=cap4
        )
        assert done.returncode == 0, done.stderr
        rec = d / "hosts" / "workers" / f"{wid}.json"
        placed[wid] = json.loads(rec.read_text())["host"] if rec.exists() else "local"
    counts = {h: list(placed.values()).count(h) for h in ("local", "h1", "h2", "h3")}
    assert counts == {"local": 4, "h1": 9, "h2": 9, "h3": 8}, counts
    # the first starts went where most room was left: a host before the home (cap 4)
    assert placed["f00"] == "h1"
    assert _live_on(home) == {"h1": 9, "h2": 9, "h3": 8}
    full = looop(
        d, "worker", "start", "f30", "x", "--command", "sleep 300 # {{prompt_file}}", env=cap4
    )
    assert full.returncode == 1 and "full" in full.stderr, full.stderr
    over = looop(
        d,
        "worker",
        "start",
        "f31",
        "x",
        "--host",
        "h3",
        "--command",
        "sleep 300 # {{prompt_file}}",
        env=cap4,
    )
    assert over.returncode == 1 and "host h3 is full" in over.stderr, over.stderr
    rows = json.loads(looop(d, "ls", "--json").stdout)
    assert sum(1 for r in rows if r["id"].startswith("f") and r["alive"]) == 30
    down = looop(d, "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert _live_on(home) == {"h1": 0, "h2": 0, "h3": 0}
    # really gone on the hosts: no `sleep 300` left under the hosts' users
    with ThreadPoolExecutor(3) as pool:
        left = list(
            pool.map(
                lambda u: subprocess.run(
                    ["pgrep", "-u", u, "-f", "sleep 300"], capture_output=True, text=True
                ).stdout.split(),
                [h.user for h in home.lab.hosts],
            )
        )
    assert left == [[], [], []]
    for h in ("h1", "h2", "h3"):
        (d / "hosts" / f"{h}.json").write_text(
            json.dumps({**json.loads((d / "hosts" / f"{h}.json").read_text()), "cap": 0})
        )


@pytest.mark.timeout(120)
def test_sys_sessions_shows_remote_workers_and_each_hosts_load(home: Home) -> None:
    from looop.core.context import Ctx
    from looop.core.events import Emitter
    from looop.home.clock import SystemClock
    from looop.home.paths import Paths
    from looop.sense.probes import probe_sessions
    from tests.hosts.util import home_env

    d = home.data
    start = looop(
        d, "worker", "start", "sp1", "x", "--host", "h1", "--command", "sleep 60 # {{prompt_file}}"
    )
    assert start.returncode == 0, start.stderr
    paths = Paths.at(d)
    clock = SystemClock(None)
    from tests.hosts.conftest import LOOOP

    em = Emitter(clock=clock, events_path=paths.events)
    ctx = Ctx(paths=paths, clock=clock, env=home_env(d), events=em, bin=str(LOOOP))
    got = probe_sessions(ctx)
    mine = [e for e in got["signal"] if e["id"] == "sp1"]
    want = {"id": "sp1", "state": "running", "exit_code": None, "health": "busy", "host": "h1"}
    assert mine == [want]
    load = {h["name"]: h for h in got["detail"]["hosts"]}
    assert load["h1"]["workers"] == 1 and load["h1"]["reachable"] is True
    assert "local" in load
    looop(d, "kill", "sp1")
