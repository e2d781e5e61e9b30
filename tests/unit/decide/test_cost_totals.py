"""The ledger's running totals: today's spend from them is what a read of every row says, in
any zone; they are kept up on append, caught up past a writer that died before writing them,
rebuilt when missing, corrupt or another ledger's; and a reader of them never reads the rows
they already cover."""

from __future__ import annotations

import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from looop.home.clock import Clock
from looop.home.stamps import parse_utc, utc_stamp
from looop.home.store import append_line
from looop.spend import totals
from looop.spend.record import append_cost
from looop.spend.statusspend import spent_today
from tests.clocks import FixedClock

NOW = 1_782_000_000.0  # a UTC midnight
ZONES = ["UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Australia/Eucla"]


def _totals_say(data: str, clock: Clock) -> float | None:
    """Today's USD toward the daily budget from the running totals alone; None where they
    cannot say."""
    got = totals.today(data, clock)
    return None if got is None else totals.counted(got)[0] / 1_000_000


def _scan(ledger: Path, clock: Clock) -> float:
    """Today's spend as a reader of every row sums it (whole micro-USD)."""
    today = clock.local(clock.now()).date()
    got = 0
    for line in ledger.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        when = parse_utc(row["ts"])
        if when is not None and clock.local(when).date() == today:
            got += round(row["cost_usd"] * 1_000_000)
    return got / 1_000_000


def _rows(ledger: Path, n: int, end: float, seed: int = 1) -> None:
    rnd = random.Random(seed)
    for i in range(n):
        t = end - rnd.uniform(0, 40 * 3600)
        kind = rnd.choice(["tick", "session"])
        append_cost(ledger, t, kind, f"w{i % 3}", "claude", rnd.choice([0.01, 0.1234, 1.5]))


@pytest.mark.parametrize("zone", ZONES)
def test_today_from_the_totals_is_today_from_every_row(tmp_path: Path, zone: str) -> None:
    ledger = tmp_path / "cost.jsonl"
    _rows(ledger, 600, NOW + 13 * 3600)
    assert (tmp_path / totals.TOTALS).exists()
    for t in (NOW + 13 * 3600, NOW + 20 * 3600, NOW + 30 * 3600):
        clock = FixedClock(t, tz=ZoneInfo(zone))
        got = _totals_say(str(tmp_path), clock)
        assert got is not None
        assert got == _scan(ledger, clock)
        assert spent_today(str(tmp_path), clock)[0] == got
        assert spent_today(str(tmp_path), clock)[0] == got


def test_rows_a_writer_left_unfolded_still_count(tmp_path: Path) -> None:
    ledger = tmp_path / "cost.jsonl"
    clock = FixedClock(NOW + 12 * 3600)
    _rows(ledger, 200, clock.now())
    before = _totals_say(str(tmp_path), clock)
    # a writer that died after its row, before the totals (or one that never writes them)
    ts = utc_stamp(clock.now() - 60)
    row = {"cost_usd": 2.5, "id": "w9", "kind": "session", "runner": "x", "ts": ts}
    append_line(ledger, json.dumps(row))
    append_line(ledger, '{"cost_usd": 9, "ts": "half a li')  # torn: counts for nothing
    got = _totals_say(str(tmp_path), clock)
    assert before is not None and got == round(before + 2.5, 6) == _scan(ledger, clock)


def test_missing_corrupt_or_another_ledgers_totals_are_rebuilt(tmp_path: Path) -> None:
    ledger = tmp_path / "cost.jsonl"
    path = tmp_path / totals.TOTALS
    clock = FixedClock(NOW + 12 * 3600)
    _rows(ledger, 200, clock.now())
    want = _scan(ledger, clock)
    for spoil in ("missing", "corrupt", "replaced ledger", "shorter ledger"):
        if spoil == "missing":
            path.unlink()
        elif spoil == "corrupt":
            path.write_text('{"v": 1, "q": ')
        elif spoil == "replaced ledger":
            (tmp_path / "new.jsonl").write_text(ledger.read_text())
            (tmp_path / "new.jsonl").replace(ledger)  # the same rows, another file
        else:
            lines = ledger.read_text().splitlines(keepends=True)
            ledger.write_text("".join(lines[:100]))  # cut (a hand edit)
            want = _scan(ledger, clock)
        assert _totals_say(str(tmp_path), clock) is None, spoil  # no stale answer
        assert spent_today(str(tmp_path), clock)[0] == want  # status scans meanwhile
        # the pulse's budget check puts them back
        assert spent_today(str(tmp_path), clock)[0] == want
        assert _totals_say(str(tmp_path), clock) == want, spoil


def test_a_reader_never_reads_the_rows_the_totals_cover(tmp_path: Path) -> None:
    ledger = tmp_path / "cost.jsonl"
    clock = FixedClock(NOW + 12 * 3600)
    _rows(ledger, 3000, clock.now())
    want = _totals_say(str(tmp_path), clock)
    covered = json.loads((tmp_path / totals.TOTALS).read_text())["end"]
    assert covered > 0
    # overwrite the covered bytes in place (same file, same size): a reader that looked at
    # them would count nothing there; one that reads only the totals and the tail is unmoved
    with ledger.open("r+b") as f:
        f.write(b"x" * (covered - 1) + b"\n")
    assert _totals_say(str(tmp_path), clock) == want
    assert want is not None and want > 0


def test_a_reader_folds_at_most_a_few_dozen_rows_past_the_totals(tmp_path: Path) -> None:
    """Every `status` folds the rows appended since the totals were written: the writers keep
    that tail short (under 4 KiB: about 40 of looop's rows), whatever the row count."""
    ledger = tmp_path / "cost.jsonl"
    clock = FixedClock(NOW + 12 * 3600)
    longest = 0
    for i in range(300):
        append_cost(ledger, clock.now() - 60 * i, "session", f"w{i % 5}", "claude", 0.0123)
        covered = json.loads((tmp_path / totals.TOTALS).read_text())["end"]
        longest = max(longest, ledger.stat().st_size - covered)
    rows = len(ledger.read_bytes()[-longest:].splitlines()) if longest else 0
    assert longest < 4096 and rows <= 45, (longest, rows)
    assert _totals_say(str(tmp_path), clock) == _scan(ledger, clock)
