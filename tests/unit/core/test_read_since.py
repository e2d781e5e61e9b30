"""Today's spend from a ledger with months of history reads only its last day or so
(store.read_since), and still counts every row of today a full read would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from looop.home.clock import Clock
from looop.home.config import load_config, resolve_knobs
from looop.home.stamps import parse_utc, utc_stamp
from looop.home.store import read_since
from looop.spend import statusspend
from looop.spend.record import append_cost
from tests.clocks import FixedClock

DAY = 86400.0
NOW = 1_782_000_000.0


def _clocks() -> Iterator[Clock]:
    for t in (NOW, NOW + 0.3 * DAY, NOW + 0.97 * DAY):
        yield FixedClock(t)
        yield FixedClock(t, tz=ZoneInfo("America/New_York"))
        yield FixedClock(t, tz=ZoneInfo("Pacific/Kiritimati"))  # UTC+14
        yield FixedClock(t, tz=ZoneInfo("Pacific/Pago_Pago"))  # UTC-11


def _history(ledger: Path, end: float, days: int = 40, every: float = 600.0) -> None:
    """A ledger as looop appends it: a row every `every` seconds for `days` days up to `end`,
    amounts varying so a missed or doubled row changes the sum."""
    t = end - days * DAY
    i = 0
    while t <= end:
        append_cost(ledger, t, "tick", f"r{i}", "claude", 0.001 * (1 + i % 7))
        t += every
        i += 1


class _FullRead:
    """Today's spend as a reader of the whole ledger sums it, row by row (in whole micro-USD,
    the ledger's grain, so the sum is exact in any order). The rows are read once and summed by
    local date once for each zone: 12 clocks over 25,000 rows cost seconds otherwise."""

    def __init__(self, ledger: Path) -> None:
        import json

        self.rows: list[tuple[float, int]] = []
        for line in ledger.read_text().splitlines():
            row = json.loads(line)
            when = parse_utc(row["ts"])
            if when is not None:
                self.rows.append((when, round(row["cost_usd"] * 1_000_000)))
        self.days: dict[str, dict[object, int]] = {}

    def today(self, clock: Clock) -> float:
        zone = str(clock.zone())
        if zone not in self.days:
            days: dict[object, int] = {}
            for when, micro in self.rows:
                day = clock.local(when).date()
                days[day] = days.get(day, 0) + micro
            self.days[zone] = days
        return self.days[zone].get(clock.local(clock.now()).date(), 0) / 1_000_000


def _full_read_today(ledger: Path, clock: Clock) -> float:
    return _FullRead(ledger).today(clock)


def test_read_since_reads_the_tail_from_a_line_start_and_no_further_than_needed(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "rows.jsonl"  # looop's rows in one file: cost.jsonl moves each month
    _history(ledger, NOW)
    cut = utc_stamp(NOW - 1.5 * DAY)
    text = read_since(ledger, cut)
    assert text is not None
    whole = ledger.read_text()
    assert whole.endswith(text) and whole[len(whole) - len(text) - 1] == "\n"
    # every row at or after the cut is there, and little before it
    rows = text.splitlines()
    newer = [ln for ln in whole.splitlines() if ln.split('"ts":"')[1][:20] >= cut]
    assert rows[-len(newer) :] == newer
    assert len(rows) - len(newer) <= 2 * 16384 // 80
    assert len(text) < len(whole) / 10


def test_read_since_reads_everything_it_cannot_date(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    assert read_since(path, "2026-01-01T00:00:00Z") is None  # missing
    lines = [f'{{"n":{i},"ts":"{utc_stamp(NOW - i)[:10]} 00:00:00Z"}}' for i in range(5000)]
    path.write_text("\n".join(lines) + "\n")
    assert read_since(path, utc_stamp(NOW)) == path.read_text()


@pytest.mark.parametrize(
    "every",
    [600.0, pytest.param(7.0, marks=pytest.mark.slow)],  # a day at 7 s: 12,000 rows, seconds
    ids=["a-row-per-10min", "a-row-per-7s"],
)
def test_today_from_the_tail_is_today_from_the_whole_ledger(tmp_path: Path, every: float) -> None:
    ledger = tmp_path / "cost.jsonl"
    # at 7 s, two days: from before the earliest local today (UTC-11 at NOW) to the last row
    _history(ledger, NOW + DAY, days=40 if every > 60 else 2, every=every)
    knobs = resolve_knobs(load_config(tmp_path / "none.json"), {})
    full = _FullRead(ledger)
    for clock in _clocks():
        want = full.today(clock)
        assert want > 0
        assert statusspend.spent_today(str(tmp_path), clock)[0] == want
        got = statusspend.spend_status(str(tmp_path), clock, knobs, None)
        assert got is not None and got["spent_today_usd"] == round(want, 6)


def test_a_row_of_today_among_older_ones_near_the_end_still_counts(tmp_path: Path) -> None:
    ledger = tmp_path / "cost.jsonl"
    clock = FixedClock(NOW + DAY / 2)  # NOW is a UTC midnight
    _history(ledger, NOW - 2 * DAY, days=30)  # nothing of today yet
    append_cost(ledger, clock.now() - 60, "session", "w1", "claude", 0.5)  # a row of today …
    for i in range(100):  # … then older rows (a clock set back for a while)
        append_cost(ledger, NOW - 2 * DAY + i, "tick", f"late{i}", "claude", 0.001)
    assert (
        statusspend.spent_today(str(tmp_path), clock)[0] == 0.5 == _full_read_today(ledger, clock)
    )
