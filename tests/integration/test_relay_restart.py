"""The SSH relay's home end without SSH: a real `looop host relay` process on a unix socket and
a remote worker's `looop` shim (remote/shim.py) talking to it, as the SSH master's
forward would carry it. Its refusals keep their words; an ask in flight survives the relay
killed and started again, asked once and answered once. (tests/hosts/ runs the same over
real SSH.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.remote import hosts
from looop.remote.ssh import link
from tests.helpers import clean_env

LOOOP = str(Path(sys.executable).with_name("looop"))
SHIM = "import sys\nfrom looop.remote.shim import main\nraise SystemExit(main(sys.argv[1:]))"


class Relay:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "home"
        self.env = clean_env(tmp, self.data, LOOOP_ASK_POLL_MS="50")
        self.run_dir = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp"))  # a short socket path
        self.sock = str(self.run_dir / "relay.sock")
        hosts.add(self.data, "h1", "ssh://u@h1.example", 0)
        hosts.write_record(self.data, "rw1", "h1", over=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [LOOOP, "host", "relay", "h1", self.sock],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _until(lambda: os.path.exists(self.sock), "the relay's socket")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)
        self.proc = None

    def worker(self, *argv: str, wid: str = "rw1") -> subprocess.Popen[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LOOOP_RELAY_SOCK": self.sock,
            "LOOOP_SESSION_ID": wid,
            "LOOOP_REAL_BIN": "/bin/false",
        }
        return subprocess.Popen(
            [sys.executable, "-c", SHIM, *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def asks(self) -> list[dict[str, Any]]:
        r = subprocess.run(
            [LOOOP, "asks", "--json"], env=self.env, capture_output=True, text=True, timeout=30
        )
        rows: list[dict[str, Any]] = json.loads(r.stdout)
        return rows


def _until(cond: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    r = Relay(tmp_path)
    try:
        yield r
    finally:
        r.kill()
        for pid in r.data.glob(".contract/*/*/pid"):
            try:
                os.killpg(int(pid.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(r.run_dir, ignore_errors=True)


@pytest.mark.timeout(90)
def test_the_relay_answers_its_hosts_workers_and_refuses_others(relay: Relay) -> None:
    relay.start()
    w = relay.worker("claim", "shared-lock")
    assert w.communicate(timeout=30) == ("claimed shared-lock\n", "")
    # a worker speaks for itself alone, over the relay as through a box's door
    w = relay.worker("claim", "shared-lock", "--session", "other-w")
    out, err = w.communicate(timeout=30)
    assert w.returncode == 2 and "may claim only for itself" in err, err
    stranger = relay.worker("told", wid="rw2")
    out, err = stranger.communicate(timeout=30)
    assert stranger.returncode == 2 and out == ""
    assert err == "looop: 'rw2' is no worker the home started on host h1\n"


@pytest.mark.timeout(120)
def test_an_ask_survives_the_relay_killed_and_started_again(relay: Relay) -> None:
    relay.start()
    w = relay.worker("ask", "--prompt", "which colour?")
    first = _until(relay.asks, "the ask at home")
    relay.kill()
    assert [len(relay.asks()) for _ in range(3)] == [1, 1, 1]
    relay.start()
    assert w.poll() is None and len(relay.asks()) == 1
    answered = subprocess.run(
        [LOOOP, "answer", first[0]["id"], "blue"], env=relay.env, capture_output=True, timeout=30
    )
    assert answered.returncode == 0
    out, err = w.communicate(timeout=30)
    assert (w.returncode, out) == (0, "blue\n"), err
    assert "out of reach" in err
    assert sorted(p.name for p in (relay.data / "asks").rglob("rw1-*.json")) == ["rw1-1.json"]


@pytest.mark.timeout(120)
def test_down_stops_the_homes_relay(relay: Relay) -> None:
    relay.start()
    assert relay.proc is not None
    down = subprocess.run([LOOOP, "down"], env=relay.env, capture_output=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert relay.proc.wait(10) == 0  # gone with `down`, not when the host is removed
    assert not os.path.exists(relay.sock)
    relay.proc = None
    relay.start()  # the next one serves again
    assert relay.worker("claim", "x").communicate(timeout=30) == ("claimed x\n", "")


def test_a_links_sockets_live_in_the_homes_runtime_dir(tmp_path: Path) -> None:
    data = tmp_path / "home"
    hosts.add(data, "h1", "ssh://u@h1.example", 0)
    base = str(tmp_path / "run")
    lk = link.Link(data, hosts.get(data, "h1"), {"LOOOP_RUNTIME_DIR": base}, LOOOP)
    mine = os.path.join(base, f"looop-{os.geteuid()}") + "/"
    assert lk.relay_socket.startswith(mine) and lk.control.startswith(mine)
