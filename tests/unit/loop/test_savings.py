"""What the gate saved (issue 54 item 4): each skipped beat is priced at the trailing median
decide cost, counted today and this week, and every face — status text and JSON, `looop
cost`, the web's state and cost, /metrics — shows the one reckoning (home/savings.savings_view)."""

from __future__ import annotations

import contextlib
import io
import json
import os

from prometheus_client import CollectorRegistry, generate_latest

from looop.core.context import Ctx
from looop.home.clock import Clock
from looop.home.eventlog import append_record
from looop.spend.report import render_report
from looop.spend.savings import note_decide, savings_line, savings_view
from looop.views.status import gather_status
from looop.views.statustext import print_status
from looop.web import reads
from looop.web.metrics import LoopCollector
from tests.clocks import FixedClock
from tests.helpers import cost_report


def _data(ctx: Ctx) -> str:
    return os.fspath(ctx.paths.data)


def note_skip(data: str, clock: Clock) -> None:
    """A skip beat, as loop/tick.py records it: its one events.jsonl line and nothing else."""
    append_record(os.path.join(data, "events.jsonl"), "world_unchanged", {}, clock.now())


def test_a_skip_is_priced_at_the_median_of_the_trailing_decides(ctx: Ctx) -> None:
    data = _data(ctx)
    note_skip(data, ctx.clock)  # no decide yet: nothing known saved, yet counted
    # a decide whose runner said no cost (or no believable one) is counted, but no sample
    for usd in (0.01, 0.30, 0.02, None, float("inf"), float("nan")):
        note_decide(data, ctx.clock, usd)
    note_skip(data, ctx.clock)
    note_skip(data, ctx.clock)
    got = savings_view(data, ctx.clock)
    assert got["median_decide_usd"] == 0.02  # the median of 0.01, 0.02, 0.30: not the mean
    assert got["today"] == {"decides": 6, "skipped": 3, "saved_usd": 0.04}
    assert got["week"] == got["today"]


def test_today_and_the_week_are_local_days(ctx: Ctx) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    data = _data(ctx)
    note_decide(data, clock, 0.10)
    note_skip(data, clock)
    clock.advance(3 * 86400)
    note_decide(data, clock, 0.30)  # median of 0.10 and 0.30: 0.20
    note_skip(data, clock)
    got = savings_view(data, clock)
    assert got["today"] == {"decides": 1, "skipped": 1, "saved_usd": 0.2}
    assert got["week"] == {"decides": 2, "skipped": 2, "saved_usd": 0.3}
    clock.advance(7 * 86400)  # the week has passed: nothing left in it
    assert savings_view(data, clock)["week"] == {"decides": 0, "skipped": 0, "saved_usd": 0.0}


def test_a_broken_tally_file_counts_afresh(ctx: Ctx) -> None:
    data = _data(ctx)
    with open(os.path.join(data, ".savings.json"), "w") as f:
        f.write('{"v": 2, "costs": ["x", -5, 10000], "days": {"d": 7}}')
    note_skip(data, ctx.clock)
    assert savings_view(data, ctx.clock)["today"] == {
        "decides": 0,
        "skipped": 1,
        "saved_usd": 0.01,  # the one sane cost sample kept
    }


def test_every_face_shows_the_one_reckoning(ctx: Ctx) -> None:
    data = _data(ctx)
    note_decide(data, ctx.clock, 0.05)
    for _ in range(3):
        note_skip(data, ctx.clock)
    want = savings_view(data, ctx.clock)
    assert want["today"]["saved_usd"] == 0.15
    st = gather_status(ctx.paths, ctx.env, ctx.clock)
    assert st["savings"] == want
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(st, as_json=False)
    assert "saved:     " + savings_line(want) in out.getvalue()
    assert "$0.1500 today (3 beats skipped, 1 decides)" in out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(st, as_json=True)
    assert json.loads(out.getvalue())["savings"] == want
    rep = cost_report(ctx.paths, ctx.clock, "today", "kind")
    assert "saved: " + savings_line(want) in render_report(rep, 0, want)
    assert reads.state(ctx)["savings"] == want
    assert reads.cost(ctx, 7)["savings"] == want
    reg = CollectorRegistry()
    reg.register(LoopCollector(ctx))
    text = generate_latest(reg).decode()
    assert 'looop_saved_usd{span="today"} 0.15' in text
    assert 'looop_beats_skipped_span{span="week"} 3.0' in text
    assert 'looop_decides_made{span="today"} 1.0' in text
