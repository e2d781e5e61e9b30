"""Each long-lived process of a real home shows its role in `ps -o args` (`looop: supervisor
w1`, `looop: session host <home>`, `looop: pulse <home>`), as postgres does, and keeps the
short name (`ps -o comm`) a subreaper's sweep tells looop's own processes by."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from looop.sessions.state import get_session
from tests.helpers import clean_env, wait_until

pytestmark = pytest.mark.timeout(150)

LOOOP = str(Path(sys.executable).with_name("looop"))


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LOOOP, *args], env=env, capture_output=True, text=True, timeout=60)


def _ps(pid: int, field: str) -> str:
    out = subprocess.run(
        ["ps", "-ww", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True, timeout=10
    )
    return out.stdout.strip()


def _titled(prefix: str) -> list[int]:
    """Every process whose `ps -o args` starts with `prefix`."""
    ps = ["ps", "-ww", "-eo", "pid=,args="]
    out = subprocess.run(ps, capture_output=True, text=True, timeout=10)
    return [
        int(pid)
        for pid, _, args in (ln.strip().partition(" ") for ln in out.stdout.splitlines())
        if args.startswith(prefix)
    ]


def _shows(pid: int, title: str) -> bool:
    """Whether `ps -o args` of pid is `title`: whole, or cut to the room its command line
    had (core/proctitle.py keeps /proc/PID/environ as it was), its role still in it."""
    args = _ps(pid, "args")
    return title.startswith(args) and len(args) >= len(title.split(" /")[0])


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rpartition(b")")[2].split()[1])


def test_every_long_lived_process_of_a_home_shows_its_role(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.json"
    runner = f"{sys.executable} -m looop.demo.runner --script {tmp_path / 'script.json'}"
    (tmp_path / "script.json").write_text(json.dumps([{"action": "noop"}] * 50))
    config.write_text(
        json.dumps(
            {
                "default": "s",
                "runners": {"s": {"tick": runner, "worker": "cat"}},
                "max_daily_usd": 0,
                "interval": 3600,
                "web": {"port": 0},
            }
        )
    )
    # no cgroup: each supervisor has a keeper above it (sessions/supervisor.keep)
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(config), LOOOP_NO_CGROUP="1")
    try:
        up = _cli(env, "up", "--web")
        assert up.returncode == 0, up.stderr
        pulse = int(re.findall(r"pulse started \(pid (\d+)\)", up.stdout)[0])
        web = int(re.findall(r"web started \(pid (\d+)\)", up.stdout)[0])
        r = _cli(env, "worker", "start", "w1", "work", "--command", "sleep 600 # {{prompt_file}}")
        assert r.returncode == 0, r.stderr
        sup = get_session(data, "w1").supervisor_pid
        assert isinstance(sup, int)

        # a worker's supervisor: its role and the host that forked it; `comm` as before
        assert _ps(sup, "args").startswith("looop: supervisor w1 (host @looop-"), _ps(sup, "args")
        assert _ps(sup, "comm") == "looop:w1"
        # its keeper (the subreaper above it)
        keeper = _parent(sup)
        assert _ps(keeper, "args") == "looop: keeper w1" and _ps(keeper, "comm") == "looop-keep"
        # the home's session host, exactly one
        hosts = _titled(f"looop: session host {data}")
        assert len(hosts) == 1, [_ps(p, "args") for p in _titled("looop: ")]
        assert _ps(hosts[0], "comm") == "looop-host"
        # the pulse, under a supervisor of its own (which watches its heartbeat)
        wait_until(lambda: _shows(pulse, f"looop: pulse {data}"), 30, "the pulse's title")
        assert not _ps(pulse, "comm").startswith(("looop:", "looop-"))  # a sweep's to end
        assert _ps(_parent(pulse), "args").startswith("looop: supervisor ")
        # the web server, and the pid checks that tell it from a reused pid still know it
        wait_until(lambda: _shows(web, f"looop: web {data}"), 30, "the web's title")
        link = _cli(env, "web", "--url")
        assert link.returncode == 0 and "token=" in link.stdout, link.stderr
    finally:
        _cli(env, "down")
    assert _titled(f"looop: pulse {data}") == []
    assert _titled(f"looop: web {data}") == []


def test_a_run_under_a_titled_supervisor_still_finds_the_host_that_forked_it(
    tmp_path: Path,
) -> None:
    """A start from inside a worker asks the host that forked its supervisor (spawner), read
    from the supervisor's title now that its argv is gone."""
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "found"
    probe = (
        f"{sys.executable} -c 'from looop.sessions.spawner import enclosing_host as e; "
        f'open("{out}", "w").write(repr(e()))\''
    )
    env = clean_env(tmp_path, data)
    r = _cli(env, "worker", "start", "w1", "work", "--command", f"{probe} # {{{{prompt_file}}}}")
    try:
        assert r.returncode == 0, r.stderr
        wait_until(lambda: out.exists() and out.read_text(), 30, "the probe's answer")
        found = out.read_text()
        assert found.startswith("(True, '\\x00looop-"), found
        assert "-host-" in found
    finally:
        _cli(env, "down")
