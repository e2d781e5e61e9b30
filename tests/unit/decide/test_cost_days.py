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

from looop.home import store
from looop.home.clock import Clock
from looop.home.paths import Paths
from looop.home.stamps import utc_stamp
from looop.home.store import append_line
from looop.spend import days, totals
from looop.spend.record import append_cost, append_costs, keyed_row
from looop.spend.statusspend import spent_today
from tests.clocks import FixedClock
from tests.helpers import cost_report, cost_reports

JAN_30 = 1_769_731_200.0  # 2026-01-30T00:00:00Z
DAY = 86400.0


def _totals_say(data: str, clock: Clock) -> float | None:
    """Today's USD toward the daily budget from the running totals alone; None where they
    cannot say."""
    got = totals.today(data, clock)
    return None if got is None else totals.counted(got)[0] / 1_000_000


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
    assert spent_today(str(data), clock)[0] == 1.0
    assert spent_today(str(data), clock)[0] == 1.0
    (data / totals.TOTALS).unlink()  # rebuilt from the new file alone: the scan reads both
    assert spent_today(str(data), clock)[0] == 1.0
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
    assert _totals_say(str(data), clock) is None  # stale: it cannot say
    first = spent_today(str(data), clock)[0]
    assert first == 4.2
    t = json.loads((data / totals.TOTALS).read_text())
    assert t["end"] == ledger.stat().st_size  # rebuilt and written by the reader
    stamp = os.stat(data / totals.TOTALS)
    assert spent_today(str(data), clock)[0] == first
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
    monkeypatch.setattr(totals, "ROTATE_BYTES", 4096)
    data = tmp_path
    for i in range(200):
        append_cost(data / "cost.jsonl", JAN_30 + i, "session", "w", "claude", 0.01)
    names = [Path(p).name for p in totals.archives(str(data))]
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


JUN_21 = 1_782_000_000.0  # 2026-06-21T00:00:00Z


def _year(data: Path) -> FixedClock:
    """A year of rows up to 21 June 2026 (four workers, one every two hours), a file a
    month as rotation leaves them; the totals built once."""
    (data / "cost").mkdir(parents=True)
    files: dict[str, list[str]] = {}
    for i in range(365 * 12):
        t = JUN_21 - 365 * DAY + i * 7200
        ts = utc_stamp(t)
        row = {"cost_usd": 0.01, "id": f"w{i % 4}", "kind": "session", "runner": "c", "ts": ts}
        files.setdefault(ts[:7], []).append(json.dumps(row) + "\n")
    for month, lines in files.items():
        name = "cost.jsonl" if month == "2026-06" else f"cost/{month}.jsonl"
        (data / name).write_text("".join(lines))
    clock = FixedClock(JUN_21 - 3600, tz=ZoneInfo("UTC"))
    assert cost_report(Paths.at(data), clock, "all")["calls"] == 365 * 12
    return clock


def _totals_bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes of the day totals' files each later read returns."""
    got: list[int] = []
    real = store.read_text

    def counted(path: object) -> str | None:
        text = real(path)  # type: ignore[arg-type]
        if ".cost-days" in str(path):
            got.append(len(text or ""))
        return text

    monkeypatch.setattr(store, "read_text", counted)
    return got


