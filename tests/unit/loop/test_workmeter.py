"""The worker meter (loop/workmeter.py) on files shaped as each CLI writes them: incremental,
counted once, safe against hostile files. tests/realcli/test_spend.py runs the real CLIs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.loop import workmeter as m
from looop.loop.clirecords import MAX_LINE
from looop.spend.prices import lookup_price, price_table, price_tokens
from looop.spend.record import report_cost
from looop.spend.spent import STATES, spent
from tests.clocks import FixedClock
from tests.helpers import with_env
from tests.unit.test_conversation_finders import conversation as opencode_conversation
from tests.unit.test_conversation_finders import store as opencode_store

pytestmark = pytest.mark.unit
PRICES = price_table()
T0 = 1_800_000_000.0


def _record(data: Path, wid: str, resume: str | None, conv: str | None, **kw: Any) -> None:
    (data / "resume").mkdir(parents=True, exist_ok=True)
    rec = {"v": 1, "id": wid, "runner": "r1", "resume": resume, "conversation": conv, **kw}
    (data / "resume" / f"{wid}.json").write_text(json.dumps(rec))


def _claude_line(mid: str, inp: int, out: int, model: str = "claude-sonnet-4-5-20250929") -> str:
    msg = {
        "id": mid,
        "model": model,
        "role": "assistant",
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }
    return json.dumps({"type": "assistant", "message": msg}) + "\n"


def _rows(data: Path) -> list[dict[str, Any]]:
    p = data / "cost.jsonl"
    if not p.exists():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def _usd(data: Path, wid: str) -> float:
    return sum(r["cost_usd"] for r in _rows(data) if r["id"] == wid and r["kind"] == "worker")


def _sonnet(inp: int, out: int) -> float:
    return price_tokens(lookup_price(PRICES, "claude-sonnet-4-5")[1], inp, 0, 0, out)


@pytest.fixture
def claude(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    data, home = tmp_path / "data", tmp_path / "home"
    conv = "0b7e6a1c-1111-4222-8333-444455556666"
    _record(data, "w1", "claude --resume {{session_id}}", conv, started=T0 - 1000)
    proj = home / ".claude" / "projects" / "-tmp-x"
    proj.mkdir(parents=True)
    return data, {"HOME": str(home)}, proj / f"{conv}.jsonl"


def test_claude_usage_is_priced_and_counted_once_across_beats(
    claude: tuple[Path, dict[str, str], Path],
) -> None:
    data, env, f = claude
    # a message written as two content-block lines carrying the same usage counts once
    f.write_text(_claude_line("msg_1", 1000, 50) + _claude_line("msg_1", 1000, 200))
    got = m.meter(str(data), T0, env, PRICES)
    assert got["w1"].usd == pytest.approx(_sonnet(1000, 200), abs=1e-6)
    assert got["w1"].model == "claude-sonnet-4-5-20250929"
    assert m.meter(str(data), T0 + 1, env, PRICES)["w1"].usd == got["w1"].usd  # nothing new
    assert len(_rows(data)) == 1
    with f.open("a") as fh:  # the conversation goes on (a resume appends to the same file)
        fh.write(_claude_line("msg_2", 3000, 100))
    m.meter(str(data), T0 + 2, env, PRICES)
    assert _usd(data, "w1") == pytest.approx(_sonnet(1000, 200) + _sonnet(3000, 100), abs=2e-6)
    row = _rows(data)[-1]
    assert (row["kind"], row["runner"], row["model"]) == ("worker", "r1", row["model"])
    assert row["model"].startswith("claude-sonnet")


def test_a_half_written_line_waits_for_its_end(claude: tuple[Path, dict[str, str], Path]) -> None:
    data, env, f = claude
    line = _claude_line("msg_1", 1000, 200)
    f.write_text(line[:40])
    assert m.meter(str(data), T0, env, PRICES)["w1"].usd == 0
    with f.open("a") as fh:
        fh.write(line[40:])
    assert m.meter(str(data), T0, env, PRICES)["w1"].usd == pytest.approx(_sonnet(1000, 200))


def test_a_replaced_file_is_not_counted_twice(claude: tuple[Path, dict[str, str], Path]) -> None:
    data, env, f = claude
    f.write_text(_claude_line("msg_1", 1000, 200))
    m.meter(str(data), T0, env, PRICES)
    tmp = f.with_suffix(".new")
    tmp.write_text(_claude_line("msg_1", 1000, 200) + _claude_line("msg_2", 10, 10))
    os.replace(tmp, f)
    m.meter(str(data), T0, env, PRICES)
    assert _usd(data, "w1") == pytest.approx(_sonnet(1000, 200) + _sonnet(10, 10), abs=2e-6)


def test_hostile_files_are_refused(claude: tuple[Path, dict[str, str], Path]) -> None:
    data, env, f = claude
    secret = f.parent / "secret"
    secret.write_text(_claude_line("msg_1", 10**6, 10**6))
    f.symlink_to(secret)  # a symlink in the record's place is not followed
    assert m.meter(str(data), T0, env, PRICES)["w1"].usd == 0
    f.unlink()
    os.mkfifo(f)  # a FIFO never blocks the beat
    assert m.meter(str(data), T0, env, PRICES)["w1"].usd == 0
    f.unlink()
    # a line longer than the bound is skipped whole; the lines after it still count
    huge = '{"type":"user","x":"' + "a" * (MAX_LINE + 10) + '"}\n'
    f.write_text(huge[: MAX_LINE + 5])
    m.meter(str(data), T0, env, PRICES)
    with f.open("a") as fh:
        fh.write(huge[MAX_LINE + 5 :] + _claude_line("msg_9", 100, 10))
    assert m.meter(str(data), T0, env, PRICES)["w1"].usd == pytest.approx(_sonnet(100, 10))


def test_a_lost_state_file_recounts_without_recording_twice(
    claude: tuple[Path, dict[str, str], Path],
) -> None:
    data, env, f = claude
    f.write_text(_claude_line("msg_1", 1000, 200))
    m.meter(str(data), T0, env, PRICES)
    for name in STATES:  # both slots
        (data / name).write_text("{not json")
    assert m.meter(str(data), T0, env, PRICES)["w1"].usd == pytest.approx(_sonnet(1000, 200))
    assert _usd(data, "w1") == pytest.approx(_sonnet(1000, 200))
    with f.open("a") as fh:
        fh.write(_claude_line("msg_2", 10, 10))
    m.meter(str(data), T0, env, PRICES)
    assert _usd(data, "w1") == pytest.approx(_sonnet(1000, 200) + _sonnet(10, 10), abs=2e-6)


def _codex_line(kind: str, payload: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "payload": payload}) + "\n"


def _tokens(inp: int, cached: int, out: int) -> str:
    total = {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out}
    return _codex_line("event_msg", {"type": "token_count", "info": {"total_token_usage": total}})


def test_codex_running_totals_and_a_resume_that_counts_from_zero(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "codex"
    conv = "019a0000-aaaa-7bbb-8ccc-ddddeeeeffff"
    _record(data, "c1", "codex resume {{session_id}}", conv, home=str(home))
    day = home / "sessions" / "2026" / "11" / "24"
    day.mkdir(parents=True)
    f = day / f"rollout-2026-11-24T10-00-00-{conv}.jsonl"
    f.write_text(
        _codex_line("turn_context", {"model": "gpt-5-mini"})
        + _tokens(1000, 200, 50)
        + _tokens(1000, 200, 50)  # said twice: the running total stands, not a sum
        + _tokens(3000, 200, 80)
    )
    row = lookup_price(PRICES, "gpt-5-mini")[1]
    first = price_tokens(row, 2800, 200, 0, 80)
    assert m.meter(str(data), T0, {"HOME": "/x"}, PRICES)["c1"].usd == pytest.approx(first)
    with f.open("a") as fh:  # resumed: its totals restart
        fh.write(_tokens(500, 0, 10))
    got = m.meter(str(data), T0, {"HOME": "/x"}, PRICES)["c1"]
    assert got.usd == pytest.approx(first + price_tokens(row, 500, 0, 0, 10), abs=2e-6)
    assert got.model == "gpt-5-mini"


def test_pi_session_costs_are_summed(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    conv = "7d1b0f8e-1111-4222-8333-444455556666"
    _record(data, "p1", 'pi --session "$HOME/x/{{session_id}}.jsonl"', conv)
    d = home / ".pi" / "agent" / "sessions" / "looop"
    d.mkdir(parents=True)
    lines = [{"type": "session", "id": conv}]
    for c in (0.0123, 0.0456):
        msg = {"role": "assistant", "model": "claude-x", "usage": {"cost": {"total": c}}}
        lines.append({"type": "message", "message": msg})
    lines.append({"type": "message", "message": {"role": "user", "usage": {"cost": 5}}})
    (d / f"{conv}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert m.meter(str(data), T0, {"HOME": str(home)}, PRICES)["p1"].usd == pytest.approx(0.0579)


def test_opencode_rows_latest_cost_each_and_its_id_found(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    _record(data, "o1", "opencode --session {{session_id}}", None, cwd="/w", started=T0)
    con = opencode_store(home)
    ms = int(T0 * 1000)
    # the pulse's tick, first, in the same directory: its prompt quotes the worker's screen
    quoted = [("user", "=== CONSTITUTION\n" + "x" * 600 + "You are worker `o1` ...")]
    opencode_conversation(con, "ses_tick", ms + 10, "/w", quoted)
    opencode_conversation(con, "ses_o1", ms + 20, "/w", [("user", "You are worker `o1` ...")])

    def msg(mid: str, sid: str, upd: int, body: dict[str, Any]) -> None:
        row = (mid, sid, ms + 100 + upd, upd, json.dumps(body))
        con.execute("INSERT OR REPLACE INTO message VALUES (?, ?, ?, ?, ?)", row)
        con.commit()

    msg("m2", "ses_o1", 2, {"role": "assistant", "cost": 0.01, "modelID": "x"})
    msg("m9", "ses_tick", 2, {"role": "assistant", "cost": 7.0})  # another conversation
    env = {"HOME": str(home)}
    got = m.meter(str(data), T0, env, PRICES)["o1"]
    assert got.usd == pytest.approx(0.01) and got.model == "x"
    msg("m2", "ses_o1", 3, {"role": "assistant", "cost": 0.03})  # grew while streaming
    msg("m3", "ses_o1", 4, {"role": "assistant", "cost": 0.02})
    assert m.meter(str(data), T0, env, PRICES)["o1"].usd == pytest.approx(0.05)
    assert _usd(data, "o1") == pytest.approx(0.05)
    con.close()


def test_custom_command_is_unmetered_and_its_report_counts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _record(data, "u1", None, None)
    got = m.meter(str(data), T0, {"HOME": "/x"}, PRICES, {"r1": "my-agent --go"})
    assert got["u1"].usd is None and got["u1"].cli == "my-agent"
    report_cost(str(data), T0, "session", "u1", "r1", "0.5")
    assert [r["cost_usd"] for r in _rows(data)] == [0.5]


def test_a_metered_worker_report_is_not_counted_again(
    claude: tuple[Path, dict[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, env, f = claude
    f.write_text(_claude_line("msg_1", 1000, 200))
    m.meter(str(data), T0, env, PRICES)
    report_cost(str(data), T0, "session", "w1", "r1", "0.5")
    assert "not counted again" in capsys.readouterr().out
    assert _usd(data, "w1") == pytest.approx(_sonnet(1000, 200))
    assert len(_rows(data)) == 1
    (data / "resume" / "w1.json").unlink()  # forgotten: its meter and mark go too
    m.meter(str(data), T0, env, PRICES)
    assert spent(str(data)) == {}
    assert not os.path.exists(os.path.join(data, ".metered", "w1"))


def test_spend_is_seen_by_model_and_in_the_fleet_table(
    claude: tuple[Path, dict[str, str], Path],
) -> None:
    from looop.home.paths import Paths
    from looop.views.fleet import fleet_table
    from tests.clocks import FixedClock
    from tests.helpers import cost_report

    data, env, f = claude
    f.write_text(_claude_line("msg_1", 100000, 2000))
    _record(data, "u1", None, None)
    m.meter(str(data), T0, env, PRICES, {"r1": "my-agent"})
    rep = cost_report(Paths.at(data), FixedClock(T0), "today", "model")
    assert [(g["key"], g["calls"]) for g in rep["groups"]] == [("claude-sonnet-4-5-20250929", 1)]
    got = spent(str(data))
    rows = [
        {
            "id": wid,
            "health": "busy",
            "label": "x",
            "state": "running",
            "idle_s": None,
            "up_s": None,
            "verify": None,
            "spend_usd": s.usd,
            "metered": s.usd is not None,
        }
        for wid, s in sorted(got.items())
    ]
    table = fleet_table(rows)
    assert "SPEND" in table.splitlines()[0]
    assert f"${_sonnet(100000, 2000):.2f}" in table and "unmetered" in table


def test_budgets_read_back_and_bad_ones_are_left_out(tmp_path: Path) -> None:
    from looop.spend import spent as sp

    data = str(tmp_path)
    sp.set_budget(data, "w1", 5.0, "stop")
    sp.set_budget(data, "w2", 1.5)
    os.makedirs(os.path.join(data, "budgets"), exist_ok=True)
    with open(os.path.join(data, "budgets", "w3.json"), "w") as fh:
        fh.write('{"usd": -1}')
    assert sp.budgets(data) == {"w1": (5.0, "stop"), "w2": (1.5, "pause")}
    sp.mark_over(data, "w2", 1.6, 1.5, "pause")
    assert sp.over_budget(data) == {"w2"}
    sp.set_budget(data, "w2", None)
    assert sp.clear_over(data, "w2") and sp.over_budget(data) == set()
    assert "w2" not in sp.budgets(data)


def test_the_state_is_read_from_its_newest_whole_slot(tmp_path: Path) -> None:
    from looop.spend.spent import read_state, write_state

    data = str(tmp_path)
    state = read_state(data)
    state["workers"]["w1"] = {"n": 1}
    write_state(data, state)
    state["workers"]["w1"] = {"n": 2}
    write_state(data, state)
    assert read_state(data)["workers"]["w1"] == {"n": 2}
    newest = tmp_path / STATES[state["seq"] % 2]
    raw = newest.read_bytes()
    newest.write_bytes(raw[: len(raw) // 2])  # a write torn half way: the older slot stands
    assert read_state(data)["workers"]["w1"] == {"n": 1}
    newest.write_bytes(raw.replace(b'"n":2', b'"n":7'))  # same length, other bytes
    assert read_state(data)["workers"]["w1"] == {"n": 1}
    older = tmp_path / STATES[(state["seq"] + 1) % 2]
    older.unlink()
    older.symlink_to(tmp_path / "elsewhere")  # not followed: replaced by the next write
    got = read_state(data)
    got["workers"]["w1"] = {"n": 3}
    write_state(data, got)
    assert not older.is_symlink() and not (tmp_path / "elsewhere").exists()
    assert read_state(data)["workers"]["w1"] == {"n": 3}


def test_the_daily_tally_agrees_with_the_ledger_across_beats_and_days(
    ctx: Ctx, clock: FixedClock
) -> None:
    from looop.spend import totals
    from looop.spend.record import append_cost
    from looop.spend.spent import read_state
    from looop.spend.statusspend import spent_today

    data = ctx.paths.data
    conv = "0b7e6a1c-1111-4222-8333-444455556666"
    _record(data, "w1", "claude --resume {{session_id}}", conv, started=clock.t - 100)
    proj = Path(ctx.env["HOME"]) / ".claude" / "projects" / "-tmp-x"
    proj.mkdir(parents=True)
    f = proj / f"{conv}.jsonl"
    budgeted = with_env(ctx, LOOOP_MAX_DAILY_USD="100")
    knobs = budgeted.knobs()

    def tallied() -> int:
        return totals.counted(read_state(str(data))["day"]["src"])[0]

    def ledger_says() -> int:
        return round(spent_today(str(ctx.paths.data), clock)[0] * 1_000_000)

    f.write_text(_claude_line("msg_1", 1000, 2000))
    m.meter_beat(budgeted, None, knobs)
    assert tallied() == ledger_says() > 0
    with f.open("a") as fh:  # the meter's own rows: added as written
        fh.write(_claude_line("msg_2", 10, 3000))
    m.meter_beat(budgeted, None, knobs)
    assert tallied() == ledger_says()
    # a decide's row lands between two beats, and another before the meter's own
    append_cost(ctx.paths.cost_ledger, clock.t, "tick", "tick-1", "claude", 0.125)
    m.meter_beat(budgeted, None, knobs)
    assert tallied() == ledger_says()
    append_cost(ctx.paths.cost_ledger, clock.t, "tick", "tick-2", "claude", 0.5)
    with f.open("a") as fh:
        fh.write(_claude_line("msg_3", 10, 1000))
    m.meter_beat(budgeted, None, knobs)
    assert tallied() == ledger_says()
    was = ledger_says()  # a worker's own word: $1 of a report, $2 of its day (totals.SAID_*)
    for _ in range(3):
        append_cost(ctx.paths.cost_ledger, clock.t, "worker", "w9", "x", 50.0, key="k-said-1")
        m.meter_beat(budgeted, None, knobs)
        assert tallied() == ledger_says()
    assert ledger_says() == was + 2_000_000
    clock.t += 86_400  # the next day starts from nothing
    m.meter_beat(budgeted, None, knobs)
    assert tallied() == ledger_says() == 0
