"""The contract from a pod, for real: a `looop web` process at home, and a process playing the
pod (the `$LOOOP_BIN` file `looop pod run` writes, with the pod's LOOOP_HOME_URL,
LOOOP_HOME_TOKEN and LOOOP_SESSION_ID). Its ask blocks until a human answers at home, its
claim meets the home's leases, its cost lands in the home's ledger; the home's web server
killed mid-ask and started again asks the question once and answers it once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.home.paths import Paths
from looop.remote import hosts, tokens
from looop.remote.kube import podrun
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError
from tests.clocks import FixedClock
from tests.helpers import clean_env

LOOOP = str(Path(sys.executable).with_name("looop"))
WID = "pw1"


class Home:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "home"
        self.env = clean_env(
            tmp, self.data, LOOOP_CONFIG=str(tmp / "config.json"), LOOOP_ASK_POLL_MS="50"
        )
        self.port = _free_port()
        self.web: subprocess.Popen[str] | None = None
        self.scheme = "http"
        self.tls: list[str] = []
        hosts.write_record(self.data, WID, "k8s-lab", over=False)  # as the engines do
        self.token = tokens.mint(Paths.at(self.data), WID)
        self.shim = podrun.contract_shim(tmp / "pod", LOOOP)
        self.pod_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp / "pod"),
            "LOOOP_DATA_DIR": str(tmp / "pod"),  # the pod's own data dir, not the home's
            "LOOOP_SESSION_ID": WID,
            "LOOOP_HOME_TOKEN": self.token,
        }

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.web = subprocess.Popen(
            [LOOOP, "web", "--port", str(self.port), *self.tls],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.web.stdout is not None
        line = self.web.stdout.readline()
        assert line.startswith(self.url), line + self.web.stderr.read() if self.web.stderr else ""

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, sig)
            self.web.communicate(timeout=20)
        self.web = None

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args], env=self.env, capture_output=True, text=True, timeout=30
        )

    def asks(self) -> list[dict[str, Any]]:
        r = self.looop("asks", "--json")
        assert r.returncode == 0, r.stderr
        rows: list[dict[str, Any]] = json.loads(r.stdout)
        return rows

    def pod(self, *argv: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.shim), *argv],
            env={**self.pod_env, "LOOOP_HOME_URL": self.url, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def pod_run(self, *argv: str, **env: str) -> tuple[int, str, str]:
        p = self.pod(*argv, **env)
        out, err = p.communicate(timeout=60)
        return p.returncode, out, err


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _until(cond: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    try:
        yield h
    finally:
        h.stop()
        # a run still waiting at home (a failed test's ask) ends with the test
        for pid in tmp_path.glob("home/.contract/*/*/pid"):
            try:
                os.killpg(int(pid.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass


@pytest.mark.timeout(120)
def test_a_pod_speaks_its_contract_to_a_real_home(home: Home) -> None:
    home.start()
    # ask: blocks until a human answers at home, then prints only the answer
    asker = home.pod("ask", "--prompt", "which colour?", "--options", "red,blue")
    rows = _until(home.asks, "the pod's ask at home")
    assert [(r["worker"], r["prompt"]) for r in rows] == [(WID, "which colour?")]
    assert asker.poll() is None  # still waiting
    assert home.looop("answer", rows[0]["id"], "blue").returncode == 0
    out, err = asker.communicate(timeout=30)
    assert (asker.returncode, out) == (0, "blue\n"), err
    # claim: the home's own lease namespace, both ways
    data = home.data
    spawn(data, "hw1", ["cat"], cwd=data, env=dict(home.env))
    try:
        assert home.looop("claim", "lease-1", "--session", "hw1").returncode == 0
        code, _, err = home.pod_run("claim", "lease-1")
        assert code == 1 and "held by live session 'hw1'" in err
        code, out, _ = home.pod_run("claim", "lease-2")
        assert (code, out) == (0, "claimed lease-2\n")
        assert home.looop("claim", "lease-2", "--session", "hw1").returncode == 1
    finally:
        try:
            kill(data, "hw1")
        except SessionError:
            pass
        wait(data, "hw1", 30, FixedClock())
    # cost report: lands in the home's ledger, counted once
    code, out, _ = home.pod_run("cost", "report", "session", WID, "claude", "0.25")
    assert (code, out) == (0, "recorded $0.25 for session pw1 (claude)\n")
    spend = json.loads(home.looop("cost", "--by", "worker", "--json").stdout)
    assert [(g["key"], g["usd"]) for g in spend["groups"]] == [(WID, 0.25)]
    # tell at home, told in the pod
    assert home.looop("tell", WID, "use the blue one").returncode == 0
    assert home.pod_run("told") == (0, "use the blue one\n", "")
    # a worker's token is for its contract only
    code, _, err = home.pod_run("told", LOOOP_HOME_TOKEN=tokens.mint(Paths.at(data), "pw2"))
    assert code == 3 and err.count("\n") == 1 and "refused this worker" in err


@pytest.mark.timeout(180)
def test_the_home_restarted_mid_ask_asks_once_and_answers_once(home: Home) -> None:
    home.start()
    asker = home.pod("ask", "--prompt", "ship it?")
    first = _until(home.asks, "the pod's ask at home")
    assert len(first) == 1
    home.stop(signal.SIGKILL)  # the home's web server dies mid-ask, no goodbye
    seen = [len(home.asks()) for _ in range(5)]
    home.start()
    # the pod noticed the cut and keeps retrying; the question stays one question
    for _ in range(10):
        seen.append(len(home.asks()))
        time.sleep(0.2)
    assert asker.poll() is None
    assert set(seen) == {1}, seen
    assert [r["id"] for r in home.asks()] == [first[0]["id"]]
    assert home.looop("answer", first[0]["id"], "yes").returncode == 0
    out, err = asker.communicate(timeout=60)
    assert (asker.returncode, out) == (0, "yes\n"), err
    assert "out of reach" in err  # it did go through the cut
    assert home.asks() == []
    asked = sorted(p.name for p in (home.data / "asks").rglob(f"{WID}-*.json"))
    assert asked == [f"{WID}-1.json"]
    # the run at home outlived the server that started it: it never ran twice
    (entry,) = (home.data / ".contract" / WID).iterdir()
    assert json.loads((entry / "req.json").read_text())["starts"] == 1


@pytest.mark.timeout(120)
def test_the_pod_verifies_the_homes_certificate(home: Home, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=looop-home", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    home.scheme = "https"
    home.tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    home.start()
    assert home.looop("tell", WID, "over TLS").returncode == 0
    code, _, err = home.pod_run("told")  # the system's CAs know no such home
    assert code == 3 and "certificate does not verify" in err and err.count("\n") == 1
    assert home.pod_run("told", LOOOP_HOME_CA=str(cert)) == (0, "over TLS\n", "")
