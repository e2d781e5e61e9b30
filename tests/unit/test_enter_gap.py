"""Which sessions wait a gap between a typed line's echo and its Enter: a CLI whose profile
says so, however its line names it; every other program none."""

from __future__ import annotations

import pytest

from looop.runners import RUNNERS, enter_gap, gemini
from looop.runners.runnerprofile import RunnerProfile

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "gap"),
    [
        (["gemini", "--yolo", "--session-id", "x"], gemini.PROFILE.enter_gap_s),
        (["/home/u/.npm/bin/gemini"], gemini.PROFILE.enter_gap_s),
        (["srt", "--settings", "/s.json", "bash", "-c", 'gemini --yolo "$(cat p)"'], 0.06),
        (["claude", "--dangerously-skip-permissions"], 0.0),
        (["bash", "-c", "my-agent gemini-notes.md"], 0.0),
        ([], 0.0),
    ],
)
def test_a_sessions_enter_gap_comes_from_the_cli_its_line_runs(argv: list[str], gap: float) -> None:
    assert enter_gap(argv) == gap


def test_a_new_cli_declares_its_gap_in_its_profile_alone() -> None:
    slow = RunnerProfile(name="slowtui", preset={"worker": "slowtui"}, enter_gap_s=0.2)
    assert enter_gap(["slowtui"], (*RUNNERS, slow)) == 0.2
    assert enter_gap(["slowtui"]) == 0.0
