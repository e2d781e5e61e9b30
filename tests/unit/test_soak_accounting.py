"""The soak's move accounting: a doubled or lost move is caught, rotation is not a loss."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import soak


def test_a_clean_run_has_nothing_doubled_or_lost() -> None:
    assert soak.move_accounting([3, 4, 5], [3, 4, 5]) == ([], [])


def test_a_move_journaled_twice_is_doubled() -> None:
    assert soak.move_accounting([3, 4, 4, 5], [3, 4, 5]) == ([4], [])


def test_an_executed_move_missing_from_the_journal_is_lost() -> None:
    assert soak.move_accounting([3, 5], [3, 4, 5]) == ([], [4])


def test_moves_rotated_out_of_the_journal_are_not_lost() -> None:
    # the journal's oldest lines rotated away: steps before its first kept line are not lost
    assert soak.move_accounting([7, 8], [1, 2, 7, 8]) == ([], [])


def test_markers_are_read_from_the_journal_and_its_rotation(tmp_path: Path) -> None:
    (tmp_path / "journal.md.1").write_text("- x soak step 1\n- x soak step 2\n")
    (tmp_path / "journal.md").write_text("- x soak step 3\n- x other line\n- x soak step 30\n")
    assert soak._journal_markers(tmp_path) == [1, 2, 3, 30]


def _samples(kb_at: Callable[[float], int], minutes: int = 30) -> list[soak.Sample]:
    """One sample a minute of a pulse whose RSS is kb_at(minute)."""
    return [
        soak.Sample(t=m * 60.0, pulse_pid=1, rss={"pulse:1": kb_at(m)}, **_QUIET)
        for m in range(minutes + 1)
    ]


_QUIET = {k: 0 for k in soak.Sample.__dataclass_fields__ if k not in ("t", "pulse_pid", "rss")}


def test_a_leak_fails_in_both_halves_and_a_one_time_step_does_not() -> None:
    flat = soak.memory_fits(_samples(lambda m: 25_000), 1800)
    step = soak.memory_fits(_samples(lambda m: 25_000 + (1_000 if m >= 17 else 0)), 1800)
    leak = soak.memory_fits(_samples(lambda m: 25_000 + m * 150), 1800)  # +9 MB/h
    assert [f.flat for f in flat + step] == [True, True]
    assert step[0].slope_kb_h > step[0].bound_kb_h  # the whole run's slope alone would fail it
    assert not leak[0].flat and leak[0].steady_kb_h > 8_000
