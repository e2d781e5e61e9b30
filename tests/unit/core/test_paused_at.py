"""Logs read by their bytes: whether the pulse's last stop was a pause, from events.jsonl's
end by the two lines that decide it (beatlog.paused_at: the last `down` or `pulse_start`
record's answer, the rest never decoded); a worker's raw output by logical offsets, as its
Backend gives it to `looop watch` (logfiles.output_at)."""

from __future__ import annotations

import json
from pathlib import Path

from looop.home import store
from looop.home.logfiles import output_at
from looop.views.beatlog import PAUSE_SCAN_LINES, paused_at


def _log(path: Path, *records: dict[str, object], noise: int = 50) -> str:
    lines = [json.dumps({"event": "tick_start", "run_id": f"r{i}"}) for i in range(noise)]
    lines += [json.dumps(r) for r in records]
    lines += [json.dumps({"event": "world_unchanged", "note": "went down"}) for _ in range(noise)]
    path.write_text("".join(x + "\n" for x in lines))
    return str(path)


def test_the_last_stop_or_start_decides(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    kept = {"event": "down", "kept": 3}
    assert paused_at(_log(p, kept)) is True
    assert paused_at(_log(p, {"event": "down"})) is False  # stopped, not paused
    assert paused_at(_log(p, kept, {"event": "pulse_start"})) is False
    assert paused_at(_log(p, {"event": "pulse_start"}, kept)) is True
    assert paused_at(_log(p)) is False and paused_at(str(tmp_path / "none")) is False


def test_a_line_that_only_mentions_the_words_is_not_the_record(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    mentions = {"event": "note", "text": 'said "down" and "pulse_start"'}
    assert paused_at(_log(p, {"event": "down", "kept": 1}, mentions)) is True
    broken = '{"event": "down", "kept": 1\n'  # half a record: not read as one
    p.write_text(json.dumps({"event": "down", "kept": 1}) + "\n" + broken)
    assert paused_at(str(p)) is True


def test_a_pause_far_past_the_scan_or_in_a_long_line_is_not_seen(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    assert paused_at(_log(p, {"event": "down", "kept": 1}, noise=3 * PAUSE_SCAN_LINES)) is False
    long = json.dumps({"event": "down", "kept": 1, "pad": "x" * store.LINE_MAX})
    p.write_text(json.dumps({"event": "pulse_start"}) + "\n" + long + "\n")
    assert paused_at(str(p)) is False  # the long line is skipped, as tail_lines skips it


def test_tail_raw_starts_at_a_line_and_tail_lines_reads_as_before(tmp_path: Path) -> None:
    p = tmp_path / "j"
    p.write_text("".join(f"line {i}\n" for i in range(1000)))
    raw = store.tail_raw(p, 3, chunk=64)
    assert raw.startswith(b"\nline ") or raw.startswith(b"line ")
    assert raw.endswith(b"line 999\n")
    assert store.tail_lines(p, 3, chunk=64) == ["line 997", "line 998", "line 999"]
    p.write_bytes(b"z" * 5000)  # no newline in what is read: no part line
    assert store.tail_lines(p, 2, chunk=64, limit=128) == []


def test_output_at_reads_raw_bytes_by_logical_offsets(tmp_path: Path) -> None:
    sdir = tmp_path / "w1"
    sdir.mkdir()
    (sdir / "output.log").write_bytes(b"\x1b[31mred\x1b[0m\r\nmore\r\n")
    assert output_at(sdir, None, 6) == (14, 20, b"more\r\n")  # the last `most` bytes
    assert output_at(sdir, 0, 100) == (0, 20, b"\x1b[31mred\x1b[0m\r\nmore\r\n")
    assert output_at(sdir, 14, 100) == (14, 20, b"more\r\n")
    assert output_at(sdir, 20, 100) == (20, 20, b"")  # nothing new
    assert output_at(sdir, 40, 100) == (40, 20, b"")  # past the end: a log replaced
    assert output_at(tmp_path / "gone", None, 10) == (0, 0, b"")
