"""The fleet's usage windows (home/usagewindows) and the hold rule (workers/heldstart): an
account is a runner and its CLI's credentials; a start on a limited account is held as
`scheduled` with its reset and reason, read back whole at the reset; bad files are one line."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from looop.act.decision import Mover
from looop.act.moves.kill import KillWorker
from looop.core.context import Ctx
from looop.home.errors import CorruptState
from looop.home.sandboxpolicy import ON
from looop.sense.probes import probe_sessions
from looop.spend import usagewindows as uw
from looop.spend.limits import said_until
from looop.views.status import gather_status
from looop.views.statustext import print_status
from looop.web import reads
from looop.web.metrics import LoopCollector
from looop.workers.errors import StartHeld, WorkerError
from looop.workers.started import StartRequest
from looop.workers.startrecord import hold_if_limited, request_from, request_json
from tests.clocks import FixedClock

CLAUDE = "claude --session-id {{session_id}} {{prompt_file}}"


def _data(ctx: Ctx) -> str:
    return str(ctx.paths.data)


def test_an_account_is_the_runner_and_the_credentials_its_cli_runs_with() -> None:
    home = {"HOME": "/home/a"}
    a = uw.account_of("claude", CLAUDE, home)
    assert a.key == uw.account_of("claude", "env X=1 /usr/bin/claude -p", home).key
    assert "claude at /home/a/.claude" in a.who
    other_login = uw.account_of("claude", CLAUDE, {**home, "CLAUDE_CONFIG_DIR": "/srv/b"})
    other_runner = uw.account_of("fast", CLAUDE, home)
    other_cli = uw.account_of("claude", "codex exec {{prompt_file}}", home)
    keyed = uw.account_of("claude", CLAUDE, {**home, "ANTHROPIC_API_KEY": "sk-secret-1"})
    keyed2 = uw.account_of("claude", CLAUDE, {**home, "ANTHROPIC_API_KEY": "sk-secret-2"})
    keys = {a.key, other_login.key, other_runner.key, other_cli.key, keyed.key, keyed2.key}
    assert len(keys) == 6
    assert "sk-secret" not in keyed.key + keyed.who  # a fingerprint, never the key


def test_a_window_is_kept_until_its_reset_and_a_later_reset_extends_it(ctx: Ctx) -> None:
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    now = ctx.clock.now()
    w, new = uw.mark(_data(ctx), acct, now + 600, "limit reached", "decide", now)
    assert new and w.seen_by == "decide"
    _, again = uw.mark(_data(ctx), acct, now + 900, "later", "worker w1", now, run=("w1", "r1"))
    assert not again
    [got] = uw.read_windows(_data(ctx))
    assert (got.until, got.said, got.seen_by, got.stopped) == (now + 900, "later", "decide", ["w1"])
    assert uw.seen_runs(_data(ctx)) == {"w1": "r1"}
    assert uw.in_force(uw.read_windows(_data(ctx)), acct.key, now + 899) is not None
    assert uw.in_force(uw.read_windows(_data(ctx)), acct.key, now + 900) is None
    uw.lift(_data(ctx), [acct.key])
    assert uw.read_windows(_data(ctx)) == []


def test_a_corrupt_windows_file_is_one_line_and_the_next_sighting_writes_it_afresh(
    ctx: Ctx,
) -> None:
    path = ctx.paths.data / uw.FILE
    for bad in ("{torn", '{"v": 9, "windows": []}', '{"v": 1, "windows": [{"key": 1}]}'):
        path.write_text(bad)
        with pytest.raises(CorruptState) as e:
            uw.read_windows(_data(ctx))
        assert (
            "\n" not in str(e.value) and str(path) in str(e.value) and "delete it" in str(e.value)
        )
        shown, error = uw.view(_data(ctx), ctx.clock)
        assert shown == [] and error == str(e.value)
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    uw.mark(_data(ctx), acct, ctx.clock.now() + 60, "x", "decide", ctx.clock.now())
    assert [w.key for w in uw.read_windows(_data(ctx))] == [acct.key]


def _req(wid: str = "w2") -> StartRequest:
    return StartRequest(worker=wid, brief="do it", runner="claude", verify="test -f x",
                        sandbox=ON, resume=True, decided=True)  # fmt: skip


def test_a_start_on_a_limited_account_is_held_as_scheduled_with_its_reset(
    ctx: Ctx, clock: FixedClock
) -> None:
    now = clock.now()
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    uw.mark(_data(ctx), acct, now + 3600, "usage limit reached", "decide", now)
    with pytest.raises(StartHeld) as e:
        hold_if_limited(ctx, "claude", CLAUDE, _req())
    assert "held as scheduled until" in str(e.value) and "usage limit" in str(e.value)
    [held] = uw.read_held(_data(ctx))[0]
    assert (held["id"], held["until"], held["key"]) == ("w2", int(now + 3600), acct.key)
    assert request_from(held["request"]) == _req()  # the start as asked, whole
    [row] = uw.held_rows(_data(ctx), clock)
    tm = clock.local_tm(now + 3600)
    assert row["health"] == f"scheduled until {tm.tm_hour:02d}:{tm.tm_min:02d}"
    assert row["state"] == "scheduled" and "usage limit" in row["note"]
    [win], error = uw.view(_data(ctx), clock)
    assert error is None and win["held"] == ["w2"] and win["runner"] == "claude"
    # another account is not held; a start that goes ahead drops the held one of its id
    hold_if_limited(ctx, "other", "codex exec {{prompt_file}}", _req())
    assert uw.read_held(_data(ctx))[0] == []


def test_after_the_reset_nothing_is_held(ctx: Ctx, clock: FixedClock) -> None:
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    uw.mark(_data(ctx), acct, clock.now() + 60, "x", "decide", clock.now())
    clock.advance(60)
    hold_if_limited(ctx, "claude", CLAUDE, _req())
    assert uw.read_held(_data(ctx))[0] == [] and uw.view(_data(ctx), clock) == ([], None)


def test_a_held_start_edited_by_hand_is_refused_in_one_line(ctx: Ctx) -> None:
    folder = ctx.paths.data / uw.HELD_DIR
    folder.mkdir()
    (folder / "w2.json").write_text(json.dumps({"v": 1, "id": "../x", "key": "k", "until": 1}))
    [said] = uw.read_held(_data(ctx))[1]
    assert "\n" not in said and "w2.json" in said
    # the others go on without it: a good one beside it is read, the bad one said
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    w, _ = uw.mark(_data(ctx), acct, ctx.clock.now() + 60, "x", "decide", ctx.clock.now())
    uw.hold(_data(ctx), "w3", w, request_json(_req("w3")), ctx.clock.now())
    good, bad = uw.read_held(_data(ctx))
    assert [h["id"] for h in good] == ["w3"] and bad == [said]
    assert [r["id"] for r in uw.held_rows(_data(ctx), ctx.clock)] == ["w3"]
    assert uw.view(_data(ctx), ctx.clock)[1] == said
    bad = {**request_json(_req()), "resume": "yes"}
    with pytest.raises(WorkerError) as we:
        request_from(bad)
    assert "field 'resume'" in str(we.value) and "\n" not in str(we.value)


def test_every_face_shows_the_window_and_its_held_starts(ctx: Ctx, clock: FixedClock) -> None:
    now = clock.now()
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    uw.mark(_data(ctx), acct, now + 1800, "usage limit reached", "worker w1", now, run=("w1", "r"))
    uw.mark(_data(ctx), acct, now + 1800, "usage limit reached", "decide", now)  # confirmed
    with pytest.raises(StartHeld):
        hold_if_limited(ctx, "claude", CLAUDE, _req())
    st = gather_status(ctx.paths, ctx.env, clock)
    [win] = st["windows"]
    assert (win["until"], win["held"], win["stopped"]) == (int(now + 1800), ["w2"], ["w1"])
    assert st["windows_error"] is None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(st, as_json=False)
    line = next(ln for ln in out.getvalue().splitlines() if ln.startswith("window:"))
    assert "claude (claude at" in line and "resets in 30m" in line
    assert "held: w2" in line and "to continue: w1" in line
    assert reads.state(ctx)["windows"] == st["windows"]
    rows = {r["id"]: r for r in reads.sessions(ctx, False)}
    assert rows["w2"]["state"] == "scheduled" and rows["w2"]["health"].startswith("scheduled")
    reg = CollectorRegistry()
    reg.register(LoopCollector(ctx))
    text = generate_latest(reg).decode()
    at = f'account="{acct.who}",runner="claude"'
    assert f"looop_usage_window_held_starts{{{at}}} 1.0" in text
    assert f"looop_usage_window_stopped_workers{{{at}}} 1.0" in text
    reset = f"looop_usage_window_reset_timestamp_seconds{{{at}}} "
    [value] = [ln[len(reset) :] for ln in text.splitlines() if ln.startswith(reset)]
    assert float(value) == int(now + 1800)


def test_killing_a_held_start_drops_it(ctx: Ctx, clock: FixedClock) -> None:
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    uw.mark(_data(ctx), acct, clock.now() + 60, "x", "decide", clock.now())
    with pytest.raises(StartHeld):
        hold_if_limited(ctx, "claude", CLAUDE, _req())
    found = KillWorker(id="w2").perform(Mover(ctx, ctx.knobs(), "cli"))
    assert found is not None and "dropped" in found
    assert uw.read_held(_data(ctx))[0] == []


def test_the_decider_sees_the_held_starts_in_sys_sessions(ctx: Ctx, clock: FixedClock) -> None:
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    uw.mark(_data(ctx), acct, clock.now() + 60, "x", "decide", clock.now())
    assert "scheduled" not in probe_sessions(ctx)["detail"]
    with pytest.raises(StartHeld):
        hold_if_limited(ctx, "claude", CLAUDE, _req())
    got = probe_sessions(ctx)
    held = got["detail"]["scheduled"]["w2"]
    assert held["runner"] == "claude" and "usage limit" in held["why"]
    assert held["until"] == clock.offset_stamp_at(clock.now() + 60)
    assert got["signal"] == []  # a hold wakes no decide by itself


def test_a_new_limit_on_an_account_whose_reset_was_not_yet_tended_keeps_its_stopped_workers(
    ctx: Ctx, clock: FixedClock
) -> None:
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    now = clock.now()
    uw.mark(_data(ctx), acct, now + 60, "x", "worker w1", now, run=("w1", "r1"))
    clock.advance(120)  # the reset passed; no beat tended it yet
    w, new = uw.mark(_data(ctx), acct, clock.now() + 600, "y", "decide", clock.now())
    assert (
        new and w.stopped == ["w1"] and [x.key for x in uw.read_windows(_data(ctx))] == [acct.key]
    )


def test_a_limit_on_one_workers_screen_holds_only_it_until_a_second_source_confirms(
    ctx: Ctx, clock: FixedClock
) -> None:
    """A worker printing `Claude AI usage limit reached|<now+7 days>` held every start on its
    account (a human's too) for a week: alone it holds nothing but itself; a second worker
    seeing the limit confirms it, with that sighting's own reset; a reset over a day away
    names its date."""
    now = clock.now()
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    fake = f"Claude AI usage limit reached|{int(now + 7 * 86400)}"
    w, _ = uw.mark(_data(ctx), acct, now + 7 * 86400, fake, "worker liar", now, ("liar", "r"))
    assert not w.confirmed and w.stopped == ["liar"]  # it stopped: it waits its own reset
    hold_if_limited(ctx, "claude", CLAUDE, _req())  # a start on the account goes ahead
    assert uw.read_held(_data(ctx))[0] == []
    st = gather_status(ctx.paths, ctx.env, clock)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(st, as_json=False)
    line = next(ln for ln in out.getvalue().splitlines() if ln.startswith("window:"))
    tm = clock.local_tm(now + 7 * 86400)
    assert f"({tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d} " in line
    assert "said by worker liar alone: it holds only that worker" in line
    w, _ = uw.mark(_data(ctx), acct, now + 3600, "limit reached", "worker w1", now, ("w1", "r"))
    assert w.confirmed and w.until == now + 3600  # the second source's reset, not the lie's
    with pytest.raises(StartHeld) as e:
        hold_if_limited(ctx, "claude", CLAUDE, _req())
    assert "held as scheduled until" in str(e.value)


def test_a_reset_over_a_day_away_names_its_date(ctx: Ctx, clock: FixedClock) -> None:
    now = clock.now()
    far = said_until(f"Claude AI usage limit reached|{int(now + 7 * 86400)}".encode(), clock)
    tm = clock.local_tm(now + 7 * 86400)
    day = f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
    assert far == f"{day} {tm.tm_hour:02d}:{tm.tm_min:02d}"
    near = said_until(f"Claude AI usage limit reached|{int(now + 3600)}".encode(), clock)
    assert near is not None and len(near) == 5  # within the day: HH:MM
    acct = uw.account_of("claude", CLAUDE, ctx.env)
    w, _ = uw.mark(_data(ctx), acct, now + 3 * 86400, "x", "decide", now)
    uw.hold(_data(ctx), "w3", w, request_json(_req("w3")), now)
    [row] = uw.held_rows(_data(ctx), clock)
    t3 = clock.local_tm(now + 3 * 86400)
    assert row["health"].startswith(f"scheduled until {t3.tm_year:04d}-{t3.tm_mon:02d}-")
