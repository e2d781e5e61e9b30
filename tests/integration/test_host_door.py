"""An unsandboxed worker's contract verbs go through its home's door, served by the session
host (sessions/hostdoor.py): the host writes, knowing the worker by its process's parents,
never by what the request says; a retried key runs once; with the host gone a verb says so
in one line and writes nothing itself.

The worker is a real session forked by the real host; its verbs run with LOOOP_DATA_DIR
pointing nowhere, so only the door (which uses its own home) can have written what the home
holds afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.remote.boxdoor import HostDoor
from looop.remote.callhome import Refused
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from tests.helpers import stop_sessions, wait_until

pytestmark = pytest.mark.timeout(90)

# run inside the worker: each step's (exit code, stdout, stderr) into a JSON file, in phases
WORKER = r"""
import json, os, subprocess, sys, time
from looop.remote.boxdoor import HostDoor
out, looop = sys.argv[1], [sys.executable, "-m", "looop"]
env = {**os.environ, "LOOOP_DATA_DIR": "/nonexistent/looop-data"}  # the door needs none

def run(*argv, **extra):
    r = subprocess.run([*looop, *argv], env={**env, **extra}, capture_output=True, text=True,
                       timeout=60)
    return [r.returncode, r.stdout, r.stderr]

def knock(key, *argv):
    body = json.dumps({"v": 1, "key": key, "worker": "w1", "argv": list(argv)}).encode()
    got = HostDoor(os.environ["LOOOP_DOOR"]).post(body)
    return got if isinstance(got, dict) else [type(got).__name__, getattr(got, "line", "")]

steps = {
    "door": os.environ.get("LOOOP_DOOR", ""),
    "claim": run("claim", "lease-a"),
    "tell": run("tell", "w2", "hello", "w2"),
    "told": run("told"),
    "flag": run("flag", "w1", "needs", "a", "key"),
    "cost": run("cost", "report", "session", "w1", "claude", "0.25"),
    "claim_for_w2": run("claim", "lease-b", "--session", "w2"),
    "as_w2": run("claim", "lease-c", LOOOP_SESSION_ID="w2"),
    "again1": knock("retried-key-1", "cost", "report", "session", "w1", "claude", "0.5"),
    "again2": knock("retried-key-1", "cost", "report", "session", "w1", "claude", "0.5"),
}
json.dump(steps, open(out + ".tmp", "w")); os.rename(out + ".tmp", out)
while not os.path.exists(out + ".go"):
    time.sleep(0.05)
steps = {"claim": run("claim", "lease-d")}
json.dump(steps, open(out + ".2.tmp", "w")); os.rename(out + ".2.tmp", out + ".2")
time.sleep(60)
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
        "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"],  # the run's own hosts
    }
    yield data, env
    stop_sessions(data)


# "host": the supervisor forked by the session host, which serves the door; "direct": started
# as its own interpreter (no host), which serves its one worker's door itself (hostdoor.SoleDoor)
HOW = ("host", "direct")


def _start(data: Path, wid: str, env: dict[str, str], *cmd: str, how: str = "host") -> None:
    idle = 0 if how == "direct" else 60
    spawn(data, wid, list(cmd), cwd=data, env={**env, "LOOOP_SESSION_ID": wid}, host_idle_s=idle)


def _read(path: Path) -> dict[str, object]:
    wait_until(path.exists, timeout=60, what=f"{path.name} written by the worker")
    got: dict[str, object] = json.loads(path.read_text())
    return got


@pytest.mark.parametrize("how", HOW)
def test_a_workers_verbs_are_written_by_the_host_as_that_worker_only(
    home: tuple[Path, dict[str, str]], tmp_path: Path, how: str
) -> None:
    data, env = home
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "steps.json"
    _start(data, "w2", env, "sleep", "60", how=how)
    _start(data, "w1", env, sys.executable, str(script), str(out), how=how)
    steps = _read(out)
    assert str(steps["door"]).startswith("@looop-")
    supervisor = get_session(data, "w1").supervisor_pid
    assert (_door_holder(str(steps["door"])) == supervisor) == (how == "direct")
    assert steps["claim"] == [0, "claimed lease-a\n", ""]
    assert steps["tell"][0] == 0 and steps["tell"][1].startswith("queued ")  # type: ignore[index]
    assert steps["told"] == [0, "", ""]
    assert steps["flag"] == [0, "⚑ w1: needs a key\n", ""]
    assert steps["cost"][0] == 0  # type: ignore[index]
    # the home holds what the door wrote (the worker's own data dir was nowhere)
    assert json.loads((data / "claims" / "lease-a.json").read_text())["session"] == "w1"
    assert (data / "sessions" / "w1" / "note").read_text() == "needs a key"
    assert len(list((data / "tells").rglob("*.json"))) == 1
    # another worker's name, in an argument or as the speaker: refused in one line, nothing
    # written
    code, _, err = steps["claim_for_w2"]  # type: ignore[misc]
    assert code == 3 and "only for itself" in err and err.count("\n") == 1
    code, _, err = steps["as_w2"]  # type: ignore[misc]
    assert code == 3 and "not one of worker w2's" in err and err.count("\n") == 1
    assert not (data / "claims" / "lease-b.json").exists()
    assert not (data / "claims" / "lease-c.json").exists()
    # a retried key: the stored answer, the cost counted once
    assert steps["again1"] == steps["again2"]
    rows = [json.loads(line) for line in (data / "cost.jsonl").read_text().splitlines()]
    assert sorted(r["cost_usd"] for r in rows) == [0.25, 0.5]