def test_a_window_reads_the_months_it_covers_not_the_year(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _year(tmp_path)
    read = _totals_bytes_read(monkeypatch)
    year = cost_report(Paths.at(tmp_path), clock, "all", "day")
    whole = sum(read)
    read.clear()
    week = cost_report(Paths.at(tmp_path), clock, "week", "day")
    assert [g["calls"] for g in week["groups"]] == [12] * 7
    assert week["groups"] == year["groups"][-7:]
    assert 0 < sum(read) <= whole / 4  # June's days (and the index), not the year's
    read.clear()
    today = cost_report(Paths.at(tmp_path), clock, "today", "worker")
    assert today["calls"] == 12 and sum(read) <= whole / 4


def test_version_one_totals_are_rebuilt_from_the_ledger_and_written_split(
    tmp_path: Path,
) -> None:
    """The version-1 day totals (one file) are another version's: the ledger is the truth."""
    data = tmp_path
    clock = FixedClock(JAN_30 + 2 * DAY + 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30, 48)
    _fill(data, JAN_30 + 2 * DAY, 2)
    truth = cost_report(Paths.at(data), clock, "all", "day")["groups"]
    src = ["session", "w1", "claude", "", ""]
    one = {  # as version 1 wrote them: not what the ledger holds
        "v": 1,
        "zone": days.zone_of(clock),
        "files": [],
        "days": {"2026-01-30": [[*src, 70000, 7]], "2026-02-01": [[*src, 20000, 2]]},
        "bad": 0,
        "ticks": [["tick-1", int(JAN_30)]],
        "ticks_before": 0,
    }
    (data / days.DAYS).write_text(json.dumps(one))
    assert cost_report(Paths.at(data), clock, "all", "day")["groups"] == truth
    index = json.loads((data / days.DAYS).read_text())
    assert index["v"] == 2 and sorted(index["months"]) == ["2026-01", "2026-02"]


def test_a_save_that_fails_half_way_keeps_nothing_and_counts_each_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path
    clock = FixedClock(JAN_30 + 2 * DAY + 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30, 48)
    _fill(data, JAN_30 + 2 * DAY, 2)
    cost_report(Paths.at(data), clock, "all")
    index = (data / days.DAYS).read_bytes()
    # enough rows in both months that the reader writes both back; the second file fails
    for h in range(300):
        append_cost(data / "cost" / "2026-01.jsonl", JAN_30 + h, "session", "w", "c", 0.01)
        append_cost(data / "cost.jsonl", JAN_30 + 2 * DAY + h, "session", "w", "c", 0.01)
    real = days._put
    puts: list[str] = []

    def fail_on_second(path: str, body: object) -> None:
        puts.append(path)
        if len(puts) == 2:
            raise OSError(28, "No space left on device")
        real(path, body)

    monkeypatch.setattr(days, "_put", fail_on_second)
    rep = cost_report(Paths.at(data), clock, "all")
    assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)
    assert (data / days.DAYS).read_bytes() == index  # the index still names the old files
    monkeypatch.setattr(days, "_put", real)
    for _ in range(2):
        rep = cost_report(Paths.at(data), clock, "all")
        assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)
    # a month file the index names, gone (a crash before it reached the disk): rebuilt once
    named = json.loads((data / days.DAYS).read_text())["months"]["2026-01"]
    (data / ".cost-days" / named).unlink()
    for span in ("all", "week"):
        rep = cost_report(Paths.at(data), clock, span)
        assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)
    index = json.loads((data / days.DAYS).read_text())
    kept = {*index["months"].values(), index["ticks"]} - {""}
    assert {p.name for p in (data / ".cost-days").iterdir()} == kept  # nothing left behind


def test_a_reader_whose_index_was_replaced_under_it_reads_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another reader saved between this one's reading the index and its month: the files
    the old index named are gone; the reader reads the new index, it rebuilds nothing."""
    data = tmp_path
    clock = FixedClock(JAN_30 + 2 * DAY + 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30, 50)
    cost_report(Paths.at(data), clock, "all")
    old = days.load(str(data / days.DAYS), days.zone_of(clock))
    _fill(data, JAN_30 + 50 * 3600, 400)
    cost_report(Paths.at(data), clock, "all")  # saved: January's old file let go
    loads: list[int] = []
    real = days.load

    def first_the_old(path: str, zone: str) -> days.Days | None:
        loads.append(1)
        return old if len(loads) == 1 else real(path, zone)

    monkeypatch.setattr(days, "load", first_the_old)
    gen = json.loads((data / days.DAYS).read_text())["gen"]
    rep = cost_report(Paths.at(data), clock, "all")
    assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)
    assert len(loads) == 2 and json.loads((data / days.DAYS).read_text())["gen"] == gen


def test_an_index_naming_files_outside_its_folder_is_rebuilt_and_unlinks_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path
    clock = FixedClock(JAN_30 + 2 * DAY + 3600, tz=ZoneInfo("UTC"))
    _fill(data, JAN_30, 48)
    _fill(data, JAN_30 + 2 * DAY, 2)
    cost_report(Paths.at(data), clock, "all")
    index = json.loads((data / days.DAYS).read_text())
    ledger = (data / "cost.jsonl").read_bytes()
    for bad in (
        {"months": {**index["months"], "2026-02": "../cost.jsonl"}},
        {"months": {"../cost": "../cost.jsonl"}},
        {"ticks": "../cost.jsonl"},
    ):
        (data / days.DAYS).write_text(json.dumps({**index, **bad}))
        _fill(data, JAN_30 + 2 * DAY + 7200, 300)  # enough that the reader writes back
        rep = cost_report(Paths.at(data), clock, "all")
        assert (round(rep["total"] * 1_000_000), rep["calls"]) == _every_row(data)
        assert (data / "cost.jsonl").read_bytes().startswith(ledger)  # still there, whole
        index = json.loads((data / days.DAYS).read_text())
        assert all("/" not in n for n in [*index["months"].values(), index["ticks"]])
