"""Tells already read are swept from tells/consumed/ after tells_consumed_keep_secs (v1.0's
LOOOP_TELLS_CONSUMED_KEEP_SECS), measured from when they were read; a worker's newest stays,
so its tell ids keep counting up."""

from __future__ import annotations

import os
from pathlib import Path

from looop.core.context import Ctx
from looop.human.tellbox import new_tell, sweep_consumed, take_tell, take_tells
from looop.loop.housekeep import housekeep_sessions
from tests.clocks import FixedClock
from tests.helpers import with_env

DAY = 86400.0


def _age(path: Path, now: float, secs: float) -> None:
    os.utime(path, (now - secs, now - secs))


def test_read_tells_go_after_the_keep_the_newest_stays(tmp_path: Path) -> None:
    tells = tmp_path / "tells"
    now = 1_800_000_000.0
    for msg in ("a", "b", "c"):
        new_tell(tells, "w1", msg, now)
    new_tell(tells, "w2", "x", now)
    assert take_tells(tells, "w1") == ["a", "b", "c"]
    assert take_tells(tells, "w2") == ["x"]
    new_tell(tells, "w1", "unread", now)  # pending tells are never swept
    done = tells / "consumed"
    # read just now: the kernel stamped them when take_tells claimed them
    assert sweep_consumed(tells, 7 * DAY, os.stat(done / "w1-1.json").st_mtime) == []
    for n in ("w1-1", "w1-2", "w1-3", "w2-1"):
        _age(done / f"{n}.json", now, 8 * DAY)
    _age(done / "w1-2.json", now, 6 * DAY)  # read more recently than the keep
    assert sweep_consumed(tells, 7 * DAY, now) == ["w1-1"]
    assert sorted(p.stem for p in done.iterdir()) == ["w1-2", "w1-3", "w2-1"]
    assert (tells / "w1-4.json").exists()
    # numbering goes on from the newest kept, never back to 1
    assert take_tells(tells, "w1") == ["unread"]
    _age(done / "w1-4.json", now, 8 * DAY)
    assert new_tell(tells, "w1", "next", now) == "w1-5"
    # 0 keeps nothing read but each worker's newest
    assert sweep_consumed(tells, 0, now) == ["w1-2", "w1-3"]
    assert sorted(p.stem for p in done.iterdir()) == ["w1-4", "w2-1"]
    assert sweep_consumed(tmp_path / "none", 7 * DAY, now) == []


def test_a_beat_sweeps_with_the_env_keep(ctx: Ctx, clock: FixedClock) -> None:
    c = with_env(ctx, LOOOP_TELLS_CONSUMED_KEEP_SECS="3600")
    now = clock.now()
    new_tell(c.paths.tells, "w1", "old", now)
    new_tell(c.paths.tells, "w1", "new", now)
    take_tells(c.paths.tells, "w1")
    done = c.paths.tells / "consumed"
    _age(done / "w1-1.json", now, 7200)
    _age(done / "w1-2.json", now, 7200)
    housekeep_sessions(c, c.knobs())
    assert sorted(p.stem for p in done.iterdir()) == ["w1-2"]
    lines = c.paths.events.read_text().splitlines()
    assert any('"tells_swept"' in ln and "w1-1" in ln for ln in lines)


def test_one_tell_is_claimed_once_and_put_back_it_is_pending_again(tmp_path: Path) -> None:
    tells = tmp_path / "tells"
    tid = new_tell(tells, "w1", "typed in", 1_800_000_000.0)
    new_tell(tells, "w1", "another", 1_800_000_000.0)
    assert take_tell(tells, "w2", tid) is None  # another worker's id: never claimed
    assert take_tell(tells, "w1", tid) == "typed in"
    assert take_tell(tells, "w1", tid) is None  # a racing reader gets nothing
    take_tell(tells, "w1", tid, back=True)  # what it was typed into did not take it
    assert take_tells(tells, "w1") == ["typed in", "another"]
