"""`looop status` reads the data dir through light readers (no pathlib, datetime, shlex); each
is held here to the full reader it stands in for, on good and damaged data dirs alike."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from looop.home.clock import Clock, SystemClock
from looop.home.config import CostSpec, Knobs, Runner, load_config, resolve_knobs
from looop.home.paths import Paths
from looop.home.sessionfiles import list_light
from looop.home.stamps import utc_stamp, utc_stamp_ms
from looop.home.store import write_json
from looop.sessions.state import list_sessions
from looop.spend import statusspend
from looop.spend.statusspend import start_refused
from looop.views import beatlog, status
from tests.clocks import FixedClock

DAY = 86400.0
NOW = 1_782_000_000.0  # a fixed moment, read in UTC and in a zone with DST


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def _ledger(data: Path, rows: list[tuple[float, Any]], extra: str = "") -> None:
    lines = [
        f'{{"ts":"{utc_stamp(t)}","kind":"tick","id":"r{i}","runner":"x","cost_usd":{usd}}}'
        for i, (t, usd) in enumerate(rows)
    ]
    (data / "cost.jsonl").write_text("\n".join(lines) + "\n" + extra)


def _knobs(**env: str) -> Knobs:
    return resolve_knobs(load_config(Path("/nonexistent/config.json")), env)


RUNNERS = [
    None,
    Runner("claude", "claude -p", None),
    Runner("codex", "env A=1 codex exec", None, CostSpec("jsonl", "/usage/cost", "total")),
    Runner("odd", "'my agent' -p", None),
]


def _clocks() -> Iterator[Clock]:
    from zoneinfo import ZoneInfo

    for t in (NOW, NOW + 0.4 * DAY, NOW + 0.9 * DAY):
        yield FixedClock(t)
        yield FixedClock(t, tz=ZoneInfo("America/New_York"))
        yield FixedClock(t, tz=ZoneInfo("Australia/Lord_Howe"))


DAMAGE: list[tuple[str, Any]] = [
    ("", None),
    (".cost-unmetered", {"count": 2, "sig": "claude|false|claude"}),
    (".cost-unmetered", {"count": 5, "sig": "claude|false|claude"}),
    (".cost-unmetered", {"count": 5, "sig": "another"}),
    (".cost-unmetered", {"count": -1, "sig": "claude|false|claude"}),
    (".cost-unmetered", "{broken"),
    (".decide-ledger.json", {"attempts": [NOW - 10.0, NOW - 7200.0]}),
    (".decide-ledger.json", {"attempts": [NOW - i for i in range(40)]}),
    (".decide-ledger.json", {"attempts": [NOW - 10.0, "x"]}),
    (".decide-ledger.json", {"attempts": [], "held_until": NOW + 100}),
    (".decide-ledger.json", {"attempts": [NOW + 5000.0]}),
    (".decide-ledger.json", "[]"),
    ("cost.jsonl", "dir"),
]


@pytest.mark.parametrize(("name", "content"), DAMAGE, ids=[f"{d[0]}={d[1]}"[:60] for d in DAMAGE])
@pytest.mark.parametrize("runner", RUNNERS, ids=lambda r: r.name if r else "none")
def test_the_spend_block_says_the_same_before_and_after_its_repair(
    tmp_path: Path, name: str, content: Any, runner: Runner | None
) -> None:
    for i, clock in enumerate(_clocks()):
        data = tmp_path / f"d{i}"
        data.mkdir()
        rows = [(NOW + k * 3600.0, 0.25) for k in range(-40, 40, 3)]
        now, old = utc_stamp(clock.now()), utc_stamp(NOW - 9 * DAY)
        odd = [
            '{"ts":"bad","cost_usd":1}',
            "nope",
            f'{{"x":{{"ts":"{old}"}},"t\\u0073":"{now}","cost_usd":0.5}}',  # an escaped key
            f'{{"cost_usd":0.3,"ts":"{old}","ts":"{now}"}}',  # the last of two keys counts
            f'{{"ts": "{now}", "cost_usd": 0.125}}',
            f'{{"ts":"{utc_stamp_ms(clock.now())}","cost_usd":0.0625}}',
            f'{{"ts":"{old}","cost_usd":7}}',
            f'{{"cost_usd":0.03125,"ts":"{now.replace("T", " ")}"}}',  # fromisoformat reads it
            f'{{"cost_usd":0.5,"ts":"{now[:5]}13{now[7:]}"}}',  # no month 13
            f'{{"cost_usd":0.5,"ts":"{now[:-1]}+"}}',
        ]
        _ledger(data, [*rows, (NOW, 1e9), (NOW, "1")], extra="\n".join(odd) + "\n")
        if content == "dir":
            (data / name).unlink()
            (data / name).mkdir()
        elif isinstance(content, str):
            (data / name).write_text(content)
        elif name:
            write_json(data / name, content)
        knobs = _knobs(LOOOP_MAX_DAILY_USD="2", LOOOP_MAX_DECIDES_PER_HOUR="30")
        said: list[Any] = []
        for _ in range(2):  # the first read repairs a corrupt state (fail closed): no change
            try:
                said.append(statusspend.spend_status(str(data), clock, knobs, runner))
            except Exception as e:
                said.append(repr(e))
        assert said[0] == said[1]


def test_the_spend_block_answers_the_plain_case(data: Path) -> None:
    noon = NOW + DAY / 2  # NOW is a UTC midnight
    clock = FixedClock(noon)
    _ledger(data, [(noon - 60, 0.5), (noon - 2 * DAY, 3.0)])
    got = statusspend.spend_status(str(data), clock, _knobs(), RUNNERS[1])
    assert got["spent_today_usd"] == 0.5


def _session(data: Path, sid: str, meta: Any, st: Any, **files: str) -> Path:
    sdir = data / "sessions" / sid
    sdir.mkdir(parents=True)
    if isinstance(meta, str):
        (sdir / "meta.json").write_text(meta)
    elif meta is not None:
        write_json(sdir / "meta.json", meta)
    if st is not None:
        write_json(sdir / "status.json", st)
    for name, text in files.items():
        if text == "dir":
            (sdir / name).mkdir()
        else:
            (sdir / name).write_text(text)
    return sdir


def _meta(sid: str, started: str = "2026-01-01T00:00:00.000Z") -> dict[str, Any]:
    return {"v": 1, "id": sid, "cmd": ["true"], "started_at": started}


def test_the_light_session_listing_is_list_sessions(data: Path) -> None:
    live = _session(data, "live", _meta("live"), {"state": "running", "last_change": "2026-03"})
    _session(data, "dead", _meta("dead"), {"state": "running", "last_change": "2026-02"})
    _session(data, "done", _meta("done"), {"state": "exited", "exit_code": 3}, note="⚑ look")
    _session(data, "ok", _meta("ok", "2026-05"), {"state": "exited", "exit_code": True})
    _session(data, "kill", _meta("kill"), {"state": "killed", "last_change": 7})
    _session(data, "odd", _meta("odd"), {"state": "paused"})
    _session(data, "nostatus", _meta("nostatus"), None)
    _session(data, "nometa", None, {"state": "running"})
    _session(data, "badmeta", "{", {"state": "running"})
    _session(data, "shape", {"id": 1, "cmd": []}, {"state": "running"})
    _session(data, "notedir", _meta("notedir"), {"state": "exited"}, note="dir")
    _session(data, "bad id", _meta("bad id"), {"state": "exited"})
    _session(data, "pulse", _meta("pulse"), {"state": "starting"})
    (data / "sessions" / "stray.txt").write_text("")
    fd = os.open(live / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        want = [
            {
                "id": s.id,
                "state": s.state,
                "alive": s.alive,
                "exit_code": s.exit_code,
                "label": s.label,
                "note": s.note,
                "started_at": s.started_at,
                "last_change": s.last_change,
                "dir": str(s.dir),
                "cwd": None,  # meta.json's, none here: where the web reads its git branch
                "contain": s.contain,
                "limit": None,  # no run here hit a bound (tests/integration/test_bounds.py)
                "prompt": s.prompt,
            }
            for s in list_sessions(data)
        ]
        assert list_light(str(data)) == want
        assert [w["id"] for w in want if w["alive"]] == ["live"]
        # `ls` without --all: the live ones alone, the same rows
        assert list_light(str(data), live_only=True) == [w for w in want if w["alive"]]
    finally:
        os.close(fd)
    assert list_light(str(data / "nowhere")) == list_sessions(data / "nowhere") == []


def test_goals_are_listed_as_pathlib_globs_them(data: Path) -> None:
    goals = data / "goals"
    goals.mkdir()
    for name in ("ship.md", "a.b.md", ".md", "..md", ".hidden.md", "x.MD", "notes.txt", "md"):
        (goals / name).write_text("")
    (goals / "sub.md").mkdir()
    (goals / "archive").mkdir()
    want = sorted(g.stem for g in goals.glob("*.md"))
    assert status._goals(str(data)) == want
    assert "ship" in want


def _status_world(data: Path, clock: Clock) -> None:
    now = clock.now()
    events = [
        {"ts": utc_stamp_ms(now - 300), "event": "tick_start"},
        {"ts": utc_stamp_ms(now - 290), "event": "decided", "action": "noop", "journal": "ok"},
        {"ts": utc_stamp_ms(now - 200), "event": "pulse_sleep", "until": utc_stamp(now + 60)},
    ]
    import json

    (data / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (data / "journal.md").write_text("one\ntwo\nthree\nfour\n")
    (data / ".last-tick-hash").write_text("abc123\n")
    _ledger(data, [(now - 10, 0.75)])


@pytest.mark.parametrize(
    "clock", [FixedClock(NOW + DAY / 2), SystemClock()], ids=["fixed", "system"]
)
def test_gather_status_over_strings_is_gather_status_over_paths(data: Path, clock: Clock) -> None:
    _status_world(data, clock)
    (data / "goals").mkdir()
    (data / "goals" / "ship.md").write_text("")
    via_paths = status.gather_status(Paths.at(data), {}, clock)
    via_strings = status.gather_status_at(str(data), str(data / "config.json"), {}, clock)
    via_paths["now"] = via_strings["now"]  # a system clock moves between the two reads
    assert via_strings == via_paths
    assert via_strings["last_beat"] is not None and via_strings["last_beat"]["outcome"] == "decided"
    assert via_strings["goals"] == ["ship"]
    spend = via_strings["spend"]
    assert spend is not None and "error" not in spend and spend["spent_today_usd"] == 0.75
    cfg = load_config(data / "config.json")
    assert spend == statusspend.spend_status(str(data), clock, resolve_knobs(cfg, {}), cfg.runner())


def test_status_shows_local_time_as_datetime_does(data: Path) -> None:
    clock = SystemClock()
    ts = 1_782_000_000.9999996  # rounds up to the next second, as datetime rounds it
    assert beatlog.local_text(clock, ts) == clock.local(ts).strftime(beatlog.TIME_FORMAT)


EVENT_NAMES = ["tick_start", "decide_start", "decided", "world_unchanged", "pulse_sleep"]
EVENT_NAMES += ["pulse_start", "tick_failed", "tick_crash", "budget_exceeded", "tell", "TORN"]


@pytest.mark.parametrize("seed", range(40))
def test_the_records_read_from_the_end_give_the_beat_all_records_give(
    data: Path, seed: int
) -> None:
    import json
    import random

    rnd = random.Random(seed)
    clock = FixedClock(NOW)
    lines = []
    quiet = rnd.random() < 0.5  # else busy workers: a beat start is rare, often far back
    names = EVENT_NAMES if quiet else ["tell", "TORN", "decided", "claim", "tick_start"]
    for i in range(rnd.randrange(0, 700)):
        ev = rnd.choice(names[:-1]) if not quiet and rnd.random() < 0.98 else rnd.choice(names)
        rec = {"ts": utc_stamp_ms(NOW - 600 + i), "event": ev, "until": utc_stamp(NOW + i)}
        lines.append("{torn" if ev == "TORN" else json.dumps(rec))
    (data / "events.jsonl").write_text("".join(line + "\n" for line in lines))
    window = lines[-beatlog.EVENTS_SCAN_LINES :]
    every = [r for r in (json.loads(x) for x in window if x != "{torn") if r]
    got = beatlog.beat_records(str(data))
    assert got == every[len(every) - len(got) :]
    for holding in (True, False):
        assert beatlog.last_beat(got, clock, holding) == beatlog.last_beat(every, clock, holding)
        assert beatlog.next_beat(got, clock, holding) == beatlog.next_beat(every, clock, holding)


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=60))
def test_spend_in_whole_micro_usd_is_the_exact_sum_of_the_ledgers_amounts(
    amounts: list[float],
) -> None:
    # rows carry amounts rounded to 6 places: their micro-USD add up to the exact sum, shown
    # as status shows it, whatever the order the running totals met them in
    import math

    from looop.spend.totals import micros

    rows = [round(a, 6) for a in amounts]
    got = sum(micros(a) for a in rows) / 1_000_000
    assert got == round(math.fsum(rows), 6)
    assert got == sum(micros(a) for a in reversed(rows)) / 1_000_000


@pytest.mark.parametrize("runner", [Runner("mine", "./my-agent", None), RUNNERS[1]])
def test_status_and_worker_start_read_one_budget(data: Path, runner: Runner) -> None:
    """At the default budget, a custom runner's home too: status says the budget is reached
    and names it, and a new worker is refused, from the one spend reading."""
    noon = NOW + DAY / 2
    clock = FixedClock(noon)
    _ledger(data, [(noon - 60, 6.0), (noon - 30, 4.5)])
    got = statusspend.spend_status(str(data), clock, _knobs(), runner)
    assert (got["max_daily_usd"], got["budget"]["open"]) == (10.0, True)
    why = start_refused(_knobs(), str(data), clock, "w2", lambda: "claude -p")
    assert why is not None and f"${got['spent_today_usd']:.2f}" in why
