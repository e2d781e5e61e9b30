"""What a sensor's shell prints as a time is read as one, so it sits with the fields that
move (late in the prompt) from the first prompt, and reads as an age once seen moving:
`stat -c %y` (a space, nanoseconds, a space before the zone) and `date +%T` (a time of day)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from looop.decide.promptinputs import as_age, presumed

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 19, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "value",
    ["2026-11-27 19:25:36.229921295 +0000", "2026-11-27 19:25:36+00:00", "19:25:36"],
)
def test_a_fresh_shell_time_is_presumed_to_move(value: str) -> None:
    assert presumed(("detail", "checked"), value, NOW)


def test_a_stat_time_reads_as_its_age_and_an_old_one_stays_settled() -> None:
    assert as_age("2026-11-27 19:25:36.229921295 +0000", NOW) == "1-10m ago"
    old = "2025-01-02 03:04:05.000000001 +0000"
    assert not presumed(("detail", "built"), old, NOW)
    assert as_age(old, NOW).endswith(" ago")
    assert not presumed(("detail", "version"), "1.2.3", NOW)  # not a time at all
