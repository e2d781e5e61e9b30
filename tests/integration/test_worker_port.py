"""$LOOOP_PORT (real sessions, real binds): each worker here gets a port of its own, leased
for its life — never one another live worker holds nor one another program has bound — and
a start with none free is refused in one line; a worker that ended frees its port."""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import replace

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.sessions.client import expect, kill, wait
from looop.sessions.logs import read_log
from looop.workers.errors import WorkerError
from looop.workers.launch import start_worker
from looop.workers.resume import resume_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import wait_until, wire

pytestmark = pytest.mark.timeout(90)

# the worker serves on its port, says which, and stays
SERVE = f"""{sys.executable} -c '
import os, socket, time
s = socket.socket()
s.bind(("127.0.0.1", int(os.environ["LOOOP_PORT"])))
s.listen()
os.makedirs(os.environ["LOOOP_REPORTS_DIR"], exist_ok=True)
with open(os.path.join(os.environ["LOOOP_REPORTS_DIR"], os.environ["LOOOP_SESSION_ID"]), "w") as f:
    f.write(os.environ["LOOOP_PORT"])
time.sleep(600)
' # {{{{prompt_file}}}}"""


def free_run(n: int) -> int:
    """The first of n ports in a row this machine lets be bound now: below the kernel's
    ephemeral ports (any test's outgoing connection may take one of those at any moment),
    from an offset of this process's own, so tests running side by side in other xdist
    workers look at other runs (all began at one port, and took the same)."""
    start = 12000 + (os.getpid() % 500) * 17  # below the default leases (24000-24999) too
    for base in [*range(start, 20500, 17), *range(12000, start, 17)]:
        if all(_bindable(p) for p in range(base, base + n)):
            return base
    raise AssertionError("no run of free ports")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


@pytest.fixture
def pctx(ctx: Ctx) -> Ctx:
    return replace(ctx, clock=FixedClock(t=time.time()))


def serving(c: Ctx, wid: str) -> int:
    start_worker(c, c.knobs(), StartRequest(wid, "work", command=SERVE))
    said = c.paths.reports / wid
    wait_until(lambda: said.exists() and said.read_text(), 20, f"{wid} serving")
    return int(said.read_text())


def test_each_live_worker_gets_its_own_bindable_port_and_none_free_is_refused(
    pctx: Ctx,
) -> None:
    base = free_run(3)
    wire(pctx, [], worker_port_base=base, worker_ports=3)
    with socket.socket() as taken:  # another program has the first port
        taken.bind(("", base))
        taken.listen()
        a = serving(pctx, "a")
        b = serving(pctx, "b")
        # each bound its own (the worker's bind succeeded), the other program's skipped
        assert {a, b} == {base + 1, base + 2}
        with pytest.raises(WorkerError) as got:
            start_worker(pctx, pctx.knobs(), StartRequest("c", "work", command=SERVE))
        msg = str(got.value)
        assert "\n" not in msg and "no free port" in msg and f"{base}-{base + 2}" in msg
        # a worker that ended holds nothing: its port goes to the next start
        kill(pctx.paths.data, "a")
        wait(pctx.paths.data, "a", 20, pctx.clock)
        assert serving(pctx, "c") == a
    for wid in ("b", "c"):
        kill(pctx.paths.data, wid)
        wait(pctx.paths.data, wid, 20, pctx.clock)


def test_a_new_start_of_an_id_takes_its_last_port_again(pctx: Ctx) -> None:
    base = free_run(3)
    wire(pctx, [], worker_port_base=base, worker_ports=3)
    first = serving(pctx, "w")
    kill(pctx.paths.data, "w")
    wait(pctx.paths.data, "w", 20, pctx.clock)
    (pctx.paths.reports / "w").unlink()
    assert serving(pctx, "w") == first
    kill(pctx.paths.data, "w")
    wait(pctx.paths.data, "w", 20, pctx.clock)


def test_a_resumed_worker_keeps_its_port_and_no_other_worker_gets_it(pctx: Ctx) -> None:
    base = free_run(3)
    store.write_json(
        pctx.paths.config,
        {
            "default": "fake",
            "worker_port_base": base,
            "worker_ports": 3,
            "runners": {
                "fake": {
                    "tick": "true",
                    "worker": "echo START $LOOOP_PORT {{session_id}}; exec sleep 600 "
                    "# {{prompt_file}}",
                    "resume": "echo RESUMED $LOOOP_PORT {{session_id}}; exec sleep 600",
                }
            },
        },
    )
    start_worker(pctx, pctx.knobs(), StartRequest("r1", "go", resume=True))
    code, _, _ = expect(pctx.paths.data, "r1", "START ", timeout_s=10, clock=pctx.clock)
    assert code == 0
    first = read_log(pctx.paths.data, "r1", 0, False)[0].split("START ")[1].split()[0]
    resume_worker(pctx, pctx.knobs(), "r1")  # live: ended, then started on its conversation
    code, _, _ = expect(pctx.paths.data, "r1", "RESUMED ", timeout_s=10, clock=pctx.clock)
    assert code == 0
    again = read_log(pctx.paths.data, "r1", 0, False)[0].split("RESUMED ")[1].split()[0]
    assert again == first and int(first) in range(base, base + 3)
    start_worker(pctx, pctx.knobs(), StartRequest("r2", "go"))
    code, _, _ = expect(pctx.paths.data, "r2", "START ", timeout_s=10, clock=pctx.clock)
    assert code == 0
    other = read_log(pctx.paths.data, "r2", 0, False)[0].split("START ")[1].split()[0]
    assert other != first
    for wid in ("r1", "r2"):
        kill(pctx.paths.data, wid)
        wait(pctx.paths.data, wid, 20, pctx.clock)
