"""Workers end to end: launch contract, fleet rules, decisions that drive them, health, verify."""

from __future__ import annotations

import os
import shlex
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.loop.tick import tick
from looop.sense.probes import probe_sessions
from looop.sessions.client import expect, kill, wait
from looop.sessions.state import get_session, list_sessions
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import events, stop_sessions, wait_until, wire, with_env

pytestmark = pytest.mark.timeout(90)

# A stand-in agent: shows its brief's first line and its id, then echoes what it is told.
ECHO_AGENT = (
    'bash -c \'head -n 1 "$1"; echo "id=$LOOOP_SESSION_ID bin=${LOOOP_BIN:+set}"; '
    'while IFS= read -r line; do echo "got:$line"; done\' agent {{prompt_file}}'
)


@pytest.fixture
def wctx(tmp_path: Path, ctx: Ctx) -> Ctx:
    """A data dir whose path has a space and a quote, wired to the echo agent."""
    data = tmp_path / "my data's dir"
    data.mkdir()
    from looop.home.paths import Paths

    c = replace(ctx, paths=Paths.at(data), clock=FixedClock(t=time.time()))
    wire(c, [], worker=ECHO_AGENT)
    return c


def _stop_all(c: Ctx) -> None:
    stop_sessions(c.paths.data)


def test_start_injects_contract_quotes_paths_and_exports_id(wctx: Ctx) -> None:
    try:
        st = start_worker(wctx, wctx.knobs(), StartRequest("triage", "Sort the inbox."))
        prompt = Path(st.prompt_file).read_text()
        assert prompt.startswith("# ⚑ WORKER CONTRACT") and prompt.rstrip().endswith(
            "Sort the inbox."
        )
        assert "triage" in prompt and '"$LOOOP_BIN" ask triage' in prompt
        code, _, _ = expect(
            wctx.paths.data, "triage", r"id=triage bin=set", timeout_s=20, clock=wctx.clock
        )
        assert code == 0
        code, _, _ = expect(
            wctx.paths.data, "triage", r"WORKER CONTRACT", timeout_s=20, clock=wctx.clock
        )
        assert code == 0
    finally:
        _stop_all(wctx)


def test_duplicate_live_id_refused_dead_id_reused(wctx: Ctx) -> None:
    k = wctx.knobs()
    try:
        start_worker(wctx, k, StartRequest("w1", "one"))
        with pytest.raises(LooopError, match="already running"):
            start_worker(wctx, k, StartRequest("w1", "two"))
        kill(wctx.paths.data, "w1")
        wctx.paths.tells.mkdir(parents=True, exist_ok=True)
        (wctx.paths.tells / "w1-1.json").write_text('{"msg":"stale"}')
        start_worker(wctx, k, StartRequest("w1", "three"))  # the corpse is reaped, the id reused
        assert not (wctx.paths.tells / "w1-1.json").exists()
        assert "three" in (wctx.paths.prompts / "w1.md").read_text()
    finally:
        _stop_all(wctx)


def test_fleet_cap_and_bad_ids(wctx: Ctx) -> None:
    c = with_env(wctx, LOOOP_MAX_WORKERS="1")
    try:
        start_worker(c, c.knobs(), StartRequest("a", "x"))
        with pytest.raises(LooopError, match="fleet cap"):
            start_worker(c, c.knobs(), StartRequest("b", "x"))
        for bad in ("pulse", "../x", ".hidden", "a b", "x" * 65):
            with pytest.raises(LooopError):
                start_worker(c, c.knobs(), StartRequest(bad, "x"))
    finally:
        _stop_all(c)


def test_command_that_cannot_run_reports_and_does_not_hang(wctx: Ctx) -> None:
    st = start_worker(
        wctx,
        wctx.knobs(),
        StartRequest("broken", "x", command="no-such-agent-binary {{prompt_file}}"),
    )
    assert wait(wctx.paths.data, st.session.id, 20, wctx.clock) == 127
    assert not get_session(wctx.paths.data, "broken").alive


