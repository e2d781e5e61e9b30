"""What v1.0 shows of each worker and goal: sys-sessions' idle_s, uptime_s, ask_age_s and
pending_tells, the ASK column of `worker list`, and how the prompt shows those ages without
breaking its cached prefix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from looop.core.context import Ctx
from looop.home.lastoutput import write_mark
from looop.human.mailbox import new_ask
from looop.human.tellbox import new_tell
from looop.loop.tick import tick
from looop.sense.probes import probe_sessions, run_probes
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import outside_env, stop_sessions, wait_until, wire

pytestmark = pytest.mark.timeout(90)

AGENT = "bash -c 'echo ready; exec sleep 60' agent {{prompt_file}}"


@pytest.fixture
def wctx(ctx: Ctx) -> Ctx:
    c = replace(ctx, clock=FixedClock(t=time.time()))
    wire(c, [], worker=AGENT)
    return c


def _stop_all(c: Ctx) -> None:
    stop_sessions(c.paths.data)


def _detail(c: Ctx) -> dict[str, dict[str, object]]:
    run_probes(c, {"sys-sessions": lambda ctx: probe_sessions(ctx, ctx.knobs())})
    snap = json.loads((c.paths.snapshots / "sys-sessions.json").read_text())
    workers: dict[str, dict[str, object]] = snap["detail"]["workers"]
    return workers


def test_worker_ages_tells_and_asks_reach_the_reading_ls_and_the_prompt(wctx: Ctx) -> None:
    c = wctx
    began = time.monotonic()
    try:
        start_worker(c, c.knobs(), StartRequest("w1", "Wait."))
        start_worker(c, c.knobs(), StartRequest("w2", "Wait."))
        out = c.paths.data / "sessions" / "w1" / "output.log"
        mark = out.parent / "log" / "output.last"  # home/lastoutput.py
        wait_until(lambda: out.exists() and out.stat().st_size > 0, 20)
        # its supervisor's last mark is a second after the output at most: then it is final
        wait_until(lambda: mark.exists() and time.time() - mark.stat().st_mtime > 1.5, 20)
        now = c.clock.now()
        os.utime(out, (now - 120, now - 120))  # w1 last wrote two minutes ago …
        write_mark(str(mark.parent), c.clock.monotonic() - 120, c.clock.boottime() - 120)
        new_ask(c.paths.asks, c.paths.answers, "w1", "Merge?", None, [], now - 300)
        new_tell(c.paths.tells, "w2", "also check CI", now)
        new_tell(c.paths.tells, "w2", "and the docs", now)
        c.clock.advance(30)  # type: ignore[attr-defined]

        got = _detail(c)
        w1, w2 = got["w1"], got["w2"]
        assert w1["idle_s"] == 150 and w1["ask_age_s"] == 330 and w1["pending_tells"] == 0
        # started (by the real clock) just after the frozen clock's start: up about 30 s
        assert isinstance(w1["uptime_s"], int) and 0 <= w1["uptime_s"] <= 31
        assert w2["ask_age_s"] is None and w2["pending_tells"] == 2
        real = time.monotonic() - began  # quiet is judged on the monotonic clock: real time too
        assert w2["idle_s"] is None or 0 <= int(str(w2["idle_s"])) <= 31 + real

        # `looop ls`: the ASK column says how long w1's question has waited
        env = outside_env()
        env.update(LOOOP_DATA_DIR=str(c.paths.data))
        table = subprocess.run(
            [sys.executable, "-m", "looop", "ls"], env=env, capture_output=True, text=True
        ).stdout
        head, *rows = table.splitlines()
        cols = ["ID", "HEALTH", "STATE", "IDLE", "UP", "ASK", "VERIFY"]
        assert head.split() in (cols, [*cols, "CONTAIN"])  # CONTAIN: what ends a worker whole
        row = next(r.split() for r in rows if r.startswith("w1"))
        assert row[1] == "waiting-ask" and row[5].endswith("m")  # ~5m (the real clock)
        listed = json.loads(
            subprocess.run(
                [sys.executable, "-m", "looop", "ls", "--json"],
                env=env,
                capture_output=True,
                text=True,
            ).stdout
        )
        by_id = {r["id"]: r for r in listed}
        assert by_id["w1"]["ask_age_s"] >= 300 and by_id["w2"]["pending_tells"] == 2

        # the prompt: readings without ages (cached prefix), the ages coarsely, late
        first = tick(c, dry_run=True).prompt_text or ""
        c.clock.advance(60)  # type: ignore[attr-defined]
        second = tick(c, dry_run=True).prompt_text or ""
        readings = first[first.index("=== SENSOR READINGS") : first.index("=== RECENT JOURNAL")]
        assert "idle_s" not in readings and "pending_tells" in readings
        late = "=== READINGS THAT MOVE"
        assert first[: first.index(late)] == second[: second.index(late)]
        w1 = second[second.index(late) :].split("--- sys-sessions.json worker w1\n")[1]
        age = json.loads(w1.splitlines()[0])["age"]
        assert age["ask_age"] == "1-10m" and age["idle"] == "1-10m"  # 390 s and 210 s
    finally:
        _stop_all(c)
