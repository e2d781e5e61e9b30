"""A worker's outcome: the one named final state each worker ends in, the table of them with
how each is derived, and its record `outcomes/<id>.json` (atomic).

The beat derives it once, when it first sees the worker ended and its verify (if any) ran
(loop/ended.py); a human's later `looop land` recomputes it (landed overrides the rest). The
record outlives the worker's generations: it carries the failure streak that marks a worker
stalled (the same failure `worker_stall_after` times in a row), which refuses the decider's
start and restart of it until a human clears it (`looop worker unstall ID`).

Light (no typing, pathlib or dataclasses): `looop ls` reads the records on its fast path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home import store, where
from looop.home.errors import CorruptState, LooopError
from looop.home.sameway import same_way

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal

    # mypy holds every outcome written to one of these names
    Name = Literal[
        "landed", "proposed", "stalled", "over_budget", "limited", "verified", "failed_verify",
        "needs_human", "killed", "failed", "exited",
    ]  # fmt: skip

OUTCOMES = "outcomes"  # <data>/outcomes/<id>.json


class Outcome:
    """The outcome names (plain strings: they are the record's and `ls --json`'s values)."""

    LANDED: Name = "landed"
    PROPOSED: Name = "proposed"
    STALLED: Name = "stalled"
    OVER_BUDGET: Name = "over_budget"
    LIMITED: Name = "limited"
    VERIFIED: Name = "verified"
    FAILED_VERIFY: Name = "failed_verify"
    NEEDS_HUMAN: Name = "needs_human"
    KILLED: Name = "killed"
    FAILED: Name = "failed"
    EXITED: Name = "exited"


# The one table: outcome -> (what `ls` shows, what it means and how it is derived). Derivation
# takes the first row that holds, in this order; the import stops when a row is missing.
TABLE: dict[Name, tuple[str, str]] = {
    Outcome.LANDED: ("landed", "a human landed its branch (`looop land`), before or after it "
                     "ended, and its base holds it; overrides the rest"),
    Outcome.PROPOSED: ("proposed", "a human opened its pull request (`looop land --pr`): "
                       "landed once the base holds it"),
    Outcome.STALLED: ("stalled", "it ended failing the same way (outcome, exit code, last line "
                      "less its times and ids; the bound it hit) worker_stall_after times in a "
                      "row: the decider may not start or restart it until a human clears it"),
    Outcome.OVER_BUDGET: ("over budget", "the meter held it at its spend budget or the daily "
                          "budget (budgets/<id>.over) when it ended"),
    Outcome.LIMITED: ("limited", "it stopped on its account's provider usage limit (a usage "
                      "window), or was killed at a memory or disk bound"),
    Outcome.VERIFIED: ("verified", "its verify command passed after it ended"),
    Outcome.FAILED_VERIFY: ("verify failed", "its verify command failed after it ended"),
    Outcome.NEEDS_HUMAN: ("blocked on human", "it ended with an ask of its unanswered (no "
                          "verify said otherwise)"),
    Outcome.KILLED: ("killed", "it was killed: `looop kill`, a timeout, a signal, or its "
                     "supervisor died"),
    Outcome.FAILED: ("failed", "it ended on its own with a non-zero exit code and no verify"),
    Outcome.EXITED: ("exited", "it ended on its own, exit 0 (or its exit code unknown)"),
}  # fmt: skip
_NAMES = {v for k, v in vars(Outcome).items() if k.isupper()}
if set(TABLE) != _NAMES:  # a new outcome without its row (or a row without one) stops the import
    raise TypeError("views/outcomes.py: every Outcome needs its one row in TABLE")

# the outcomes that are a failure: the same one again and again makes a worker stalled (a
# budget or a bound hit again burns it again; a usage window is its provider's: `signature`)
FAILURES = frozenset(  # exit 0 is no failure (`signature`); an unknown exit code is one
    {Outcome.OVER_BUDGET, Outcome.LIMITED, Outcome.FAILED_VERIFY, Outcome.KILLED}
    | {Outcome.FAILED, Outcome.EXITED}
)
# the outcomes that end a stall of their own accord: the work went through this time
SUCCESSES = frozenset({Outcome.LANDED, Outcome.VERIFIED, Outcome.EXITED})
LAST_LINE_MAX = 200
CMD_SHOWN = 80


BOUND_WORDS = {"pids": "process", "memory": "memory", "disk": "disk"}  # a bound as lines say it


class End:
    """What the beat found of one ended worker, each fact read from its own file."""

    __slots__ = (
        "asked", "asking", "exit_code", "landed", "last_line", "limit", "over", "state", "verify",
        "window",
    )  # fmt: skip

    def __init__(
        self,
        state: str,
        exit_code: int | None,
        *,
        limit: str | None = None,
        verify: dict[str, Any] | None = None,
        landed: bool | str = False,
        over: str | None = None,
        window: bool = False,
        asking: bool = False,
        last_line: str = "",
    ) -> None:
        self.state, self.exit_code, self.limit = state, exit_code, limit
        self.verify, self.landed = verify, landed  # "pr": its pull request is open, no more
        self.over = over  # None: no mark; "budget", "daily" or the bound it passed ("disk")
        self.window, self.asking = window, asking
        self.last_line = last_line[-LAST_LINE_MAX:]
        self.asked: str | None = None  # who asked for its kill (kill_worker): not a failure


def _last(text: object) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1][-LAST_LINE_MAX:] if lines else ""


def derive(end: End) -> tuple[Name, str]:
    """The outcome of one end (never stalled: that is the streak's, `next_record`), and one
    line saying why, in the table's order. The line holds nothing a worker wrote (its output
    goes to the journal and the decider's LAST FAILURE): the failure's own words stay in
    the record's signature."""
    if end.landed == "pr":
        return Outcome.PROPOSED, "its pull request is open"
    if end.landed:
        return Outcome.LANDED, "its branch was landed"
    if end.over == "budget":
        return Outcome.OVER_BUDGET, "held at its spend budget"
    if end.over == "daily":
        return Outcome.OVER_BUDGET, "held at the daily budget"
    if end.over is not None:
        return Outcome.LIMITED, f"held at its {end.over} bound"
    if end.window:
        return Outcome.LIMITED, "stopped on its account's usage limit"
    if end.limit:  # the kernel's kill, or the fork it refused that ended the run
        how = "killed" if end.state == "killed" else "ended"
        return Outcome.LIMITED, f"{how} at its {BOUND_WORDS.get(end.limit, end.limit)} bound"
    v = end.verify
    if v is not None:  # the command is the decider's or a human's; its output, the worker's
        cmd = str(v.get("cmd") or "?")[:CMD_SHOWN]
        if v.get("pass") is True:
            return Outcome.VERIFIED, f"verify passed ({cmd})"
        return Outcome.FAILED_VERIFY, f"verify failed ({cmd}, {_exit(v.get('exit_code'))})"
    if end.asking:
        return Outcome.NEEDS_HUMAN, "an ask of its waits for a human"
    if end.state == "killed":
        by = f" by the {end.asked}'s kill" if end.asked else ""
        return Outcome.KILLED, f"killed{by} ({_exit(end.exit_code)})"
    if end.exit_code not in (0, None):
        return Outcome.FAILED, _exit(end.exit_code)
    return Outcome.EXITED, _exit(end.exit_code)


def _exit(code: object) -> str:
    return "exit code unknown" if code is None else f"exit {code}"


def signature(outcome: Name, end: End) -> str | None:
    """The failure this end is, to compare with the last one (None: not a failure). Its
    line's noise (times, durations, ids: home/sameway.py) is left out, so a failure that
    prints when it failed is still the same failure."""
    if outcome not in FAILURES or (outcome == Outcome.EXITED and end.exit_code == 0):
        return None
    if outcome == Outcome.KILLED and end.asked:
        return None  # a kill someone asked for is their choice, not the worker failing
    if outcome in (Outcome.OVER_BUDGET, Outcome.LIMITED):  # as `derive` found it
        if end.over == "daily":
            return None  # the fleet's day, not this worker: the next day it goes on
        if end.over is not None:
            return f"{outcome}|{end.over}"
        return None if end.window else f"{outcome}|{end.limit}"  # a window: its provider's
    last = _last((end.verify or {}).get("output")) if end.verify is not None else end.last_line
    return f"{outcome}|{end.exit_code}|{same_way(last)}"


def record_path(data: str, wid: str) -> str:
    return where.join(where.join(data, OUTCOMES), f"{wid}.json")


def read_record(data: str, wid: str) -> dict[str, Any] | None:
    """The worker's outcome record; None when there is none or it cannot be read (a torn
    record is never written: the next end writes it afresh)."""
    try:
        return store.read_json_object(record_path(data, wid))
    except (CorruptState, OSError):
        return None


def outcome_of(rec: dict[str, Any] | None, gen: str) -> str | None:
    """The outcome a record holds for the generation started at `gen` (None: not recorded)."""
    if rec is None or rec.get("gen") != gen:
        return None
    got = rec.get("outcome")
    return got if got in TABLE else None


def short(outcome: object) -> str:
    """What `ls` shows for an outcome name ("—": none)."""
    row = TABLE.get(outcome) if isinstance(outcome, str) else None  # type: ignore[call-overload]
    return row[0] if row is not None else "—"


def next_record(
    prev: dict[str, Any] | None,
    wid: str,
    gen: str,
    end: End,
    stall_after: int,
    ended_at: str,
) -> dict[str, Any]:
    """The record after this end: the derived outcome, the failure streak carried over from
    the last end of the same id, stalled once the streak reaches `stall_after` (0: never)."""
    prev = prev or {}
    landed, asked = prev.get("landed"), prev.get("kill")
    if isinstance(landed, dict) and landed.get("gen") == gen and not end.landed:
        end.landed = how_landed(landed)
    if isinstance(asked, dict) and asked.get("gen") == gen and end.state == "killed":
        end.asked = str(asked.get("by") or "human")
    outcome, why = derive(end)
    sig = signature(outcome, end)
    streak = 0
    if sig is not None:
        streak = int(prev.get("streak") or 0) + 1 if prev.get("signature") == sig else 1
    stalled = bool(prev.get("stalled")) and not (sig is None and outcome in SUCCESSES)
    if sig is not None and stall_after > 0 and streak >= stall_after:
        stalled = True
    if sig is not None and stalled:
        outcome, why = Outcome.STALLED, f"the same failure {streak} times in a row: {why}"
    return {
        "v": 1,
        "id": wid,
        "gen": gen,
        "outcome": outcome,
        "why": why,
        "exit_code": end.exit_code,
        "ended_at": ended_at,
        "signature": sig,
        "streak": streak,
        "stalled": stalled,
        "landed": landed if isinstance(landed, dict) else None,
        "kill": asked if isinstance(asked, dict) else None,
    }


def write_record(data: str, rec: dict[str, Any]) -> None:
    store.write_json(record_path(data, str(rec["id"])), rec)


def how_landed(landed: dict[str, Any]) -> bool | str:
    """A landing as `derive` takes it: a pull request is proposed until its base holds it."""
    return "pr" if landed.get("mode") == "pr" and not landed.get("merged") else True


def promote(data: str, wid: str, holds: Callable[[str, str, str], bool]) -> bool:
    """A proposed worker whose every base now holds its pull request's commit becomes landed;
    `holds(repo, into, commit)` asks git. True: it was promoted."""
    rec = read_record(data, wid)
    landed = (rec or {}).get("landed")
    if rec is None or rec.get("outcome") != Outcome.PROPOSED or not isinstance(landed, dict):
        return False
    heads = landed.get("heads")
    if not isinstance(heads, list) or not heads:
        return False
    if not all(isinstance(h, list) and len(h) == 3 and holds(*map(str, h)) for h in heads):
        return False
    landed["merged"] = True
    rec["outcome"], rec["why"] = derive(End("", None, landed=True))
    write_record(data, rec)
    return True


def mark_landed(data: str, wid: str, gen: str | None, how: dict[str, Any]) -> str | None:
    """A human landed the worker's branch: kept with its record, and the outcome of an
    ended generation becomes landed. Returns the outcome it had (None: not ended yet)."""
    rec = read_record(data, wid) or {"v": 1, "id": wid, "gen": gen, "outcome": None}
    rec["landed"] = {**how, "gen": gen}
    was = outcome_of(rec, gen) if gen is not None else None
    if was is not None:
        rec["outcome"], rec["why"] = derive(End("", None, landed=how_landed(how)))
    elif rec.get("gen") != gen:  # a later generation than the record's last end
        rec.update(gen=gen, outcome=None)
    write_record(data, rec)
    return was


def mark_kill(data: str, wid: str, gen: str, who: str) -> None:
    """A kill was asked for (kill_worker, by a human or the decider): kept with its record so
    the end it makes counts as a choice, not a failure toward a stall."""
    rec = read_record(data, wid) or {"v": 1, "id": wid, "gen": None, "outcome": None}
    rec["kill"] = {"gen": gen, "by": who}
    write_record(data, rec)


def stalled(data: str, wid: str) -> dict[str, Any] | None:
    """The worker's record when it is stalled, else None."""
    rec = read_record(data, wid)
    return rec if rec is not None and rec.get("stalled") else None


def all_stalled(data: str) -> list[dict[str, Any]]:
    """Every stalled worker's record, by id: what waits on a human (home/needs), its session
    aged out or not. A read of each record: as many as the workers `ls --all` lists."""
    return [r for r in store.json_objects(where.join(data, OUTCOMES)).values() if r.get("stalled")]


def refuse_if_stalled(data: str, wid: str, verb: str) -> None:
    """The decider's start or restart of a stalled worker: one line, nothing done."""
    rec = stalled(data, wid)
    if rec is not None:
        raise LooopError(
            f"{verb}: worker {wid} is stalled ({rec.get('why') or 'the same failure again'}) "
            f"— ask a human, never the same work under another id; a human looks, then "
            f"clears it with `looop worker unstall {wid}`"
        )


def unstall(data: str, wid: str) -> bool:
    """A human clears the stall: the streak starts again. False: it was not stalled."""
    rec = stalled(data, wid)
    if rec is None:
        return False
    rec.update(stalled=False, streak=0, signature=None)
    write_record(data, rec)
    return True


def forget(data: str, wid: str) -> None:
    """An aged-out worker's record goes with it, unless it is stalled (a human clears that)."""
    if stalled(data, wid) is None:
        store.remove(record_path(data, wid))
