"""The soak's move accounting: a doubled or lost move is caught, rotation is not a loss."""

from __future__ import annotations

import sys
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