def test_decisions_drive_workers_through_the_tick(wctx: Ctx) -> None:
    wire(
        wctx,
        [
            {"decision": {"action": "start_worker", "id": "ship", "prompt": "Ship it."}},
            {"decision": {"action": "steer_session", "id": "ship", "input": "hello worker"}},
            {"decision": {"action": "send_key", "id": "looop-ship", "keys": ["C-d"]}},
        ],
        worker=ECHO_AGENT,
    )
    try:
        assert tick(wctx).status == "decided"
        assert get_session(wctx.paths.data, "ship").alive
        assert tick(wctx).status == "decided"  # sys-sessions changed: decide again
        code, _, _ = expect(
            wctx.paths.data, "ship", "got:hello worker", timeout_s=20, clock=wctx.clock
        )
        assert code == 0
        out = tick(wctx, force=True)
        assert out.status == "decided", out.error
        assert wait(wctx.paths.data, "ship", 20, wctx.clock) == 0  # C-d ended its read loop
    finally:
        _stop_all(wctx)


def test_driving_the_pulse_or_a_ghost_fails_the_beat(wctx: Ctx) -> None:
    wire(
        wctx,
        [
            {"decision": {"action": "steer_session", "id": "pulse", "input": "x"}},
            {"decision": {"action": "kill_worker", "id": "ghost"}},
        ],
        worker=ECHO_AGENT,
    )
    out = tick(wctx)
    assert out.status == "failed" and "control loop" in (out.error or "")
    wctx.paths.playbook.write_text("cut the backoff\n")
    out = tick(wctx)
    assert out.status == "failed" and "ghost" in (out.error or "")


def test_killing_a_worker_that_is_already_over_is_a_success(wctx: Ctx) -> None:
    k = wctx.knobs()
    start_worker(wctx, k, StartRequest("done", "x", command="true # {{prompt_file}}"))
    assert wait(wctx.paths.data, "done", 20, wctx.clock) == 0
    start_worker(wctx, k, StartRequest("orphan", "x", command="sleep 600 # {{prompt_file}}"))
    sup = get_session(wctx.paths.data, "orphan").supervisor_pid
    assert sup
    os.kill(sup, signal.SIGKILL)  # the supervisor dies without recording an end
    wait_until(lambda: get_session(wctx.paths.data, "orphan").dead, timeout=20)
    wire(
        wctx,
        [
            {"decision": {"action": "kill_worker", "id": "done", "journal": "stop done"}},
            {"decision": {"action": "kill_worker", "id": "orphan", "journal": "stop orphan"}},
        ],
        worker=ECHO_AGENT,
    )
    try:
        first = tick(wctx, force=True)
        assert first.status == "decided", first.error
        second = tick(wctx, force=True)
        assert second.status == "decided", second.error
        lines = wctx.paths.journal.read_text().splitlines()
        assert lines[-2].endswith("stop done (worker done had already exited (code 0))")
        assert lines[-1].endswith(
            "stop orphan (worker orphan was already dead (its supervisor had died))"
        )
        # the beat recorded the dead supervisor's end: status.json no longer says running
        s = get_session(wctx.paths.data, "orphan")
        assert s.state == "killed" and s.exit_code == 137 and not s.dead
        assert events(wctx).count("session.dead") == 1  # said once, not every beat
    finally:
        _stop_all(wctx)


def test_sys_sessions_health_flags_and_verify(wctx: Ctx) -> None:
    k = wctx.knobs()
    try:
        start_worker(
            wctx,
            k,
            StartRequest(
                "v1", "x", command="touch made; exit 0 # {{prompt_file}}", verify="test -f made"
            ),
        )
        start_worker(wctx, k, StartRequest("v2", "x", command="echo ok # {{prompt_file}}"))
        start_worker(wctx, k, StartRequest("live", "x"))
        from looop.home.sessionfiles import flag_note

        flag_note(str(wctx.paths.data), "live", "need approval")
        assert wait(wctx.paths.data, "v1", 20, wctx.clock) == 0
        assert wait(wctx.paths.data, "v2", 20, wctx.clock) == 0
        snap = probe_sessions(wctx)
        by_id = {e["id"]: e for e in snap["signal"]}
        assert by_id["live"]["health"] == "busy" and by_id["live"]["note"] == "need approval"
        assert by_id["v1"]["health"] == "dead" and "verify" not in by_id["v1"]
        wire(wctx, [{"decision": {"action": "noop"}}], worker=ECHO_AGENT)
        tick(wctx)  # housekeeping runs v1's verify once, in v1's own room
        by_id = {e["id"]: e for e in probe_sessions(wctx)["signal"]}
        assert by_id["v1"]["verify"] == "pass"
        assert "verify" not in by_id["v2"]
        assert "worker.verify" in events(wctx)
        kill(wctx.paths.data, "live")
        by_id = {e["id"]: e for e in probe_sessions(wctx)["signal"]}
        assert "note" not in by_id["live"]  # a corpse's flag neither wakes nor reaches the AI
    finally:
        _stop_all(wctx)


