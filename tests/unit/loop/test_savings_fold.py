"""A skip beat's count is its events.jsonl record (spend/savings.py): a decide folds the skips
recorded since its mark into `.savings.json`, and the view adds the ones after it — each skip
counted once across decides, an events.jsonl rotation, a torn tally and a local midnight."""

from __future__ import annotations

import json
import os
from datetime import timedelta, timezone

import pytest

from looop.core.context import Ctx
from looop.home.clock import Clock
from looop.home.eventlog import append_record
from looop.spend import savings
from looop.spend.savings import note_decide, savings_view
from tests.clocks import FixedClock


def _data(ctx: Ctx) -> str:
    return os.fspath(ctx.paths.data)


def _skip(ctx: Ctx, n: int = 1) -> None:
    """Skip beats, as loop/tick.py records one: its `world_unchanged` line and nothing else."""
    for _ in range(n):
        ctx.events.record("world_unchanged")


def _rotate(ctx: Ctx) -> None:
    """events.jsonl rotated to events.jsonl.1 by the next record past its size cap."""
    append_record(ctx.paths.events, "pulse_sleep", {"secs": 30}, ctx.clock.now(), max_bytes=1)


def _today(ctx: Ctx) -> dict[str, object]:
    return dict(savings_view(_data(ctx), ctx.clock)["today"])


def _tally(ctx: Ctx) -> tuple[int, int, bytes]:
    p = ctx.paths.data / ".savings.json"
    st = os.stat(p)
    return st.st_ino, st.st_mtime_ns, p.read_bytes()


def test_the_skip_record_is_the_line_the_tally_counts(ctx: Ctx) -> None:
    _skip(ctx)
    assert ("\n" + ctx.paths.events.read_text()).encode().startswith(savings.SKIP_LINE)


def test_a_decide_folds_the_skips_once_and_a_skip_writes_no_tally(ctx: Ctx) -> None:
    note_decide(_data(ctx), ctx.clock, 0.10)
    before = _tally(ctx)
    _skip(ctx, 2)
    assert _today(ctx) == {"decides": 1, "skipped": 2, "saved_usd": 0.2}
    assert _tally(ctx) == before  # neither the skips nor the reading wrote it
    note_decide(_data(ctx), ctx.clock, 0.30)  # folds the two at the 0.10 they were priced at
    assert _today(ctx) == {"decides": 2, "skipped": 2, "saved_usd": 0.2}
    _skip(ctx)  # priced at the median of 0.10 and 0.30
    assert _today(ctx) == {"decides": 2, "skipped": 3, "saved_usd": 0.4}
    note_decide(_data(ctx), ctx.clock, None)
    assert _today(ctx) == {"decides": 3, "skipped": 3, "saved_usd": 0.4}


def test_skips_across_an_events_rotation_count_once(ctx: Ctx) -> None:
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx)
    _rotate(ctx)
    _skip(ctx, 2)
    assert _today(ctx)["skipped"] == 3  # the rest of events.jsonl.1, then events.jsonl
    note_decide(_data(ctx), ctx.clock, 0.10)
    assert _today(ctx) == {"decides": 2, "skipped": 3, "saved_usd": 0.3}
    _rotate(ctx)  # the folded file rotates away: nothing in it counted again
    _skip(ctx)
    assert _today(ctx) == {"decides": 2, "skipped": 4, "saved_usd": 0.4}
    note_decide(_data(ctx), ctx.clock, 0.10)
    assert _today(ctx) == {"decides": 3, "skipped": 4, "saved_usd": 0.4}


def test_rotated_twice_between_decides_loses_only_the_lost_files_skips(ctx: Ctx) -> None:
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx, 5)  # in the file rotated away twice: gone with it, uncounted
    _rotate(ctx)
    _skip(ctx, 2)
    _rotate(ctx)
    _skip(ctx)
    assert _today(ctx)["skipped"] == 3  # all of events.jsonl.1 and events.jsonl
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx)
    assert _today(ctx) == {"decides": 2, "skipped": 4, "saved_usd": 0.4}


