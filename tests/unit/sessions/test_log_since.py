"""`looop log --since WHEN`: the supervisor's index of when output came, and the one parser
`watch --since` and `log --since` share (a duration ago or a time)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from looop.cli.sessions import since_time
from looop.home.clock import Clock
from looop.sessions.logs import index_offset
from looop.sessions.outputnotes import INDEX_EVERY_S, OutputMark

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC).timestamp()


class Frozen(Clock):
    def now(self) -> float:
        return NOW


class Timers:
    def __init__(self) -> None:
        self.t = 0.0

    def time(self) -> float:
        return self.t

    def call_later(self, delay: float, fn: Any) -> Any:
        return self

    def cancel(self) -> None:
        pass


def test_the_index_says_where_the_output_of_a_moment_begins(tmp_path: Path) -> None:
    wall, offset = [NOW], [0]
    (tmp_path / "output.times").write_text("1 999\n")  # an earlier run's: dropped
    mark = OutputMark(
        Timers(),
        str(tmp_path),
        0.0,
        lambda: 0.0,
        lambda: offset[0],
        lambda: wall[0],  # type: ignore[arg-type]
    )
    for _ in range(3):  # output every INDEX_EVERY_S, 100 bytes each
        wall[0] += INDEX_EVERY_S
        offset[0] += 100
        mark.handle = None
        mark.said(wall[0])
    assert index_offset(str(tmp_path), NOW - 3600) == 0  # before the run: all of it
    assert index_offset(str(tmp_path), NOW + INDEX_EVERY_S + 1) == 100
    assert index_offset(str(tmp_path), NOW + 3 * INDEX_EVERY_S) == 300
    assert index_offset(str(tmp_path / "none"), NOW) == 0  # no index: from the start


@pytest.mark.parametrize(
    ("text", "ago"),
    [("10m", 600), ("1d", 86400), ("90", 90), ("2026-11-27T09:00", 3600)],
)
def test_since_takes_a_duration_ago_or_a_time(text: str, ago: float) -> None:
    class Utc(Frozen):
        def zone(self) -> Any:
            return UTC

    assert since_time(text, Utc()) == NOW - ago
    assert since_time("2026-11-27T09:00+01:00", Utc()) == NOW - 7200


def test_since_that_is_neither_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError, match=r"give a duration .* or a time"):
        since_time("lunchtime", Frozen())
