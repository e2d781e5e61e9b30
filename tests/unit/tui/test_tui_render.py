"""`looop watch` without a terminal: emulated cells -> Rich, scrollback, the log feed, the fleet."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import avt
import pytest
from rich.cells import cell_len
from rich.color import Color, ColorTriplet
from rich.style import Style
from rich.text import Text

from looop.home.logfiles import output_at
from looop.sessions.screen import REPLAY_MAX, Screen
from looop.sessions.state import Session
from looop.tui import feed as feed_mod
from looop.tui.feed import Output, SessionFeed
from looop.tui.render import (
    Painter,
    default_selection,
    fleet_rows,
    rich_color,
    row_cells,
)


def _screen(data: bytes, cols: int = 30, rows: int = 4) -> Screen:
    s = Screen(cols, rows)
    s.feed(data)
    return s


def _row(s: Screen, y: int = 0, cursor: int | None = None) -> Text:
    return Painter().text(s.view()[y], s.columns, cursor)


def _style_at(text: Text, x: int) -> Style:
    """The style painted at character index x."""
    return text.get_style_at_offset(_NullConsole(), x)


class _NullConsole:
    """get_style_at_offset only needs get_style for string styles; ours are Style objects."""

    def get_style(self, name: Any, default: Any = None) -> Style:
        return Style.parse(str(name)) if name else Style()


def test_colours_map_to_rich() -> None:
    assert rich_color(None) is None
    assert rich_color(avt.Color.Indexed(1)) == Color.from_ansi(1)
    assert rich_color(avt.Color.Indexed(208)) == Color.from_ansi(208)
    tc = rich_color(avt.Color.RGB(255, 128, 0))
    assert tc is not None and tc.triplet == ColorTriplet(255, 128, 0)


def test_sgr_attributes_become_styles() -> None:
    s = _screen(
        b"\x1b[1;31mred\x1b[0m \x1b[7mrev\x1b[0m \x1b[3;4mit\x1b[0m "
        b"\x1b[38;2;1;2;3;48;5;22mtc\x1b[0m plain"
    )
    text = _row(s)
    assert text.plain == "red rev it tc plain".ljust(30)
    red = _style_at(text, 0)
    assert red.bold and red.color == Color.from_ansi(1)
    rev = _style_at(text, 4)
    assert rev.reverse and not rev.bold
    it = _style_at(text, 8)
    assert it.italic and it.underline
    tc = _style_at(text, 11)
    assert tc.color is not None and tc.color.triplet == ColorTriplet(1, 2, 3)
    assert tc.bgcolor == Color.from_ansi(22)
    plain = _style_at(text, 14)
    assert not (plain.bold or plain.reverse or plain.italic) and plain.color is None


def test_wide_characters_keep_the_row_width() -> None:
    s = _screen("a大字b".encode(), cols=10)
    text = _row(s)
    assert text.plain.startswith("a大字b")
    assert cell_len(text.plain) == 10  # two wide chars take their two cells each, no more
    # Overwriting the right half of a wide character must not shift the rest of the row.
    s2 = _screen("大字xy".encode() + b"\x1b[1;2HZ", cols=10)
    t2 = _row(s2)
    assert cell_len(t2.plain) == 10 and "Z字xy" in t2.plain


def test_cursor_cell_shows_inverted() -> None:
    s = _screen(b"ab\x1b[7mc\x1b[0m")
    text = _row(s, cursor=1)
    assert _style_at(text, 1).reverse
    assert not _style_at(text, 0).reverse
    # on an already reversed cell the cursor shows as normal video
    assert not _style_at(_row(s, cursor=2), 2).reverse


def test_blank_row_is_full_width() -> None:
    s = _screen(b"")
    assert _row(s, 3).plain == " " * 30


def test_scrollback_keeps_rows_scrolled_off_the_top() -> None:
    s = Screen(10, 3, history=5)
    stream = s
    stream.feed(b"".join(b"l%d\r\n" % i for i in range(8)))
    hist = [r.text.rstrip() for r in s.history if isinstance(r, avt.Line)]
    assert hist == ["l1", "l2", "l3", "l4", "l5"]  # bounded: l0 fell off the front
    assert s.dropped == 1
    assert s.rows()[0] == "l6"
    # the alternate screen repaints in place: nothing goes to the scrollback
    stream.feed(b"\x1b[?1049h" + b"".join(b"a%d\r\n" % i for i in range(6)) + b"\x1b[?1049l")
    assert len(s.history) == 5 and s.dropped == 1
    stream.feed(b"\x1b[3J")  # a program clearing its scrollback
    assert not s.history


def _out(log: Path) -> Output:
    """The session's output as its Backend reads it (home/logfiles.output_at)."""
    return partial(output_at, log.parent)