@pytest.mark.parametrize(
    "tally",
    [
        '{"v": 2, "costs": [100000], "days": {}, "mark": [1, 2',  # torn mid-write
        '{"v": 2, "costs": [100000], "days": {}, "mark": ["x", -1, true]}',  # foreign mark
        '{"v": 2, "costs": [100000], "days": {}, "mark": [1, 2]}',
        '{"v": 2, "costs": [100000], "days": {}}',  # a mark lost
    ],
)
def test_a_torn_or_foreign_mark_counts_the_current_file_from_its_start(
    ctx: Ctx, tally: str
) -> None:
    _skip(ctx, 3)
    (ctx.paths.data / ".savings.json").write_text(tally)
    got = _today(ctx)
    assert got["skipped"] == 3
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx)
    assert _today(ctx)["skipped"] == 4  # the fold moved the mark past the three


def test_a_mark_on_a_reused_inode_number_is_not_that_file(ctx: Ctx) -> None:
    """A file rotated away twice frees its inode number, which a new events.jsonl may get:
    the mark's first-line checksum tells them apart, so the new file counts whole."""
    _skip(ctx, 2)
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx)
    p = ctx.paths.data / ".savings.json"
    obj = json.loads(p.read_text())
    obj["mark"][2] ^= 1  # the same inode and offset, another first line
    p.write_text(json.dumps(obj))
    assert _today(ctx)["skipped"] == 2 + 3


def test_a_line_still_being_written_waits_for_its_end(ctx: Ctx) -> None:
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx)
    with open(ctx.paths.events, "ab") as f:
        f.write(savings.SKIP_LINE[1:] + b"2025-06-15T15:06")
    assert _today(ctx)["skipped"] == 1
    note_decide(_data(ctx), ctx.clock, 0.10)
    with open(ctx.paths.events, "ab") as f:
        f.write(b':40.000Z"}\n')
    assert _today(ctx)["skipped"] == 2  # counted once whole, though the mark passed its start


def test_skips_fall_on_the_local_day_they_were_beaten(paths: object) -> None:
    # 23:50 in UTC+9 is 14:50 UTC: both skips fall on one UTC day, two local ones
    clock = FixedClock(t=1_750_000_000 - 1_750_000_000 % 86400 + 14 * 3600 + 50 * 60)
    clock.tz = timezone(timedelta(hours=9))
    ctx = _ctx_with(paths, clock)
    note_decide(_data(ctx), clock, 0.10)
    _skip(ctx)
    clock.advance(20 * 60)  # 00:10 the next local day
    _skip(ctx)
    want_week = {"decides": 1, "skipped": 2, "saved_usd": 0.2}
    assert _today(ctx) == {"decides": 0, "skipped": 1, "saved_usd": 0.1}
    assert savings_view(_data(ctx), clock)["week"] == want_week
    note_decide(_data(ctx), clock, 0.10)  # folded: the same days
    assert _today(ctx) == {"decides": 1, "skipped": 1, "saved_usd": 0.1}
    assert savings_view(_data(ctx), clock)["week"] == {**want_week, "decides": 2}


def test_past_the_read_bound_skips_wait_for_the_next_fold(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    note_decide(_data(ctx), ctx.clock, 0.10)
    _skip(ctx, 10)
    line = len(ctx.paths.events.read_bytes()) // 10
    monkeypatch.setattr(savings, "SCAN_BYTES", 4 * line)
    assert _today(ctx)["skipped"] == 4  # status reads 4 lines' worth at most
    note_decide(_data(ctx), ctx.clock, 0.10)
    assert _today(ctx)["skipped"] == 8
    note_decide(_data(ctx), ctx.clock, 0.10)
    assert _today(ctx) == {"decides": 3, "skipped": 10, "saved_usd": 1.0}  # none lost


def _ctx_with(paths: object, clock: Clock) -> Ctx:
    from looop.core.events import Emitter
    from looop.home.paths import Paths

    assert isinstance(paths, Paths)
    em = Emitter(clock=clock, events_path=paths.events)
    return Ctx(paths=paths, clock=clock, env={}, events=em, bin="looop")
