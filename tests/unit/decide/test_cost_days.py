"""Spend reads cost what the window holds: `looop cost`, the web's cost read and /metrics answer
from the day totals, not by re-reading the ledger; the ledger rotates into grep-able month
files and every row stays counted once; stale totals (any reader, budget or none) are rebuilt
once and written; a row whose writer died before the totals still counts, once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from looop.decide.cost.report import cost_report, cost_reports
from looop.home.cost import days, rotate, totals
from looop.home.cost.ledger import spent_on_day
from looop.home.cost.record import append_cost, append_costs, keyed_row
from looop.home.cost.statusspend import _spent_today
from looop.home.paths import Paths
from looop.home.stamps import utc_stamp
from looop.home.store import append_line
from tests.clocks import FixedClock

JAN_30 = 1_769_731_200.0  # 2026-01-30T00:00:00Z
DAY = 86400.0


def _every_row(data: Path) -> tuple[int, int]:
    """(micro-USD, rows) of every line in every ledger file, as a reader of all of them adds."""
    usd = n = 0
    for f in [*sorted((data / "cost").glob("*.jsonl")), data / "cost.jsonl"]:
        if not f.exists():
            continue
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            usd += round(row["cost_usd"] * 1_000_000)
            n += 1
    return usd, n


def _fill(data: Path, start: float, hours: int, usd: float = 0.01) -> None:
    for h in range(hours):
        append_cost(data / "cost.jsonl", start + h * 3600, "session", f"w{h % 4}", "claude", usd)


def test_a_month_ends_in_its_own_file_every_row_counted_once(tmp_path: Path) -> None:
    data = tmp_path
    _fill(data, JAN_30, 48)  # Jan 30 and 31
    clock = FixedClock(JAN_30 + 2 * DAY + 3600, tz=ZoneInfo("UTC"))
    before = cost_report(Paths.at(data), clock, "all")  # the totals are written: Jan's rows
    _fill(data, JAN_30 + 2 * DAY, 5, 0.02)  # Feb 1: the first row moves January away
    jan = data / "cost" / "2026-01.jsonl"
    assert jan.exists() and len(jan.read_text().splitlines()) == 48  # grep still finds them
    assert all('"ts":"2026-02-01' in line for line in (data / "cost.jsonl").read_text().split())
    rep = cost_report(Paths.at(data), clock, "all")
    want_usd, want_n = _every_row(data)
    assert rep["calls"] == want_n == 53 and before["calls"] == 48
    assert round(rep["total"] * 1_000_000) == want_usd
    week = cost_report(Paths.at(data), clock, "week", "day")
    assert [g["key"] for g in week["groups"]] == ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert [g["calls"] for g in week["groups"]] == [24, 24, 5]


def test_a_row_landing_in_the_moved_file_still_counts_once(tmp_path: Path) -> None:
    """A writer that opened the ledger just before it moved appends into the archive."""
    data = tmp_path
    _fill(data, JAN_30, 10)
    clock = FixedClock(JAN_30 + 2 * DAY + 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30 + 2 * DAY, 1)
    cost_report(Paths.at(data), clock, "all")
    late = {"cost_usd": 0.5, "id": "w9", "kind": "session", "runner": "x", "ts": utc_stamp(JAN_30)}
    append_line(data / "cost" / "2026-01.jsonl", json.dumps(late))
    for _ in range(2):
        rep = cost_report(Paths.at(data), clock, "all")
        assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)
        assert rep["calls"] == 12


def test_todays_spend_spans_the_move(tmp_path: Path) -> None:
    """Tokyo's 1 February begins on 31 January UTC: its early rows are in January's file."""
    data = tmp_path
    tokyo = ZoneInfo("Asia/Tokyo")
    _fill(data, JAN_30 + DAY + 16 * 3600, 8, 0.1)  # Jan 31 16:00Z .. 23:00Z: Feb 1 in Tokyo
    _fill(data, JAN_30 + 2 * DAY, 2, 0.1)  # Feb 1 00:00Z, 01:00Z: moves January away
    clock = FixedClock(JAN_30 + 2 * DAY + 2 * 3600, tz=tokyo)
    assert (data / "cost" / "2026-01.jsonl").exists()
    assert spent_on_day(Paths.at(data), clock) == 1.0
    assert _spent_today(str(data), clock) == 1.0
    (data / totals.TOTALS).unlink()  # rebuilt from the new file alone: the scan reads both
    assert _spent_today(str(data), clock) == 1.0
    assert cost_report(Paths.at(data), clock, "today")["total"] == 1.0


def test_a_report_reads_the_day_totals_not_the_rows_they_cover(tmp_path: Path) -> None:
    data = tmp_path
    clock = FixedClock(JAN_30 + 12 * 3600, tz=ZoneInfo("UTC"))
    rows = [(f"w{i % 30}", "claude", 0.001, "m") for i in range(30)]
    for beat in range(60):
        append_costs(data / "cost.jsonl", JAN_30 + beat * 60, "session", rows)
    want = cost_report(Paths.at(data), clock, "all", "worker")
    assert want["calls"] == 1800
    covered = sum(f[2] for f in json.loads((data / days.DAYS).read_text())["files"])
    assert covered == (data / "cost.jsonl").stat().st_size
    # the covered bytes overwritten in place, first row kept: a reader that looked at them
    # would count nothing there; one that reads the totals is unmoved
    ledger = data / "cost.jsonl"
    first = ledger.read_bytes().split(b"\n", 1)[0] + b"\n"
    with ledger.open("r+b") as f:
        f.seek(len(first))
        f.write(b"x" * (covered - len(first) - 1) + b"\n")
    assert cost_report(Paths.at(data), clock, "all", "worker") == want


def test_a_row_whose_writer_died_before_the_totals_counts_once(tmp_path: Path) -> None:
    data = tmp_path
    clock = FixedClock(JAN_30 + 12 * 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30, 12)
    cost_report(Paths.at(data), clock, "today")
    # appended, then the process died: nothing noted it anywhere
    row = {"cost_usd": 2.5, "id": "w9", "kind": "session", "runner": "x", "ts": utc_stamp(JAN_30)}
    append_line(data / "cost.jsonl", json.dumps(row))
    append_line(data / "cost.jsonl", '{"cost_usd": 9, "ts": "half a li')  # torn: nothing
    for _ in range(3):
        rep = cost_report(Paths.at(data), clock, "today")
        assert (rep["total"], rep["calls"], rep["corrupt_lines"]) == (2.62, 13, 1)
    # enough more rows that the reader writes the totals back: still once each
    _fill(data, JAN_30 + 3600, 400, 0.01)
    rep = cost_report(Paths.at(data), clock, "all")
    assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)


def test_stale_totals_are_rebuilt_once_with_no_budget(tmp_path: Path) -> None:
    """No budget set, so no pulse repairs them: the first reader does, and writes them."""
    data = tmp_path
    ledger = data / "cost.jsonl"
    clock = FixedClock(JAN_30 + 20 * 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30, 20)
    # a long run of rows nobody folded (an old writer, a restore from backup)
    row = {"cost_usd": 0.001, "id": "w", "kind": "session", "runner": "x"}
    lines = [json.dumps({**row, "ts": utc_stamp(JAN_30 + i)}) + "\n" for i in range(4000)]
    with ledger.open("a") as f:
        f.write("".join(lines))
    assert totals.spent_today(str(data), clock) is None  # stale: it cannot say
    first = _spent_today(str(data), clock)
    assert first == 4.2
    t = json.loads((data / totals.TOTALS).read_text())
    assert t["end"] == ledger.stat().st_size  # rebuilt and written by the reader
    stamp = os.stat(data / totals.TOTALS)
    assert _spent_today(str(data), clock) == first
    after = os.stat(data / totals.TOTALS)
    assert (after.st_ino, after.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)  # once
    rep = cost_report(Paths.at(data), clock, "today")
    stamp = os.stat(data / days.DAYS)
    assert cost_report(Paths.at(data), clock, "today") == rep and rep["total"] == 4.2
    after = os.stat(data / days.DAYS)
    assert (after.st_ino, after.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)


def test_totals_of_another_zone_or_a_removed_month_are_rebuilt(tmp_path: Path) -> None:
    data = tmp_path
    _fill(data, JAN_30, 48)
    _fill(data, JAN_30 + 2 * DAY, 24)
    utc = FixedClock(JAN_30 + 3 * DAY, tz=ZoneInfo("UTC"))
    la = FixedClock(JAN_30 + 3 * DAY, tz=ZoneInfo("America/Los_Angeles"))
    by_utc = cost_report(Paths.at(data), utc, "all", "day")
    by_la = cost_report(Paths.at(data), la, "all", "day")
    assert by_utc["groups"][0] == {"key": "2026-01-30", "usd": 0.24, "calls": 24}
    assert by_la["groups"][0] == {"key": "2026-01-29", "usd": 0.08, "calls": 8}
    assert by_la["calls"] == by_utc["calls"] == 72
    (data / "cost" / "2026-01.jsonl").unlink()  # the user let January go
    assert cost_report(Paths.at(data), utc, "all")["calls"] == 24


def test_a_keyed_report_said_again_after_the_move_counts_once(tmp_path: Path) -> None:
    data = tmp_path
    ledger = data / "cost.jsonl"
    append_cost(ledger, JAN_30 + 2 * DAY - 60, "session", "w1", "claude", 0.3, key="k-1")
    append_cost(ledger, JAN_30 + 2 * DAY + 60, "session", "w2", "claude", 0.1)  # moves January
    assert (data / "cost" / "2026-01.jsonl").exists()
    assert keyed_row(ledger, "k-1", JAN_30 + 2 * DAY - 3600)
    assert not keyed_row(ledger, "k-2", JAN_30 + 2 * DAY - 3600)


def test_a_full_ledger_moves_before_its_month_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rotate, "ROTATE_BYTES", 4096)
    data = tmp_path
    for i in range(200):
        append_cost(data / "cost.jsonl", JAN_30 + i, "session", "w", "claude", 0.01)
    names = [Path(p).name for p in rotate.archives(str(data))]
    assert names[:3] == ["2026-01.jsonl", "2026-01-2.jsonl", "2026-01-3.jsonl"]
    assert all(p.stat().st_size <= 4096 + 200 for p in (data / "cost").iterdir())
    clock = FixedClock(JAN_30 + DAY, tz=ZoneInfo("UTC"))
    assert cost_report(Paths.at(data), clock, "all")["calls"] == 200 == _every_row(data)[1]


def test_held_days_count_what_a_fresh_reader_counts_through_changes_under_them(
    tmp_path: Path,
) -> None:
    """A long-lived reader's kept days: caught up in place while the files only grow, dropped
    when another reader rewrote the days file or the ledger was cut, and never counting a
    row twice or missing one."""
    data = tmp_path
    clock = FixedClock(JAN_30 + 12 * 3600, tz=ZoneInfo("UTC"))
    held = days.Held()

    def both() -> None:
        got = cost_reports(Paths.at(data), clock, [("all", "worker")], held)[0]
        fresh = cost_report(Paths.at(data), clock, "all", "worker")  # from the file
        assert (got["total"], got["calls"], got["groups"]) == (
            fresh["total"],
            fresh["calls"],
            fresh["groups"],
        )
        assert (round(got["total"] * 1_000_000), got["calls"]) == _every_row(data)

    _fill(data, JAN_30, 12)
    both()
    _fill(data, JAN_30 + 12 * 3600, 3, 0.02)  # a few rows: folded in memory
    both()
    _fill(data, JAN_30 + 15 * 3600, 500)  # the fresh reader writes the days file back
    both()
    ledger = data / "cost.jsonl"  # cut to its first rows: the held days are let go
    ledger.write_text("".join(ledger.read_text().splitlines(keepends=True)[:5]))
    both()
    _fill(data, JAN_30 + 2 * DAY, 2)  # a new month: January moves to its own file
    both()


def test_a_held_read_that_fails_part_way_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path
    clock = FixedClock(JAN_30 + 12 * 3600, tz=ZoneInfo("UTC"))
    held = days.Held()
    _fill(data, JAN_30, 12)
    days.day_totals(str(data), clock, held)
    _fill(data, JAN_30 + 12 * 3600, 3)
    real = days._fold_line
    seen: list[bytes] = []

    def fail_on_second(d: days.Days, raw: bytes, c: object) -> None:
        seen.append(raw)
        if len(seen) == 2:
            raise OSError("disk went away")
        real(d, raw, c)  # type: ignore[arg-type]

    monkeypatch.setattr(days, "_fold_line", fail_on_second)
    with pytest.raises(OSError):
        days.day_totals(str(data), clock, held)
    monkeypatch.setattr(days, "_fold_line", real)
    rep = cost_reports(Paths.at(data), clock, [("all", "kind")], held)[0]
    assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)  # no row twice