def test_silent_worker_reads_stuck(wctx: Ctx) -> None:
    c = with_env(wctx, LOOOP_WORKER_STUCK_SECS="60")
    try:
        start_worker(
            c, c.knobs(), StartRequest("quiet", "x", command="sleep 600 # {{prompt_file}}")
        )
        by_id = {e["id"]: e for e in probe_sessions(c)["signal"]}
        assert by_id["quiet"]["health"] == "busy"
        assert isinstance(c.clock, FixedClock)
        c.clock.advance(120)
        by_id = {e["id"]: e for e in probe_sessions(c)["signal"]}
        assert by_id["quiet"]["health"] == "stuck"
    finally:
        _stop_all(c)


def test_corpses_kept_for_ttl_then_reaped(wctx: Ctx) -> None:
    start_worker(wctx, wctx.knobs(), StartRequest("brief", "x", command="true # {{prompt_file}}"))
    assert wait(wctx.paths.data, "brief", 20, wctx.clock) == 0
    wire(wctx, [{"decision": {"action": "noop"}}] * 3, worker=ECHO_AGENT)
    tick(wctx)
    assert any(s.id == "brief" for s in list_sessions(wctx.paths.data))
    assert isinstance(wctx.clock, FixedClock)
    wctx.clock.advance(259200 + 10)
    tick(wctx)
    assert not any(s.id == "brief" for s in list_sessions(wctx.paths.data))


def test_worker_command_override_and_runner_choice(wctx: Ctx) -> None:
    with pytest.raises(LooopError, match="no runner"):
        start_worker(wctx, wctx.knobs(), StartRequest("x", "p", runner="nope"))
    st = start_worker(
        wctx, wctx.knobs(), StartRequest("x", "p", command=f"cat {shlex.quote('{{prompt_file}}')}")
    )
    assert wait(wctx.paths.data, st.session.id, 20, wctx.clock) == 0
    code, _, _ = expect(wctx.paths.data, "x", "WORKER CONTRACT", timeout_s=5, clock=wctx.clock)
    assert code == 0


FLOOD_AGENT = (
    'bash -c \'yes "a chatty agent repaints its screen" | head -c 3000000; '
    "echo flood-done' agent {{prompt_file}}"
)


def test_a_flooding_worker_keeps_within_its_log_cap_and_the_beat_goes_on(wctx: Ctx) -> None:
    """The knobs reach a worker the decider starts: 3 MB printed, 128 KiB on disk."""
    c = with_env(wctx, LOOOP_SESSION_LOG_MAX_BYTES="65536", LOOOP_SESSION_LOG_MAX_FILES="2")
    wire(
        c,
        [
            {"decision": {"action": "start_worker", "id": "chatty", "prompt": "Talk."}},
            {"decision": {"action": "noop", "reason": "it is done"}},
        ],
        worker=FLOOD_AGENT,
    )
    try:
        assert tick(c).status == "decided"
        assert wait(c.paths.data, "chatty", 30, c.clock) == 0
        sdir = c.paths.data / "sessions" / "chatty" / "log"
        sizes = [p.stat().st_size for p in sdir.iterdir() if p.name.startswith("output.log")]
        assert len(sizes) <= 2 and sum(sizes) <= 2 * 65536
        assert get_session(c.paths.data, "chatty").output_bytes > 3_000_000
        assert tick(c).status == "decided"  # sys-sessions changed: the next beat decides
    finally:
        _stop_all(c)
