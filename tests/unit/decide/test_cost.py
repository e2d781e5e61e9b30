"""Spend control: meters per runner shape, the ledger, budgets, breakers, the report."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from looop.home.clock import Clock
from looop.home.config import CostSpec, Runner, parse_config, resolve_knobs
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.runners.presets import PRESETS
from looop.spend import parse_usd, usd
from looop.spend import report as report_module
from looop.spend.days import Days, Held
from looop.spend.meter import CostMeter
from looop.spend.prices import DEFAULT_PRICES, command_model, command_word
from looop.spend.record import append_cost
from looop.spend.report import GROUPINGS, SPANS, render_report
from looop.spend.statusspend import (
    DECIDE_HOLD_S,
    UNMETERED_LIMIT,
    clear_unmetered,
    daily_budget,
    decide_cap,
    note_decide,
    record_unmetered,
    runner_signature,
    spend_status,
    spent_today,
    unmetered_blocked,
)
from looop.spend.views import CostReport
from tests.clocks import FixedClock
from tests.helpers import cost_report, cost_reports

STREAMS = Path(__file__).parent / "streams"
REAL_STREAMS = Path(__file__).parents[2] / "realcli" / "streams"


def preset(name: str, tick: str | None = None, spec: CostSpec | None = None) -> Runner:
    return Runner(name, tick if tick is not None else PRESETS[name]["tick"], None, spec)


def feed_file(meter: CostMeter, path: Path) -> CostMeter:
    # As run_runner does: split raw bytes on newlines, decode lossily, feed every line.
    for raw in path.read_bytes().split(b"\n"):
        meter.feed(raw.decode("utf-8", "replace"))
    return meter


def feed_lines(meter: CostMeter, *events: object) -> CostMeter:
    for ev in events:
        meter.feed(ev if isinstance(ev, str) else json.dumps(ev, separators=(",", ":")))
    return meter


# ---------------------------------------------------------------- claude


def test_claude_meters_the_result_total_and_its_tokens() -> None:
    m = feed_file(CostMeter(preset("claude")), STREAMS / "claude_cost.jsonl")
    assert m.total() == pytest.approx(0.04213875)
    assert m.source == "claude"
    assert m.tokens == {"input": 16 + 6780 + 48238, "output": 166, "cached": 48238}


def test_claude_without_cost_is_unmetered_but_still_shows_tokens() -> None:
    m = feed_file(CostMeter(preset("claude")), STREAMS / "claude_nocost.jsonl")
    assert m.total() is None
    assert m.tokens["output"] == 166 and m.tokens["input"] > 0


def test_claude_total_is_cumulative_so_the_last_result_wins() -> None:
    m = feed_lines(
        CostMeter(preset("claude")),
        {"type": "result", "total_cost_usd": 0.5},
        {"type": "result", "total_cost_usd": 1.25},
    )
    assert m.total() == 1.25


def test_claude_total_wins_over_a_pi_sum_never_added() -> None:
    m = feed_lines(
        CostMeter(preset("pi")),
        {"type": "message_end", "message": {"usage": {"cost": {"total": 0.5}}}},
        {"type": "result", "total_cost_usd": 2.0},
    )
    assert m.total() == 2.0


def test_a_metered_zero_is_not_unmetered() -> None:
    m = feed_lines(CostMeter(preset("claude")), {"type": "result", "total_cost_usd": 0})
    assert m.total() == 0.0
    assert CostMeter(preset("claude")).total() is None


# ---------------------------------------------------------------- pi


def test_pi_sums_every_assistant_message_once_across_turns() -> None:
    m = feed_file(CostMeter(preset("pi")), STREAMS / "pi_turns.jsonl")
    # three assistant messages; turn_end, agent_end and message_update repeat them and must
    # not be counted again
    assert m.total() == pytest.approx(0.0175965 + 0.002673 + 0.00189525)
    assert m.source == "pi"
    assert m.tokens == {
        "input": (3 + 0 + 4210) + (5 + 4210 + 180) + (4 + 4390 + 95),
        "output": 120 + 48 + 14,
        "cached": 4210 + 4390,
    }


def _pi_msg(usd: float) -> dict[str, object]:
    return {"role": "assistant", "usage": {"input": 10, "output": 5, "cost": {"total": usd}}}


def test_pi_falls_back_to_turn_end_then_agent_end_without_adding_them() -> None:
    turns = feed_lines(
        CostMeter(preset("pi")),
        {"type": "turn_end", "message": _pi_msg(0.25), "toolResults": []},
        {"type": "turn_end", "message": _pi_msg(0.5), "toolResults": []},
        {"type": "agent_end", "messages": [_pi_msg(0.25), _pi_msg(0.5)]},
    )
    assert turns.total() == pytest.approx(0.75)
    only_agent = feed_lines(
        CostMeter(preset("pi")),
        {"type": "agent_end", "messages": [{"role": "user"}, _pi_msg(0.1), _pi_msg(0.2)]},
    )
    assert only_agent.total() == pytest.approx(0.3)


def test_pi_messages_without_cost_are_not_metering_events() -> None:
    m = feed_lines(
        CostMeter(preset("pi")),
        {"type": "message_end", "message": {"role": "user", "content": []}},
        {"type": "message_end", "message": {"role": "assistant", "usage": {"input": 3}}},
    )
    assert m.total() is None


# ---------------------------------------------------------------- codex


CODEX_IN, CODEX_CACHED, CODEX_OUT = 24763, 24448, 122


def _priced(row: dict[str, float], fresh: int, cached: int, out: int) -> float:
    return (fresh * row["input"] + cached * row["cached_input"] + out * row["output"]) / 1e6


def test_codex_tokens_are_priced_by_the_default_table() -> None:
    m = feed_file(CostMeter(preset("codex")), STREAMS / "codex.jsonl")
    row = DEFAULT_PRICES["default"]  # the preset names no model
    want = _priced(row, CODEX_IN - CODEX_CACHED, CODEX_CACHED, CODEX_OUT)
    assert m.total() == pytest.approx(want)
    assert 0 < want < 0.1  # a plausible single decide
    assert (m.source, m.model) == ("codex", "default")
    assert m.tokens == {"input": CODEX_IN, "output": CODEX_OUT, "cached": CODEX_CACHED}


def test_codex_price_from_config_overrides_the_builtin_row() -> None:
    tick = "codex exec --json --model gpt-5-codex -"
    prices = {"gpt-5-codex": {"input": 2.0, "output": 20.0, "cached_input": 0.5}}
    m = feed_file(CostMeter(preset("codex", tick), prices), STREAMS / "codex.jsonl")
    assert m.model == "gpt-5-codex"
    assert m.total() == pytest.approx((315 * 2.0 + 24448 * 0.5 + 122 * 20.0) / 1e6)
    # a partial override keeps the built-in fields it does not name
    partial = feed_file(
        CostMeter(preset("codex", tick), {"gpt-5-codex": {"output": 30.0}}),
        STREAMS / "codex.jsonl",
    )
    builtin = DEFAULT_PRICES["gpt-5-codex"]
    assert partial.total() == pytest.approx(
        _priced({**builtin, "output": 30.0}, 315, CODEX_CACHED, CODEX_OUT)
    )


def test_codex_unknown_model_is_priced_as_default() -> None:
    tick = "codex exec --json -m my-private-finetune"
    m = feed_file(CostMeter(preset("codex", tick)), STREAMS / "codex.jsonl")
    assert m.model == "default"
    want = _priced(DEFAULT_PRICES["default"], 315, CODEX_CACHED, CODEX_OUT)
    assert m.total() == pytest.approx(want)
    # and "default" itself can be re-priced from config
    cheap = {"default": {"input": 0.0, "output": 1.0, "cached_input": 0.0}}
    m2 = feed_file(CostMeter(preset("codex", tick), cheap), STREAMS / "codex.jsonl")
    assert m2.total() == pytest.approx(122 * 1.0 / 1e6)
    # a new model's row starts from "default" (the overridden one), whatever the key order
    mine = {"my-private-finetune": {"output": 2.0}, **cheap}
    m3 = feed_file(CostMeter(preset("codex", tick), mine), STREAMS / "codex.jsonl")
    assert (m3.model, m3.total()) == ("my-private-finetune", pytest.approx(122 * 2.0 / 1e6))


def test_codex_model_said_by_the_stream_beats_the_command() -> None:
    m = feed_lines(
        CostMeter(preset("codex", "codex exec --json -m gpt-5")),
        {"type": "thread.started", "thread_id": "s", "model": "o4-mini"},
        {
            "type": "turn.completed",
            "usage": {"input_tokens": 1000, "cached_input_tokens": 0, "output_tokens": 100},
        },
    )
    assert m.model == "o4-mini"
    assert m.total() == pytest.approx(_priced(DEFAULT_PRICES["o4-mini"], 1000, 0, 100))


@pytest.mark.parametrize(
    ("command", "model"),
    [
        ("codex exec --json --model gpt-5.1-codex -", "gpt-5.1-codex"),
        ("codex exec --json --model=o3 -", "o3"),
        ("codex exec -m o4-mini --json", "o4-mini"),
        ('codex exec -c model="gpt-5" --json', "gpt-5"),
        ("opencode run --model openai/gpt-5 --format json", "openai/gpt-5"),
        (PRESETS["codex"]["tick"], None),
        ("codex exec --json --model", None),
    ],
)
def test_the_model_is_read_from_the_tick_command(command: str, model: str | None) -> None:
    assert command_model(command) == model


def test_codex_usage_is_a_running_total_per_thread_summed_over_threads() -> None:
    usage = {"input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": 50}
    bigger = {"input_tokens": 3000, "cached_input_tokens": 1400, "output_tokens": 150}
    row = DEFAULT_PRICES["default"]
    one = feed_lines(
        CostMeter(preset("codex")),
        {"type": "thread.started", "thread_id": "t1"},
        {"type": "turn.completed", "usage": usage},
        {"type": "turn.completed", "usage": bigger},  # the thread's total so far, not a delta
    )
    assert one.total() == pytest.approx(_priced(row, 1600, 1400, 150))
    two = feed_lines(
        CostMeter(preset("codex")),
        {"type": "thread.started", "thread_id": "t1"},
        {"type": "turn.completed", "usage": usage},
        {"type": "thread.started", "thread_id": "t2"},
        {"type": "turn.completed", "usage": usage},
    )
    assert two.total() == pytest.approx(2 * _priced(row, 600, 400, 50))


# ---------------------------------------------------------------- opencode


def test_opencode_sums_the_cost_of_each_step() -> None:
    m = feed_file(CostMeter(preset("opencode")), STREAMS / "opencode.jsonl")
    assert m.total() == pytest.approx(0.0131175 + 0.0021852)
    assert m.source == "opencode"
    assert m.tokens == {"input": 2 + 3120 + 4 + 3120 + 260, "output": 95 + 31, "cached": 3120}


def test_opencode_tokens_are_priced_when_it_knows_no_price() -> None:
    tick = "opencode run --model openai/gpt-5 --format json"
    step = {
        "type": "step_finish",
        "part": {
            "type": "step-finish",
            "cost": 0,
            "tokens": {"input": 2000, "output": 300, "reasoning": 100, "cache": {"read": 8000}},
        },
    }
    m = feed_lines(CostMeter(preset("opencode", tick)), step)
    assert m.model == "gpt-5"
    assert m.total() == pytest.approx(_priced(DEFAULT_PRICES["gpt-5"], 2000, 8000, 400))
    free = {"type": "step_finish", "part": {"type": "step-finish", "cost": 0}}
    assert feed_lines(CostMeter(preset("opencode")), free).total() == 0.0


# ---------------------------------------------------------------- custom spec


def test_custom_spec_sum_mode_counts_only_its_type_and_ignores_builtins() -> None:
    spec = CostSpec("usage", "/cost/usd", "sum")
    m = feed_lines(
        CostMeter(preset("claude", "my-agent --json", spec)),
        {"type": "usage", "cost": {"usd": 0.25}},
        {"type": "result", "total_cost_usd": 9.0},  # built-in shape: ignored with a spec
        {"type": "other", "cost": {"usd": 5.0}},
        {"type": "usage", "cost": {"usd": "0.1"}},  # not a number
        {"type": "usage", "cost": {"usd": 0.5}},
    )
    assert m.total() == pytest.approx(0.75)
    assert feed_lines(CostMeter(preset("claude", "x", spec)), {"type": "result"}).total() is None


def test_custom_spec_total_mode_keeps_the_last_value() -> None:
    spec = CostSpec("stats", "/run/total", "total")
    m = feed_lines(
        CostMeter(Runner("mine", "my-agent", None, spec)),
        {"type": "stats", "run": {"total": 1.0}},
        {"type": "stats", "run": {"total": 2.5}},
    )
    assert m.total() == 2.5


def test_custom_spec_pointer_escapes_and_array_indexes() -> None:
    spec = CostSpec("bill", "/a~1b/1/c~0d", "sum")
    m = feed_lines(
        CostMeter(Runner("mine", "my-agent", None, spec)),
        {"type": "bill", "a/b": [{"c~d": 9.0}, {"c~d": 0.125}]},
        {"type": "bill", "a/b": [{"c~d": 9.0}]},  # index out of range
        {"type": "bill", "a/b": {"1": {"c~d": 0.5}}},  # an object key "1" is fine too
    )
    assert m.total() == pytest.approx(0.625)
    leading_zero = CostMeter(Runner("mine", "x", None, CostSpec("bill", "/a/01", "sum")))
    assert feed_lines(leading_zero, {"type": "bill", "a": [1.0, 2.0]}).total() is None


def test_json_in_any_layout_is_still_metered() -> None:
    # Python's json.dumps: spaces, and "type" not first
    spec = CostSpec("usage", "/usd", "sum")
    m = CostMeter(Runner("mine", "agent.py", None, spec))
    m.feed(json.dumps({"usd": 0.5, "type": "usage"}))
    m.feed(json.dumps({"type": "usage", "usd": 0.25}))
    assert m.total() == pytest.approx(0.75)
    claude = CostMeter(preset("claude"))
    claude.feed('  {"session_id": "x", "total_cost_usd": 0.3, "type": "result"}\r')
    assert claude.total() == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("kind", "lines", "want"),
    [
        # a short type must not swallow or be swallowed by longer ones
        ("ab", ['{"type":"ab","usd":1}', '{"type":"abc","usd":2}', '{"type":"a","usd":4}'], 1),
        # a type a JSON writer escapes ("/" may be "\/", non-ASCII may be "\u00fb")
        ("co\u00fbt/run", ['{"type":"co\\u00fbt\\/run","usd":0.5}', '{"type":"x","usd":1}'], 0.5),
    ],
)
def test_spec_types_are_matched_exactly_however_written(
    kind: str, lines: list[str], want: float
) -> None:
    m = CostMeter(Runner("mine", "agent", None, CostSpec(kind, "/usd", "sum")))
    for line in lines:
        m.feed(line)
    assert m.total() == want


# ---------------------------------------------------------------- bad input


def test_garbage_never_raises_and_meters_nothing() -> None:
    m = feed_file(CostMeter(preset("claude")), STREAMS / "garbage.bin")
    assert m.total() is None
    for odd in (None, 42, b'{"type":"result","total_cost_usd":1}', '{"a":' * 100_000):
        m.feed(odd)  # type: ignore[arg-type]
    assert m.total() is None
    spec = CostMeter(Runner("mine", "x", None, CostSpec("result", "/total_cost_usd", "sum")))
    assert feed_file(spec, STREAMS / "garbage.bin").total() is None


@pytest.mark.parametrize(
    "amount",
    ["NaN", "Infinity", "-Infinity", "-0.25", "1e400", "123456789012.5", "true", '"0.5"', "[1]"],
)
def test_impossible_amounts_are_rejected(amount: str) -> None:
    m = CostMeter(preset("claude"))
    m.feed('{"type":"result","total_cost_usd":' + amount + "}")
    assert m.total() is None
    m.feed('{"type":"result","total_cost_usd":0.75}')
    assert m.total() == 0.75


def test_a_line_with_invalid_utf8_still_meters_after_lossy_decoding() -> None:
    raw = b'{"type":"result","result":"caf\xe9 \xff\xfe done","total_cost_usd":0.5}'
    m = CostMeter(preset("claude"))
    m.feed(raw.decode("utf-8", "replace"))
    assert m.total() == 0.5


def test_huge_token_counts_are_ignored_not_priced() -> None:
    m = feed_lines(
        CostMeter(preset("codex")),
        {"type": "turn.completed", "usage": {"input_tokens": 10**30, "output_tokens": 10**30}},
    )
    assert m.total() is None


# ---------------------------------------------------------------- ledger


def test_record_cost_appends_only_positive_finite_amounts(paths: Paths) -> None:
    for bad in (0.0, -1.0, math.nan, math.inf, 1e-9, 1e12):
        assert not append_cost(paths.cost_ledger, 1_750_000_000.0, "tick", "t", "pi", bad)
    assert not paths.cost_ledger.exists()
    assert append_cost(paths.cost_ledger, 1_750_000_042.7, "tick", "tick-1", "pi", 0.01234567)
    line = paths.cost_ledger.read_text().splitlines()[0]
    assert line == (
        '{"cost_usd":0.012346,"id":"tick-1","kind":"tick","runner":"pi",'
        '"ts":"2025-06-15T15:07:22Z"}'
    )


def test_a_corrupt_ledger_line_is_skipped_and_counted(paths: Paths) -> None:
    append_cost(paths.cost_ledger, 1_750_000_000.0, "tick", "a", "pi", 0.5)
    with paths.cost_ledger.open("a") as f:
        f.write("{not json\n\n[]\n")
        f.write('{"cost_usd":"x","ts":"2025-06-15T15:06:40Z"}\n')
        f.write('{"cost_usd":1,"ts":"yesterday"}\n')
        f.write('{"cost_usd":0.25,"kind":"session","id":"w1","runner":"claude",')  # torn
        f.write("\n")
    append_cost(paths.cost_ledger, 1_750_000_100.0, "session", "w1", "claude", 0.25)
    (rep,) = report_module.reports_at(str(paths.data), FixedClock(), [("all", "kind")])
    assert (rep["total"], rep["calls"], rep["corrupt_lines"]) == (0.75, 2, 5)


def _ts(tz: timezone, y: int, mo: int, d: int, h: int, mi: int) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    "tz", [timezone(timedelta(hours=-7), "PDT"), timezone(timedelta(hours=14), "LINT")]
)
def test_the_day_rolls_over_at_local_midnight(paths: Paths, tz: timezone) -> None:
    clock = FixedClock(t=_ts(tz, 2025, 6, 15, 12, 0), tz=tz)
    append_cost(paths.cost_ledger, _ts(tz, 2025, 6, 14, 23, 30), "tick", "late", "pi", 0.5)
    append_cost(paths.cost_ledger, _ts(tz, 2025, 6, 15, 0, 10), "tick", "early", "pi", 0.25)
    append_cost(paths.cost_ledger, _ts(tz, 2025, 6, 15, 11, 0), "session", "w", "pi", 1.0)
    append_cost(paths.cost_ledger, _ts(tz, 2000, 1, 1, 12, 0), "tick", "old", "pi", 9.0)
    # every row above is on another UTC date than its local one in at least one of the zones
    assert spent_today(str(paths.data), clock)[0] == pytest.approx(1.25)
    clock.t = _ts(tz, 2025, 6, 15, 23, 59)
    assert spent_today(str(paths.data), clock)[0] == pytest.approx(1.25)
    clock.t = _ts(tz, 2025, 6, 16, 0, 1)
    assert spent_today(str(paths.data), clock)[0] == 0.0


def test_spent_today_follows_dst_in_a_named_zone(paths: Paths) -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        tz = zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no tz database")
    # 2025-03-30: clocks jump 02:00 -> 03:00; the local day is 23 hours long
    clock = FixedClock(t=datetime(2025, 3, 30, 12, 0, tzinfo=tz).timestamp(), tz=tz)
    for (d, h, mi), paid in (((29, 23, 30), 1.0), ((30, 0, 10), 2.0), ((30, 23, 50), 4.0)):
        at = datetime(2025, 3, d, h, mi, tzinfo=tz).timestamp()
        append_cost(paths.cost_ledger, at, "tick", f"t{d}{h}", "pi", paid)
    assert spent_today(str(paths.data), clock)[0] == 6.0


def test_daily_budget_is_off_at_or_below_zero() -> None:
    def budget(raw: dict[str, object], env: dict[str, str] | None = None) -> float | None:
        cfg = parse_config({"tick": "x", **raw}, "c.json")
        return daily_budget(resolve_knobs(cfg, env or {}))

    assert budget({}) == 10.0
    assert budget({"max_daily_usd": 5}) == 5.0
    assert budget({"max_daily_usd": 0}) is None
    assert budget({"max_daily_usd": -1}) is None
    assert budget({"max_daily_usd": 5}, {"LOOOP_MAX_DAILY_USD": "0"}) is None
    assert budget({}, {"LOOOP_MAX_DAILY_USD": "2.5"}) == 2.5


def test_price_rows_in_config_are_validated() -> None:
    parse_config({"tick": "x", "prices": {"gpt-5": {"input": 1, "cached_input": 0}}}, "c.json")
    with pytest.raises(LooopError, match=r"prices\.gpt-5\.inptu"):
        parse_config({"tick": "x", "prices": {"gpt-5": {"inptu": 1}}}, "c.json")
    with pytest.raises(LooopError, match=r"prices\.x\.output"):
        parse_config({"tick": "x", "prices": {"x": {"output": -2}}}, "c.json")


# ---------------------------------------------------------------- unmetered breaker


def test_unmetered_counter_climbs_per_signature_and_opens_at_the_limit(paths: Paths) -> None:
    sig = runner_signature(preset("codex"))
    assert not unmetered_blocked(str(paths.data), sig)
    assert [record_unmetered(str(paths.data), sig) for _ in range(3)] == [1, 2, 3]
    assert unmetered_blocked(str(paths.data), sig)
    other = runner_signature(preset("pi"))
    assert not unmetered_blocked(str(paths.data), other)  # changing the runner heals
    assert record_unmetered(str(paths.data), other) == 1
    assert not unmetered_blocked(str(paths.data), sig)
    record_unmetered(str(paths.data), other)
    clear_unmetered(str(paths.data))
    assert record_unmetered(str(paths.data), other) == 1


def test_a_corrupt_unmetered_counter_fails_closed_and_heals_on_change(paths: Paths) -> None:
    paths.cost_unmetered.write_text("{torn")
    sig = runner_signature(preset("codex"))
    assert unmetered_blocked(str(paths.data), sig)
    assert unmetered_blocked(str(paths.data), sig)  # repaired, still closed
    assert not unmetered_blocked(str(paths.data), runner_signature(preset("pi")))
    paths.cost_unmetered.write_text('{"count":"two","sig":5}')
    assert record_unmetered(str(paths.data), sig) == UNMETERED_LIMIT


def test_the_signature_changes_with_what_the_meter_can_read() -> None:
    base = runner_signature(preset("codex"))
    assert base.startswith("codex|false|codex")
    assert runner_signature(Runner("codex", "claude -p", None)) != base
    spec = CostSpec("usage", "/usd", "sum")
    assert runner_signature(preset("codex", spec=spec)).startswith("codex|true|")
    assert runner_signature(preset("codex", spec=CostSpec("usage", "/x", "sum"))) != (
        runner_signature(preset("codex", spec=spec))
    )
    # the model only changes the price, not whether the stream is metered
    model = Runner("codex", PRESETS["codex"]["tick"] + " -m o3", None)
    assert runner_signature(model) == base
    assert command_word("FOO=1 env BAR=2 /usr/local/bin/pi -p") == "pi"


# ---------------------------------------------------------------- hourly decide cap


def test_decides_are_counted_over_a_rolling_hour(paths: Paths) -> None:
    t0 = 1_750_000_000.0
    for i in range(5):
        note_decide(str(paths.data), t0 + i * 600)  # 0, 10, 20, 30, 40 minutes
    now = t0 + 2400
    assert decide_cap(str(paths.data), now)[0] == 5
    assert decide_cap(str(paths.data), now, cap=5)[1] == 1200  # the first one ages out at +60 min
    assert decide_cap(str(paths.data), now, cap=6)[1] == 0
    assert decide_cap(str(paths.data), t0 + 3600)[0] == 4  # exactly an hour old: gone
    assert decide_cap(str(paths.data), t0 + 3600 + 1700)[0] == 2  # the 30 and 40 min ones
    note_decide(str(paths.data), t0 + 7200)
    kept = json.loads(paths.decide_ledger.read_text())["attempts"]
    assert kept == [t0 + 7200]  # old entries are pruned from the file


def test_a_corrupt_decide_ledger_fails_closed_and_repairs(paths: Paths) -> None:
    t0 = 1_750_000_000.0
    paths.decide_ledger.write_text("not json")
    assert decide_cap(str(paths.data), t0, cap=120)[0] >= 120
    assert decide_cap(str(paths.data), t0)[0] >= 120  # held closed even without the cap
    assert json.loads(paths.decide_ledger.read_text())["attempts"] == []
    assert decide_cap(str(paths.data), t0 + 60, cap=120)[1] == DECIDE_HOLD_S - 60
    assert decide_cap(str(paths.data), t0 + DECIDE_HOLD_S, cap=120)[0] == 0
    paths.decide_ledger.write_text('{"attempts":["x"]}')
    note_decide(str(paths.data), t0)  # never raises; counts as held
    assert decide_cap(str(paths.data), t0 + 1, cap=3)[0] >= 3


# ---------------------------------------------------------------- report


@pytest.mark.parametrize(
    ("x", "shown"),
    [
        (0.0, "$0"),
        (-0.0, "$0"),
        (1.0, "$1"),
        (1.5, "$1.5"),
        (0.12345, "$0.1235"),
        (0.00004, "$0"),
        (12.34, "$12.34"),
    ],
)
def test_usd_format(x: float, shown: str) -> None:
    assert usd(x) == shown


def _report_fixture(paths: Paths) -> FixedClock:
    clock = FixedClock(t=datetime(2025, 6, 15, 12, 0, tzinfo=UTC).timestamp())
    day = 86400.0
    now = clock.t
    append_cost(paths.cost_ledger, now - 60, "tick", "tick-a", "claude", 0.5)
    append_cost(paths.cost_ledger, now - 120, "session", "fix-ci", "claude", 2.0)
    append_cost(paths.cost_ledger, now - 1 * day, "tick", "tick-b", "pi", 0.25)
    append_cost(paths.cost_ledger, now - 6 * day, "session", "docs", "codex", 1.0)
    append_cost(paths.cost_ledger, now - 30 * day, "tick", "tick-c", "pi", 8.0)
    with paths.cost_ledger.open("a") as f:
        f.write("garbage\n")
    return clock


def test_cost_report_spans_and_groupings(paths: Paths) -> None:
    clock = _report_fixture(paths)
    today = cost_report(paths, clock, "today", "kind")
    assert (today["total"], today["calls"], today["from"]) == (2.5, 2, "2025-06-15")
    assert today["groups"] == [
        {"key": "session", "usd": 2.0, "calls": 1},
        {"key": "tick", "usd": 0.5, "calls": 1},
    ]
    assert today["corrupt_lines"] == 1
    week = cost_report(paths, clock, "week", "runner")
    assert (week["total"], week["from"]) == (3.75, "2025-06-09")
    assert {g["key"]: g["usd"] for g in week["groups"]} == {
        "claude": 2.5,
        "pi": 0.25,
        "codex": 1.0,
    }
    workers = cost_report(paths, clock, "all", "worker")
    assert {g["key"]: g["usd"] for g in workers["groups"]} == {
        "(ticks)": 8.75,
        "docs": 1.0,
        "fix-ci": 2.0,
    }
    days = cost_report(paths, clock, "week", "day")
    assert [g["key"] for g in days["groups"]] == ["2025-06-09", "2025-06-14", "2025-06-15"]
    text = render_report(today)
    assert "today (2025-06-15 local)" in text
    assert "total: $2.5  (2 calls)" in text
    assert "session" in text and "$2" in text
    assert "1 corrupt ledger line skipped" in text


def test_cost_reports_read_the_day_totals_once_for_many_groupings(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _report_fixture(paths)
    asks = [(span, by) for span in SPANS for by in GROUPINGS]
    one_by_one = [cost_report(paths, clock, span, by) for span, by in asks]
    reads: list[str] = []
    real = report_module.day_totals

    def counted(data: str, c: Clock, held: Held | None = None, since: str = "") -> Days:
        reads.append(data)
        return real(data, c, held, since)

    monkeypatch.setattr(report_module, "day_totals", counted)
    assert cost_reports(paths, clock, asks) == one_by_one
    assert len(reads) == 1
    with pytest.raises(LooopError, match="span"):
        cost_reports(paths, clock, [("today", "kind"), ("month", "kind")])


def test_cost_report_without_a_ledger_and_bad_arguments(paths: Paths, clock: FixedClock) -> None:
    rep = cost_report(paths, clock, "all", "kind")
    assert (rep["total"], rep["calls"], rep["exists"]) == (0, 0, False)
    text = render_report(rep)
    assert "no cost recorded yet" in text and str(paths.cost_ledger) in text
    with pytest.raises(LooopError, match="span"):
        cost_report(paths, clock, "month", "kind")
    with pytest.raises(LooopError, match="--by"):
        cost_report(paths, clock, "all", "colour")


def test_cost_report_is_data_not_text(paths: Paths) -> None:
    # The room returns numbers and keys; dollars and column layout are cli/'s job.
    clock = _report_fixture(paths)
    for span in SPANS:
        for by in GROUPINGS:
            rep = cost_report(paths, clock, span, by)
            assert json.loads(json.dumps(rep)) == rep  # plain JSON types, nothing to render
            assert isinstance(rep["total"], float) and isinstance(rep["calls"], int)
            for g in rep["groups"]:
                assert isinstance(g["usd"], float) and not g["key"].startswith("$")
            strings = [v for v in rep.values() if isinstance(v, str)]
            assert not any("$" in s or "\n" in s or "looop cost" in s for s in strings)


def test_cli_renders_a_report_in_aligned_columns() -> None:
    rep: CostReport = {
        "span": "week",
        "by": "runner",
        "from": "2025-06-09",
        "to": "2025-06-15",
        "total": 1236.123457,
        "calls": 1,
        "groups": [
            {"key": "claude", "usd": 1234.5, "calls": 1},
            {"key": "a-much-longer-runner", "usd": 1.623457, "calls": 12},
        ],
        "corrupt_lines": 2,
        "ledger": "/d/cost.jsonl",
        "exists": True,
    }
    assert render_report(rep) == (
        "looop cost — last 7 days (2025-06-09 to 2025-06-15 local)\n"
        "  total: $1236.1235  (1 call)\n"
        "  by runner:\n"
        "    claude                   $1234.5  (1)\n"
        "    a-much-longer-runner     $1.6235  (12)\n"
        "  ! 2 corrupt ledger lines skipped in /d/cost.jsonl"
    )
    rep.update(span="all", calls=0, total=0.0, groups=[], corrupt_lines=0)
    assert render_report(rep) == "looop cost — all time\n  total: $0  (0 calls)"


# ---------------------------------------------------------------- real CLI recordings


def _real_streams() -> list[Path]:
    return sorted(REAL_STREAMS.glob("*.jsonl")) if REAL_STREAMS.is_dir() else []


@pytest.mark.parametrize("path", _real_streams(), ids=lambda p: p.stem)
def test_streams_recorded_from_the_real_clis(path: Path) -> None:
    # <cli>-<scenario>.jsonl, recorded from the real CLI against the scripted model server
    cli, _, scenario = path.stem.partition("-")
    runner = preset(cli) if cli in PRESETS else Runner(cli, cli, None)
    m = feed_file(CostMeter(runner), path)
    got = m.total()
    if scenario in ("decide", "no_decision"):  # the model answered: money was spent
        assert got is not None and got > 0, f"{path.name}: nothing metered ({got})"
        assert m.source == cli and m.tokens["output"] > 0
    elif scenario in ("auth", "http500"):  # refused before any model work
        assert got is None or got == 0, f"{path.name}: metered {got}"
    else:  # a run that broke midway: whatever it reports, spend comes with tokens
        assert got is None or got == 0 or m.tokens["input"] > 0, f"{path.name}: {got}"


# ---------------------------------------------------------------- status and self-reports


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0.42", 0.42),
        ("$1.5", 1.5),
        (" 2 ", 2.0),
        ("0", 0.0),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("1e9", None),
        ("abc", None),
        ("", None),
    ],
)
def test_parse_usd_for_worker_self_reports(text: str, want: float | None) -> None:
    assert parse_usd(text) == want


def test_spend_status_shows_each_breaker_and_how_to_lift_it(paths: Paths) -> None:
    clock = FixedClock(t=1_750_000_000.0)
    cfg = parse_config({"tick": "codex exec --json", "runner": "codex", "max_daily_usd": 1}, "c")
    runner = cfg.runner()
    assert runner is not None
    knobs = resolve_knobs(cfg, {"LOOOP_MAX_DECIDES_PER_HOUR": "2"})
    quiet = spend_status(str(paths.data), clock, knobs, runner)
    assert quiet["spent_today_usd"] == 0 and quiet["max_daily_usd"] == 1.0
    assert not any(quiet[k]["open"] for k in ("budget", "unmetered", "decides"))
    append_cost(paths.cost_ledger, clock.t - 10, "session", "w1", "claude", 1.25)
    for _ in range(3):
        record_unmetered(str(paths.data), runner_signature(runner))
    note_decide(str(paths.data), clock.t - 100)
    note_decide(str(paths.data), clock.t - 50)
    st = spend_status(str(paths.data), clock, knobs, runner)
    assert st["spent_today_usd"] == 1.25
    assert st["budget"]["open"] and "LOOOP_MAX_DAILY_USD" in st["budget"]["lift"]
    assert st["unmetered"]["open"] and "runners.codex.cost" in st["unmetered"]["lift"]
    assert st["decides"]["open"] and st["decides"]["retry_in_s"] == 3600 - 100
    assert "LOOOP_MAX_DECIDES_PER_HOUR" in st["decides"]["lift"]
    off = resolve_knobs(cfg, {"LOOOP_MAX_DAILY_USD": "0", "LOOOP_MAX_DECIDES_PER_HOUR": "0"})
    st_off = spend_status(str(paths.data), clock, off, runner)
    assert st_off["max_daily_usd"] is None
    assert not any(st_off[k]["open"] for k in ("budget", "unmetered", "decides"))
