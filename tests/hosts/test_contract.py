"""The contract from a remote worker lands in the home data dir: ask blocks until answered at
home, claim is the home's lease namespace, tell/told and cost reports are the home's."""

from __future__ import annotations

import json
import time

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop

WORKER = (
    "bash -c 'looop claim shared-lock && echo CLAIMED; "
    "looop claim shared-lock --session other-w; echo SECOND=$?; "
    'A=$(looop ask --prompt "which colour?" --options red,blue); echo "ANSWER=$A"; '
    "looop cost report session $LOOOP_SESSION_ID claude 0.25 && echo COSTED; "
    "looop told; echo TOLD-DONE; cat' # {{prompt_file}}"
)


def _pending(data: object, timeout: float) -> list[dict[str, object]]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = looop(data, "asks", "--json")  # type: ignore[arg-type]
        rows = json.loads(out.stdout or "[]")
        if rows:
            return rows  # type: ignore[no-any-return]
        time.sleep(0.2)
    return []


@pytest.mark.timeout(120)
def test_contract_verbs_from_a_remote_worker_reach_home(home: Home) -> None:
    d = home.data
    start = looop(d, "worker", "start", "cw1", "x", "--host", "h1", "--command", WORKER)
    assert start.returncode == 0, start.stderr
    c = looop(d, "expect", "cw1", "CLAIMED", "--timeout", "30s")
    assert c.returncode == 0, looop(d, "log", "cw1").stdout + str(list((d / "hosts").iterdir()))
    # the lease is the home's: held by the remote worker, refused to another holder
    assert (d / "claims").is_dir()
    assert looop(d, "claim", "shared-lock", "--session", "home-w").returncode == 1
    # and the worker speaks only for itself: a claim for another holder is refused at home
    assert looop(d, "expect", "cw1", "SECOND=2", "--timeout", "20s").returncode == 0
    told = looop(d, "tell", "cw1", "use the blue one")
    assert told.returncode == 0, told.stderr
    asks = _pending(d, 30)
    assert len(asks) == 1 and asks[0]["worker"] == "cw1", asks
    # still blocked: no answer yet
    log = looop(d, "log", "cw1").stdout
    assert "ANSWER=" not in log
    ans = looop(d, "answer", str(asks[0]["id"]), "blue")
    assert ans.returncode == 0, ans.stderr
    got = looop(d, "expect", "cw1", "ANSWER=blue", "--timeout", "30s")
    assert got.returncode == 0, looop(d, "log", "cw1").stdout
    assert looop(d, "expect", "cw1", "COSTED", "--timeout", "20s").returncode == 0
    ledger = (d / "cost.jsonl").read_text()
    assert '"cw1"' in ledger and "0.25" in ledger
    told = looop(d, "expect", "cw1", "use the blue one", "--timeout", "20s")
    assert told.returncode == 0, looop(d, "log", "cw1").stdout
    looop(d, "kill", "cw1")


@pytest.mark.timeout(60)
def test_the_relay_refuses_a_worker_it_did_not_start_there(home: Home) -> None:
    """A process on the host naming a worker of another host (or none) gets one line."""
    import socket

    from looop.remote.hosts import get
    from looop.remote.ssh.link import link_at

    lk = link_at(home.data, get(home.data, "h1"))
    looop(home.data, "host", "check", "h1")  # the master and the relay are up
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(lk.relay_socket)
    s.sendall(json.dumps({"v": 1, "key": "k" * 12, "worker": "rw1", "argv": ["told"]}).encode())
    s.shutdown(socket.SHUT_WR)
    out = json.loads(s.recv(65536).decode())
    assert out["code"] == 2 and "no worker the home started on host h1" in out["err"]
