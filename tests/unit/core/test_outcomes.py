"""A worker's outcome (views/outcomes.py): each row of the one table derived from the facts of
an end, in its order; the failure streak that makes a worker stalled; a landing that
overrides; the metrics counter per outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from looop.home.errors import LooopError
from looop.home.sameway import same_way
from looop.views import outcomes
from looop.views.outcomes import TABLE, End, Outcome
from looop.web.metrics import tally

ALL = set(TABLE)
FAIL = {"pass": False, "cmd": "make test", "output": "ran 3\nFAILED test_x"}
PASS = {"pass": True, "cmd": "make test", "output": "ok"}


def _end(**kw: Any) -> End:
    state = kw.pop("state", "exited")
    code = kw.pop("exit_code", 0)
    return End(state, code, **kw)


def test_each_row_is_derived_from_its_own_fact() -> None:
    cases: list[tuple[End, str]] = [
        (_end(landed=True, verify=FAIL), Outcome.LANDED),
        (_end(state="killed", exit_code=137, over="budget"), Outcome.OVER_BUDGET),
        (_end(state="killed", exit_code=137, over="disk"), Outcome.LIMITED),
        (_end(window=True, exit_code=1), Outcome.LIMITED),
        (_end(state="killed", exit_code=137, limit="memory"), Outcome.LIMITED),
        (_end(verify=PASS), Outcome.VERIFIED),
        (_end(verify=FAIL, asking=True), Outcome.FAILED_VERIFY),
        (_end(asking=True, exit_code=1), Outcome.NEEDS_HUMAN),
        (_end(state="killed", exit_code=143), Outcome.KILLED),
        (_end(exit_code=1), Outcome.FAILED),
        (_end(exit_code=0), Outcome.EXITED),
        (_end(exit_code=None), Outcome.EXITED),
        (_end(landed="pr", verify=PASS), Outcome.PROPOSED),
    ]
    for end, want in cases:
        got, why = outcomes.derive(end)
        assert got == want, (got, want)
        assert why and "\n" not in why and "None" not in why
    # every outcome but stalled (the streak's) is reached by some end
    assert {w for _, w in cases} == ALL - {Outcome.STALLED}
    # the why never carries what the worker wrote (it reaches the journal and the prompt)
    assert all("FAILED" not in outcomes.derive(e)[1] for e, _ in cases)
    assert "make test" in outcomes.derive(_end(verify=FAIL))[1]
    assert "FAILED test_x" in str(outcomes.signature(Outcome.FAILED_VERIFY, _end(verify=FAIL)))


def test_the_table_is_whole_and_short_texts_are_distinct() -> None:
    names = {v for k, v in vars(Outcome).items() if k.isupper()}
    assert set(TABLE) == names and len(names) == 11
    shorts = [outcomes.short(o) for o in TABLE]
    assert len(set(shorts)) == len(shorts) and "—" not in shorts
    assert outcomes.short(None) == "—" and outcomes.short("nonsense") == "—"


def _run(prev: dict[str, Any] | None, gen: str, end: End, n: int = 3) -> dict[str, Any]:
    return outcomes.next_record(prev, "w", gen, end, n, f"{gen}-end")


def test_the_same_failure_n_times_stalls_and_a_different_one_starts_again() -> None:
    def fail() -> End:
        return _end(exit_code=1, last_line="Error: no such file")

    r1 = _run(None, "g1", fail())
    r2 = _run(r1, "g2", fail())
    assert (r1["streak"], r2["streak"], r2["stalled"], r2["outcome"]) == (1, 2, False, "failed")
    r3 = _run(r2, "g3", fail())
    assert r3["stalled"] and r3["outcome"] == "stalled" and "3 times" in r3["why"]
    other = _run(r2, "g3", _end(exit_code=1, last_line="Error: another"))
    assert other["streak"] == 1 and not other["stalled"]  # a different failure: not the same
    code2 = _run(r2, "g3", _end(exit_code=2, last_line="Error: no such file"))
    assert code2["streak"] == 1
    assert _run(r2, "g3", fail(), n=0)["stalled"] is False  # 0: stalling off


def test_a_kill_someone_asked_for_is_killed_but_no_failure(tmp_path: Path) -> None:
    data, rec = str(tmp_path), None
    for g in ("g1", "g2", "g3"):
        outcomes.mark_kill(data, "w", g, "human")  # kill_worker (`looop kill`) marks it first
        rec = _run(outcomes.read_record(data, "w"), g, _end(state="killed", exit_code=143))
        outcomes.write_record(data, rec)
    assert rec is not None and rec["outcome"] == "killed" and "by the human's kill" in rec["why"]
    assert rec["streak"] == 0 and not rec["stalled"]
    # the mark is the generation's own: the next run killed by a signal is a failure again
    nxt = _run(rec, "g4", _end(state="killed", exit_code=137))
    assert nxt["streak"] == 1 and "human" not in nxt["why"]


def test_a_verify_failure_signature_is_its_output_and_a_success_ends_a_stall() -> None:
    r = None
    for g in ("g1", "g2", "g3"):
        r = _run(r, g, _end(verify=FAIL, last_line=f"varies {g}"))
    assert r is not None and r["stalled"] and r["outcome"] == "stalled"
    waiting = _run(r, "g4", _end(asking=True))  # not a failure, not a success: still stalled
    assert waiting["stalled"] and waiting["outcome"] == "needs_human"
    ok = _run(waiting, "g5", _end(verify=PASS))
    assert not ok["stalled"] and ok["streak"] == 0 and ok["outcome"] == "verified"


def test_stalled_refuses_until_unstalled_and_forget_keeps_a_stalled_record(tmp_path: Path) -> None:
    data = str(tmp_path)
    rec = None
    for g in ("g1", "g2", "g3"):
        rec = _run(rec, g, _end(state="killed", exit_code=137, last_line="Killed"))
        outcomes.write_record(data, rec)
    try:
        outcomes.refuse_if_stalled(data, "w", "start_worker")
    except LooopError as e:
        msg = str(e)
    else:
        raise AssertionError("a stalled worker was not refused")
    assert "\n" not in msg and "looop worker unstall w" in msg and "start_worker" in msg
    outcomes.forget(data, "w")
    assert outcomes.stalled(data, "w") is not None  # a stalled record outlives its session
    assert outcomes.unstall(data, "w") and not outcomes.unstall(data, "w")
    outcomes.refuse_if_stalled(data, "w", "start_worker")  # no longer refused
    outcomes.forget(data, "w")
    assert outcomes.read_record(data, "w") is None


def test_a_landing_overrides_an_end_and_carries_into_a_later_one(tmp_path: Path) -> None:
    data = str(tmp_path)
    outcomes.write_record(data, _run(None, "g1", _end(verify=PASS)))
    was = outcomes.mark_landed(data, "w", "g1", {"mode": "ff"})
    rec = outcomes.read_record(data, "w")
    assert was == "verified" and rec is not None
    assert outcomes.outcome_of(rec, "g1") == "landed" and outcomes.outcome_of(rec, "g0") is None
    # landed while it still ran (generation g2): the end it makes later is landed
    assert outcomes.mark_landed(data, "w", "g2", {"mode": "pr"}) is None
    later = _run(outcomes.read_record(data, "w"), "g2", _end(exit_code=1))
    assert later["outcome"] == "proposed"  # a pull request opened: landed once merged


def test_an_unreadable_record_reads_as_none(tmp_path: Path) -> None:
    path = Path(outcomes.record_path(str(tmp_path), "w"))
    path.parent.mkdir()
    path.write_text("{torn")
    assert outcomes.read_record(str(tmp_path), "w") is None
    assert outcomes.stalled(str(tmp_path), "w") is None


def test_metrics_count_workers_by_outcome() -> None:
    recs = [
        {"event": "worker_ended", "outcome": "verified"},
        {"event": "worker_ended", "outcome": "verified"},
        {"event": "worker_ended", "outcome": "stalled"},
        {"event": "worker_ended", "outcome": "landed", "was": "verified"},
        {"event": "worker_ended", "outcome": "bogus"},
        {"event": "worker_ended"},
    ]
    t = tally(recs)
    assert t.ends == {"verified": 2, "stalled": 1, "landed": 1}


def test_lines_that_differ_only_in_times_and_ids_fail_the_same_way() -> None:
    """A failure's line carries noise that changes on every run (a duration, a clock time,
    a pid, a commit or temp id): the same failure still stalls; other words or a count of
    failures are another failure."""
    noisy = [
        (
            "FAILED test_x - 1 failed, 3 passed in 0.53s",
            "FAILED test_x - 1 failed, 3 passed in 9.1s",
        ),
        ("[01:23:45] error: lock held by pid 48213", "[01:24:10] error: lock held by pid 51007"),
        (
            "2026-11-27T01:23:45Z fetch failed after 1200 ms",
            "2026-11-28T09:02:11Z fetch failed after 8 ms",
        ),
        ("cannot write /tmp/tmp.a1b2c3d4e5/out", "cannot write /tmp/tmp.9f8e7d6c5b/out"),
        ("HEAD is at 3f9c2e1a: broken build", "HEAD is at 77ab0c4d: broken build"),
        ("timed out after 30 s", "timed out after 45 s"),
    ]
    for first, again in noisy:
        r = _run(None, "g1", _end(exit_code=1, last_line=first))
        r = _run(r, "g2", _end(exit_code=1, last_line=again))
        r = _run(r, "g3", _end(exit_code=1, last_line=first))
        assert r["stalled"] and r["outcome"] == "stalled", (first, again)
    other = [
        ("FAILED test_x - 1 failed", "FAILED test_x - 2 failed"),
        ("FAILED test_a", "FAILED test_b"),
        ("error in step 3", "error in step 4"),
    ]
    for first, again in other:
        r = _run(None, "g1", _end(exit_code=1, last_line=first))
        r = _run(r, "g2", _end(exit_code=1, last_line=again))
        assert r["streak"] == 1, (first, again)
    out = {"pass": False, "cmd": "pytest", "output": "E assert 1 == 2\n1 failed in 0.41s"}
    r = None
    for g, secs in (("g1", "0.41"), ("g2", "0.39"), ("g3", "1.02")):
        v = {**out, "output": f"E assert 1 == 2\n1 failed in {secs}s"}
        r = _run(r, g, _end(verify=v))
    assert r is not None and r["stalled"] and r["outcome"] == "stalled"


def test_a_bound_or_budget_hit_again_and_again_stalls_but_a_usage_window_does_not() -> None:
    """Held at its budget or killed at a bound each time: the same failure, each start burns
    it again. Stopped on its account's usage window: the provider's, not the worker's."""
    for kw in (
        {"state": "killed", "exit_code": 137, "over": "budget"},
        {"state": "killed", "exit_code": 137, "over": "disk"},
        {"state": "killed", "exit_code": 137, "limit": "memory"},
    ):
        r = None
        for i, g in enumerate(("g1", "g2", "g3")):
            r = _run(r, g, _end(last_line=f"spent {i}", **kw))
        assert r is not None and r["stalled"] and r["outcome"] == "stalled", kw
        assert r["streak"] == 3
    r = None
    for g in ("g1", "g2", "g3", "g4"):
        r = _run(r, g, _end(window=True, exit_code=1, last_line="usage limit reached"))
    assert r is not None and not r["stalled"] and r["outcome"] == "limited"
    r = None
    for g in ("g1", "g2", "g3", "g4"):  # the fleet's daily budget: its day, not its failure
        r = _run(r, g, _end(state="killed", exit_code=137, over="daily"))
    assert r is not None and not r["stalled"] and r["outcome"] == "over_budget"
    assert r["why"] == "held at the daily budget"
    budget = _run(None, "g1", _end(state="killed", exit_code=137, over="budget"))
    memory = _run(budget, "g2", _end(state="killed", exit_code=137, limit="memory"))
    assert memory["streak"] == 1  # another bound: another failure
    window_too = _end(state="killed", exit_code=137, limit="memory", window=True)
    outcome, _ = outcomes.derive(window_too)  # the window, first in the table's order
    assert outcome == "limited" and outcomes.signature(outcome, window_too) is None


def test_same_way_keeps_a_duration_s_unit_whatever_its_size() -> None:
    shown = {same_way(f"unreachable after {n}.5s") for n in (3, 42, 1234, 32767)}
    assert shown == {"unreachable after #s"}


@given(st.text(max_size=300))
def test_same_way_takes_any_line_and_keeps_its_words(line: str) -> None:
    shown = same_way(line)
    assert same_way(shown) == shown  # what is left is no noise itself
    assert [w for w in line.split() if w.isalpha()] == [w for w in shown.split() if w.isalpha()]
