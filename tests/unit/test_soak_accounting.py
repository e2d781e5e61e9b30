"""The soak's move accounting: a doubled or lost move is caught, rotation is not a loss."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import soak
from soak_follow import Follow


def test_a_clean_run_has_nothing_doubled_or_lost() -> None:
    assert soak.move_accounting([3, 4, 5], [3, 4, 5]) == ([], [])


def test_a_move_journaled_twice_is_doubled() -> None:
    assert soak.move_accounting([3, 4, 4, 5], [3, 4, 5]) == ([4], [])


def test_an_executed_move_missing_from_the_journal_is_lost() -> None:
    assert soak.move_accounting([3, 5], [3, 4, 5]) == ([], [4])


def test_moves_rotated_out_of_the_journal_are_not_lost() -> None:
    # the journal's oldest lines rotated away: steps before its first kept line are not lost
    assert soak.move_accounting([7, 8], [1, 2, 7, 8]) == ([], [])


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _rotate(path: Path) -> None:
    """As looop caps journal.md and events.jsonl: the full file becomes NAME.1."""
    os.replace(path, path.with_name(path.name + ".1"))


def test_a_follower_reads_every_line_through_every_rotation(tmp_path: Path) -> None:
    journal = tmp_path / "journal.md"
    seen: list[str] = []
    f = Follow(journal, seen.append)
    f.poll()  # nothing there yet
    _append(journal, "a\nb\n")
    f.poll()
    _append(journal, "c\n")
    _rotate(journal)  # one rotation between reads: the held file's end is still read
    _append(journal, "d\n")
    f.poll()
    _rotate(journal)
    _append(journal, "e\n")
    _rotate(journal)  # two between reads: the one that came and went is read whole
    _append(journal, "f\npart")
    f.poll()
    _append(journal, "ial\n")
    f.poll()
    f.close()
    assert seen == ["a", "b", "c", "d", "e", "f", "partial"]
    assert f.files == 4


def test_a_move_replayed_early_is_caught_after_the_journal_rotated_it_away(
    tmp_path: Path,
) -> None:
    """What the old check read at the end (journal.md and .1) no longer holds the replay;
    the soak's follower, reading as the journal grows, does."""
    journal = tmp_path / "journal.md"
    s = soak.Soak(tmp_path, tmp_path, tmp_path, {}, tmp_path / "script.json")
    for k in [0, 1, 2, 2, *range(3, 42)]:  # step 2 replayed early
        _append(journal, f"- 2026-01-01 10:00 soak step {k}\n")
        if k % 5 == 4:
            _rotate(journal)
        s.follow()
    at_the_end = (tmp_path / "journal.md.1").read_text() + journal.read_text()
    assert "soak step 2\n" not in at_the_end
    doubled, lost = soak.move_accounting(s.journaled, list(range(42)))
    assert (doubled, lost) == ([2], [])


def test_a_zombie_is_the_homes_by_its_parent() -> None:
    states = {10: "S", 11: "Z", 12: "Z", 13: "S", 14: "Z"}
    parents = {10: 1, 11: 10, 12: 99, 13: 10, 14: 13}
    assert soak.home_zombies(states, parents, {10, 13}) == [11, 14]


def _counts(field: str, values: list[int]) -> list[soak.Sample]:
    return [
        soak.Sample(t=i * 5.0, pulse_pid=1, rss={}, **{**_QUIET, field: v})
        for i, v in enumerate(values)
    ]


def test_a_zombie_per_beat_fails_and_a_passing_one_does_not() -> None:
    name, ok, _ = soak.zombie_check(_counts("zombies", [0, 1, 0, 0, 1, 0, 0]))
    assert name == "no zombie lingers" and ok
    assert not soak.zombie_check(_counts("zombies", [0, 1, 2, 3, 4, 5, 6]))[1]
    assert not soak.zombie_check(_counts("zombies", [0, 0, 0, 0, 0, 0, 1]))[1]


def test_a_cap_broken_mid_run_fails_though_the_last_sample_is_under_it() -> None:
    under = soak.JOURNAL_CAP
    rows = {n: ok for n, ok, _ in soak.caps(_counts("journal_b", [under, under * 9, under]))}
    assert rows["journal.md under its cap in every sample"] is False
    assert rows["events.jsonl under its cap in every sample"] is True
    rows = {n: ok for n, ok, _ in soak.caps(_counts("journal_b", [under] * 3))}
    assert rows["journal.md under its cap in every sample"] is True


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


def test_a_short_run_is_judged_and_a_leak_of_a_mb_a_beat_fails_it() -> None:
    """Memory is judged in every run: 3 minutes sampled every 5 s, flat or leaking a MB a
    beat (5 s) in the pulse."""

    def at(kb_at: Callable[[float], int]) -> list[soak.MemPoint]:
        return [soak.MemPoint(t, {"pulse:1": kb_at(t)}) for t in range(0, 181, 5)]

    flat = soak.memory_fits(at(lambda t: 25_000 + (300 if t > 90 else 0)), 180)
    leak = soak.memory_fits(at(lambda t: 25_000 + int(t) // 5 * 1024), 180)
    assert [f.flat for f in flat] == [True]
    assert [f.flat for f in leak] == [False]
    rows = dict((n, ok) for n, ok, _ in soak.memory_checks(leak))
    assert rows["pulse memory flat (least squares, both halves, each of 1)"] is False


def test_beats_are_counted_from_the_events_though_the_pulses_log_stopped(
    tmp_path: Path,
) -> None:
    """The 60-minute run's false NO: the clock faults counted `next beat in` lines in the
    pulse's log, which its supervisor stops writing after one failed write (the disk-full
    fault before them); the pulse_sleep events it also writes go on, rotation and all."""
    data = tmp_path / "data"
    (data / "sessions" / "pulse").mkdir(parents=True)
    log = data / "sessions" / "pulse" / "output.log"
    log.write_text("[12:01:49] · next beat in 5s (active)\n")  # then silent: ENOSPC once
    events = data / "events.jsonl"
    _append(events, '{"event":"pulse_start"}\n')
    s = soak.Soak(tmp_path, data, tmp_path, {}, tmp_path / "script.json")
    before = s.beats()
    for k in range(7):
        _append(events, '{"event":"tick_start"}\n{"event":"pulse_sleep","secs":5}\n')
        if k in (3, 4):
            _rotate(events)
        s.beats()  # the driver looks every second or so
    assert s.beats() == before + 7
    assert s.beats_logged() == 1  # what the old check waited on: it never grew


def test_soak_faults_picks_faults_by_key_in_the_runs_order() -> None:
    picked = soak.pick_faults("clock_forward, disk")
    assert [fn.__name__ for _, fn in picked] == ["fault_disk", "fault_clock_forward"]
    assert soak.pick_faults("") == soak.FAULTS
    try:
        soak.pick_faults("clock,forward")
    except ValueError as e:
        assert "no fault 'forward'" in str(e) and "clock_forward" in str(e)
    else:
        raise AssertionError("an unknown fault key was taken")