@pytest.mark.parametrize("how", HOW)
def test_no_one_outside_the_worker_speaks_for_it(
    home: tuple[Path, dict[str, str]], tmp_path: Path, how: str
) -> None:
    data, env = home
    if how == "direct":  # w1's own supervisor's door: w1 says it
        door = _door_of(data, env, tmp_path, "w1", how)
    else:  # the host's: any worker it forked says it
        _start(data, "w1", env, "sleep", "60")
        door = _door_of(data, env, tmp_path, "w9", how)
    body = json.dumps({"v": 1, "key": "k" * 12, "worker": "w1", "argv": ["told"]}).encode()
    got = HostDoor(door).post(body)  # this test's process is under no worker's supervisor
    assert isinstance(got, Refused) and got.code == 3 and "not one of worker w1's" in got.line
    # what is not one request is refused in one line, and the door still answers after it
    for junk in (b"\xff\xfe", b"[" * 100_000, b"x" * (600 << 10), b'{"v": 1}'):
        said = _exchange(door, junk + b"\n")
        status, _, line = said.partition(b" ")
        assert status in (b"400", b"403", b"413") and said.count(b"\n") == 1, said[:200]
        assert json.loads(line)["error"]
    again = HostDoor(door).post(body)
    assert isinstance(again, Refused) and "not one of worker w1's" in again.line


def _exchange(door: str, raw: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect("\0" + door[1:])
        with contextlib.suppress(OSError):  # the door may close before reading it all
            s.sendall(raw)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got


def test_with_the_host_gone_a_verb_says_so_and_writes_nothing(
    home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """(A direct supervisor's door goes only with it, and its worker with them.)"""
    data, env = home
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "steps.json"
    _start(data, "w1", env, sys.executable, str(script), str(out))
    door = str(_read(out)["door"])
    os.kill(_door_holder(door), signal.SIGKILL)  # this test's host: its home is ours
    Path(f"{out}.go").write_text("")
    code, _, err = _read(Path(f"{out}.2"))["claim"]  # type: ignore[misc]
    assert code == 3 and "does not answer" in err and err.count("\n") == 1
    assert not (data / "claims" / "lease-d.json").exists()


def _door_of(data: Path, env: dict[str, str], tmp_path: Path, wid: str, how: str) -> str:
    """The door worker `wid`, started now, is given (LOOOP_DOOR), said by it."""
    said = tmp_path / "door"
    line = f'printf %s "$LOOOP_DOOR" > {said}.tmp; mv {said}.tmp {said}; sleep 60'
    _start(data, wid, env, "sh", "-c", line, how=how)
    wait_until(said.exists, timeout=30, what="the worker's door")
    return said.read_text()


def _door_holder(door: str) -> int:
    from looop.home.peers import holder

    pid = holder("\0" + door[1:])
    assert pid is not None
    return pid


@pytest.mark.parametrize("how", HOW)
def test_a_workers_ask_waits_at_the_door_for_the_humans_answer(
    home: tuple[Path, dict[str, str]], tmp_path: Path, how: str
) -> None:
    """`ask` is a run of the home's `looop` the door holds the call on (past its tick)."""
    from looop.human.mailbox import answer

    data, env = home
    got = tmp_path / "got"
    looop = f"{sys.executable} -m looop"
    line = (
        f"LOOOP_DATA_DIR=/nonexistent/looop-data {looop} ask w1 --prompt 'ship?' > {got}.tmp "
        f'2>&1; echo "rc=$?" >> {got}.tmp; mv {got}.tmp {got}; sleep 60'
    )
    _start(data, "w1", env, "sh", "-c", line, how=how)
    asked = data / "asks" / "w1-1.json"
    wait_until(lambda: asked.exists() or got.exists(), timeout=60, what="the ask on file")
    assert asked.exists(), (got.read_text(), _entries(data))
    answer(data / "asks", data / "answers", "w1-1", "yes, ship", 1.0)
    wait_until(got.exists, timeout=60, what="the ask's answer printed by the worker")
    text = got.read_text()
    assert "yes, ship\n" in text and text.endswith("rc=0\n"), text


def _entries(data: Path) -> dict[str, str]:
    """What the door's runs left (said when a test fails)."""
    return {
        str(p.relative_to(data)): p.read_text(errors="replace")[:500]
        for p in (data / ".contract").rglob("*")
        if p.is_file()
    }


def test_down_ends_an_ask_still_waiting_at_the_door(home: tuple[Path, dict[str, str]]) -> None:
    """An `ask` is a run in a session of its own (a door's restart never cuts it): `looop
    down` ends it with the fleet, or it would wait on a human for ever after."""
    from tests.procwatch import by_argv

    data, env = home
    looop = f"{sys.executable} -m looop"
    _start(data, "w1", env, "sh", "-c", f"{looop} ask w1 --prompt 'ship?'; sleep 60")
    wait_until((data / "asks" / "w1-1.json").exists, timeout=60, what="the ask on file")
    entries = str(data / ".contract")
    wait_until(lambda: bool(by_argv(entries)), timeout=30, what="the ask's run")
    down = [sys.executable, "-m", "looop", "down"]
    done = subprocess.run(down, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: not by_argv(entries), timeout=30, what="the ask's run to end")