def _log(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "output.log"
    p.write_bytes(data)
    return p


def _feed_all(f: SessionFeed) -> None:
    while not f.pump(0.05):
        pass


def _clock() -> float:
    return 0.0  # a budget that is always spent: each pump emulates one slice


def test_feed_follows_only_new_bytes(tmp_path: Path) -> None:
    log = _log(tmp_path, b"hello\r\n")
    f = SessionFeed("w", _out(log), 20, 4, "t0", _clock)
    f.open()
    _feed_all(f)
    assert f.screen.rows()[0] == "hello"
    assert f.poll() is False  # nothing new
    with log.open("ab") as out:
        out.write(b"\x1b[32mworld\x1b[0m\r\n")
    assert f.poll() is True
    assert bytes(f.pending) == b"\x1b[32mworld\x1b[0m\r\n"  # only what was appended
    _feed_all(f)
    assert f.screen.rows()[:2] == ["hello", "world"]
    log.write_bytes(b"new\r\n")  # the log was replaced by a shorter one
    assert f.poll() is None


def test_feed_replays_a_bounded_tail_from_a_line_start(tmp_path: Path) -> None:
    line = b"x" * 99 + b"\n"
    # the cursor is hidden before the replayed tail starts: that mode must carry over
    data = b"\x1b[?25l" + line * ((3 * REPLAY_MAX // 2) // len(line)) + b"last line\r\n"
    log = _log(tmp_path, data)
    f = SessionFeed("w", _out(log), 100, 5, "t0", _clock)
    f.open()
    assert len(f.pending) <= REPLAY_MAX
    assert bytes(f.pending).startswith(line) and f.skipped == len(data) - len(f.pending)
    assert f.screen.cursor.hidden  # mode switched before the tail is carried over
    assert f.offset == len(data)
    _feed_all(f)
    assert "last line" in "\n".join(f.screen.rows())
    assert f.line_count() == len(f.screen.history) + 5


def test_feed_skips_a_burst_and_marks_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 16 * 1024  # a small bound keeps the test fast; the logic is the same at 1 MiB
    monkeypatch.setattr(feed_mod, "REPLAY_MAX", cap)
    log = _log(tmp_path, b"start\r\n")
    f = SessionFeed("w", _out(log), 40, 4, "t0", _clock)
    f.open()
    _feed_all(f)
    with log.open("ab") as out:
        # a burst that repaints in place (cursor home, again and again), then a line
        out.write(b"\x1b[H" * cap + b"\nafter burst\r\n")
    assert f.poll() is True
    assert len(f.pending) <= cap
    _feed_all(f)
    rows = [r if isinstance(r, str) else r.text for r in f.screen.history]
    assert any("skipped" in r for r in rows)
    assert f.skipped >= 2 * cap
    assert "after burst" in "\n".join(f.screen.rows())


def test_a_burst_cut_mid_line_counts_every_byte_it_does_not_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tail kept of a burst starts at a line start: the part line before it is skipped
    too, so what was emulated and what was said skipped add up to the log, byte for byte."""
    cap = 16 * 1024
    monkeypatch.setattr(feed_mod, "REPLAY_MAX", cap)
    log = _log(tmp_path, b"start\r\n")
    f = SessionFeed("w", _out(log), 40, 4, "t0", _clock)
    f.open()
    shown = len(f.pending)
    _feed_all(f)
    with log.open("ab") as out:
        out.write(b"z" * 37 + b"\n" * 1 + (b"y" * 250 + b"\n") * (3 * cap // 251))
    assert f.poll() is True
    assert 0 < len(f.pending) <= cap and bytes(f.pending).startswith(b"y")
    assert shown + f.skipped + len(f.pending) == f.offset == log.stat().st_size


# -- the fleet ----------------------------------------------------------------------------


def _session(sid: str, alive: bool, started: str) -> Session:
    return Session(
        id=sid,
        cmd=["x"],
        state="running" if alive else "exited",
        alive=alive,
        exit_code=None if alive else 0,
        signaled=False,
        started_at=started,
        last_change=started,
        note=None,
        child_pid=1,
        cols=80,
        rows=24,
        output_bytes=0,
        dir="/nonexistent",
        label="running" if alive else "exit:0",
    )


def _worker(sid: str, alive: bool, started: str, last: float | None = None) -> dict[str, Any]:
    return {
        "id": sid,
        "health": "busy" if alive else "dead",
        "state": "running" if alive else "exited",
        "label": "running" if alive else "exit:0",
        "alive": alive,
        "started_at": started,
        "last_output_unix": last,
        "verify": None,
        "note": None,
    }


def test_fleet_puts_the_pulse_first_then_longest_uptime() -> None:
    sessions = [_session("pulse", True, "2026-01-01T12:00:00Z")]
    workers = [
        _worker("young", True, "2026-01-01T11:00:00Z", last=300.0),
        _worker("old", True, "2026-01-01T09:00:00Z", last=100.0),
        _worker("gone", False, "2026-01-01T08:00:00Z"),
        _worker("mid", True, "2026-01-01T10:00:00+00:00", last=200.0),
    ]
    rows = fleet_rows(sessions, workers, show_all=False)
    assert [r.id for r in rows] == ["pulse", "old", "mid", "young"]
    assert rows[0].health == "up"
    assert [r.id for r in fleet_rows(sessions, workers, show_all=True)] == [
        "pulse",
        "gone",
        "old",
        "mid",
        "young",
    ]
    # the selected session stays listed after it died, so the pane does not jump away
    assert "gone" in [r.id for r in fleet_rows(sessions, workers, False, keep="gone")]
    down = fleet_rows([_session("pulse", False, "2026-01-01T12:00:00Z")], [], False)
    assert [(r.id, r.health) for r in down] == [("pulse", "down")]


def test_default_selection_prefers_pulse_then_latest_output() -> None:
    workers = [
        _worker("a", True, "2026-01-01T09:00:00Z", last=100.0),
        _worker("b", True, "2026-01-01T10:00:00Z", last=500.0),
        _worker("c", False, "2026-01-01T11:00:00Z", last=900.0),
    ]
    with_pulse = fleet_rows([_session("pulse", True, "2026-01-01T12:00:00Z")], workers, True)
    assert default_selection(with_pulse) == "pulse"
    assert default_selection(fleet_rows([], workers, True)) == "b"  # living beats dead
    assert default_selection([]) is None


def test_row_cells_mark_the_selection_and_ages() -> None:
    row = fleet_rows([], [_worker("w", True, "2026-01-01T10:00:00Z", last=None)], False)[0]
    now = row.started + 3725 if row.started else 0.0
    cells = row_cells(row, now, selected=True)
    assert [c.plain for c in cells][:5] == ["▸ w", "busy", "running", "1h", "—"]
    assert row_cells(row, now, selected=False)[0].plain == "  w"


def test_since_lists_finished_workers_heard_from_within_the_window() -> None:
    """v1.0's `watch --since D`: living ones always, finished ones only if recent."""
    from looop.home.stamps import parse_utc

    noon = parse_utc("2026-01-01T12:00:00Z")
    assert noon is not None
    workers = [
        _worker("live", True, "2026-01-01T09:00:00Z", last=noon - 9000),
        _worker("recent", False, "2026-01-01T10:00:00Z", last=noon - 600),
        _worker("stale", False, "2026-01-01T08:00:00Z", last=noon - 7200),
        _worker("quiet", False, "2026-01-01T11:50:00Z", last=None),  # never wrote: its start
    ]
    ids = [r.id for r in fleet_rows([], workers, False, since=(3600, noon))]
    assert ids == ["live", "recent", "quiet"]  # oldest start first, as ever
    assert [r.id for r in fleet_rows([], workers, False, since=(60, noon))] == ["live"]
    assert [r.id for r in fleet_rows([], workers, False)] == ["live"]


def test_the_status_line_counts_down_to_the_next_beat() -> None:
    from looop.tui.statusline import pulse_part

    def st(running: bool, outcome: str | None, next_ts: int | None) -> Any:
        return {
            "pulse": {"running": running, "pid": "1", "interval_s": 60},
            "last_beat": None if outcome is None else {"outcome": outcome, "ts": 0, "at": ""},
            "next_beat": None if next_ts is None else {"ts": next_ts, "at": "", "reason": ""},
        }

    assert pulse_part(st(False, None, None), 1000.0) == "pulse down"
    assert pulse_part(st(True, "decided", 1042), 1000.0) == "pulse up · next beat in 42s"
    assert pulse_part(st(True, "skipped", 1000 + 300), 1000.0) == "pulse up · next beat in 5m"
    assert pulse_part(st(True, "decided", 990), 1000.0) == "pulse up · beat due"
    assert pulse_part(st(True, "deciding", None), 1000.0) == "pulse up · deciding"
    assert pulse_part(st(True, "running", 1042), 1000.0) == "pulse up · beating"
    assert pulse_part(st(True, None, None), 1000.0) == "pulse up"


@pytest.mark.parametrize(
    ("outcome", "code", "shown", "colour"),
    [
        ("verified", 0, "verified", "green"),
        ("failed_verify", 0, "verify failed", "red"),
        ("exited", 0, "exited 0", "green"),
        ("exited", 2, "exited 2", "red"),
        ("exited", None, "exited", "red"),
        ("needs_human", 0, "blocked on human", "yellow"),
        ("over_budget", 1, "over budget", "yellow"),
        ("made-up", 1, "exit:0", ""),  # not an outcome: its state, nothing claimed
    ],
)
def test_an_ended_workers_state_cell_says_its_outcome(
    outcome: str, code: int | None, shown: str, colour: str
) -> None:
    """`looop watch` shows how an ended worker ended, near or far, as `ls` does; a live
    one, or one whose end the beat has not recorded yet, shows its state as before."""
    ended = {**_worker("w", False, "2026-01-01T10:00:00Z"), "outcome": outcome, "exit_code": code}
    far = {**ended, "id": "f", "host": "h7"}
    rows = fleet_rows([], [ended, far], show_all=True)
    for row in rows:
        cell = row_cells(row, 0.0, selected=False)[2]
        assert cell.plain == shown and cell.style == colour, (row.id, cell)
    unrecorded = fleet_rows([], [_worker("w", False, "2026-01-01T10:00:00Z")], True)[0]
    assert row_cells(unrecorded, 0.0, False)[2].plain == "exit:0"
    live = {**_worker("w", True, "2026-01-01T10:00:00Z"), "outcome": outcome}
    assert row_cells(fleet_rows([], [live], False)[0], 0.0, False)[2].plain == "running"
