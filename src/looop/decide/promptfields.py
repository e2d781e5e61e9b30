"""Each reading split by how often its fields change, so one timestamp or counter in a detail
never moves the bytes of the rest of the reading (issue 54).

A JSON reading's fields are its top-level keys, and each key of its `detail`. Its `signal` is
what wakes the loop, its coarse `age` grows and a worker's `news` is another reading's signal
(decide/promptreadings), so they change by design: they are always shown late (READINGS THAT
MOVE). Any other field that changed between two prompts has moved, and stays moving while the
reading is shown: the reading's settled fields keep their place in SENSOR READINGS, its moving
ones join its signal late, where a change costs the provider's cache only that short item. A
moving field whose value is a timestamp with a zone is shown as its coarse age (`<1m ago`): a
sensor's `checked_at` then reads the same from beat to beat. A moving detail field that changed
in two of the last three prompts is volatile (a counter, a worker's spend): it is shown apart,
in the prompt's last readings section, so its item above stays the same. A reading that is not
a JSON object is one whole: it moves as one item.

No record says which fields of an item move before a prompt has shown it (a fresh home's first
decide): then what a field looks like says (`presumed`, FRESH_S), so its sensor's clock and
counters are not first shown among the settled fields and moved out of them a beat later."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from looop.decide.order import Record, digest
from looop.decide.promptreadings import coarse
from looop.home import jsonio

Path = tuple[str, ...]  # ("signal",) or ("detail", "branch")
# the signal, the coarse ages and a worker's news (decide/promptreadings): always late
LATE = frozenset({'["signal"]', '["age"]', '["news"]'})
HISTORY = 3  # prompts a field's changes are remembered for
VOLATILE = 2  # changes among them that make a field volatile
# ISO 8601 and `stat -c %y` / `date --rfc-3339` (a space, nanoseconds, a space before the zone)
STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)? ?(Z|[+-]\d\d:?\d\d)")
CLOCK = re.compile(r"\d\d:\d\d:\d\d(\.\d+)?")  # `date +%T`: a sensor's clock, no date to age
# A detail field no prompt has shown yet is presumed to move when it looks like the sensor's
# own clock or counter: a timestamp (or unix second) within FRESH_S of now, a number under a
# key naming an age or a span (`idle_s`, `uptime`: it grows with the clock) or a count (`runs`,
# `retries`, `spend_usd`). An old timestamp (`started_at`) or a plain number stays settled.
# An item whose own clock is fresh (such a timestamp, or a coarse age under a minute: a busy
# worker's output) is active: its counts and looop's own moving fields are presumed to
# change every beat, and are shown last of all from the first prompt.
FRESH_S = 900
AGES = frozenset(("age", "s", "ms", "secs", "seconds", "since", "elapsed", "uptime", "idle"))
_COUNTS = ("count", "counter", "total", "runs", "tries", "retries", "attempts", "spend", "usd")
COUNTS = frozenset((*_COUNTS, "cost", "tokens", "seq", "n"))
WORDS = re.compile(r"[a-z]+|[A-Z][a-z]*")


_NONE: tuple[None, None, dict[str, str], frozenset[str], dict[str, str]] = (
    None,
    None,
    {},
    frozenset(),
    {},
)


@dataclass(frozen=True)
class Split:
    settled: str | None  # the reading without its signal and moving fields (None: nothing left)
    late: str | None  # its signal, ages and moving fields, as one JSON object (None: none)
    volatile: str | None  # its volatile fields, as `name=value …` on one line (None: none)
    digests: dict[str, str]  # each field's digest as shown, for the next prompt's record
    moved: frozenset[str]  # the fields that move, for the next prompt's record
    history: dict[str, str]  # each field's recent changes, "1" a change, the latest last
    rank: int = 0  # how often it changes: 2 it has volatile fields, 1 moving ones, 0 neither


def _dump(value: Any) -> str:
    return jsonio.canonical(value) + "\n"


def fields_of(text: str) -> dict[str, tuple[Path, Any]] | None:
    """The reading's fields by name (the JSON of its path), or None if it is not an object."""
    try:
        value = jsonio.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    out: dict[str, tuple[Path, Any]] = {}
    for key, v in value.items():
        if key == "detail" and isinstance(v, dict) and v:
            for sub, sv in v.items():
                out[jsonio.dumps(["detail", sub])] = (("detail", sub), sv)
        else:
            out[jsonio.dumps([key])] = ((key,), v)
    return out


def _rebuild(chosen: list[tuple[Path, Any]]) -> str:
    obj: dict[str, Any] = {}
    for path, v in chosen:
        if len(path) == 1:
            obj[path[0]] = v
        else:
            obj.setdefault(path[0], {})[path[1]] = v
    return _dump(obj)


def _pairs(chosen: list[tuple[Path, Any]]) -> str:
    """Fields as `name=value` (a value as JSON; a name its key, or its whole path where two
    share a key), on one line."""
    keys = [path[-1] for path, _ in chosen]
    return " ".join(
        f"{p[-1] if keys.count(p[-1]) == 1 else '.'.join(p)}={jsonio.canonical(v)}"
        for p, v in chosen
    )


def as_age(value: Any, now: float) -> Any:
    """A timestamp with a zone as its coarse age from `now` (`1-10m ago`, `in 1-6h`); any
    other value as it is."""
    if not isinstance(value, str) or len(value) > 40 or not STAMP.fullmatch(value):
        return value
    try:
        at = _when(value)
    except (ValueError, OverflowError, OSError):
        return value
    return f"{coarse(now - at)} ago" if at <= now else f"in {coarse(at - now)}"


def _words(path: Path) -> set[str]:
    return {w.lower() for w in WORDS.findall(path[-1])}


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace(" ", "T", 1).replace(" ", "")).timestamp()


def _fresh(value: Any, now: float) -> bool:
    """A timestamp with a zone within FRESH_S of `now`, or a bare time of day."""
    if isinstance(value, str) and CLOCK.fullmatch(value):
        return True
    if not isinstance(value, str) or as_age(value, now) == value:
        return False
    return abs(now - _when(value)) <= FRESH_S


def presumed(path: Path, value: Any, now: float) -> bool:
    """Whether a detail field no prompt has shown yet is presumed to move (see FRESH_S)."""
    if path[0] != "detail" or len(path) != 2 or isinstance(value, bool):
        return False
    if not isinstance(value, int | float):
        return _fresh(value, now)
    return bool(_words(path) & (AGES | COUNTS)) or abs(now - value) <= FRESH_S


def active(fields: dict[str, tuple[Path, Any]], now: float, born: set[Path]) -> bool:
    """Whether the item's own clock is fresh (see FRESH_S); looop's own moving fields
    (`born`: when a goal was acted on) change once per event and say nothing of it."""
    for path, v in fields.values():
        if path == ("age",) and isinstance(v, dict) and coarse(0) in v.values():
            return True
        if path[0] == "detail" and path[1:] not in born and _fresh(v, now):
            return True
    return False


def split(
    key: str,
    text: str,
    record: Record,
    moves: frozenset[str] = frozenset(),
    now: float = 0.0,
    whole: bool = False,
) -> Split:
    """`text` (the item `key`'s) split into its settled, moving and volatile fields, by the
    record of the last prompts: a field moves once its value differs from the one shown there;
    the detail keys in `moves` move from the start (and show as they are). Timestamps that
    were seen moving show as ages from `now`. `whole`: nothing is settled (an item that came
    after the first prompt is shown late, whole, but for its volatile fields)."""
    fields = fields_of(text)
    if fields is None:
        return Split(None, text, None, {}, frozenset(), {}) if whole else Split(text, *_NONE)
    was, before = record.moving.get(key, frozenset()), record.fields.get(key)
    born: set[Path] = {(k,) for k in moves}
    seeded: dict[str, str] = {}
    if before is None:  # no prompt showed this item yet: what its fields look like says
        guess = {n for n, (path, v) in fields.items() if presumed(path, v, now)}
        was = was | guess
        if active(fields, now, born):  # as if its counts and own moving fields changed already
            beats = {n for n in guess if _words(fields[n][0]) & COUNTS}
            beats |= {n for n, (path, _) in fields.items() if path[1:] in born}
            seeded = dict.fromkeys(beats, "1" * VOLATILE)

    def differs(name: str, value: Any) -> bool:
        return before is not None and before.get(name) != digest(_dump(value))

    moved = frozenset(
        n
        for n, (path, v) in fields.items()
        if n in LATE or n in was or path[1:] in born or differs(n, v)
    )
    # a timestamp seen moving reads as its age; looop's own (`moves`) change once per event
    aged = {n for n in moved if fields[n][0][1:] not in born}
    shown = {n: (p, as_age(v, now) if n in aged else v) for n, (p, v) in fields.items()}
    digests = {n: digest(_dump(v)) for n, (_, v) in shown.items()}
    changed = {n for n in shown if before is not None and before.get(n) != digests[n]}
    old = {**seeded, **record.history.get(key, {})}
    history = {n: (old.get(n, "") + ("1" if n in changed else "0"))[-HISTORY:] for n in shown}
    volatile = {n for n in moved - LATE if history[n].count("1") >= VOLATILE}
    late_ones = frozenset(shown) if whole else moved
    settled = [shown[n] for n in shown if n not in late_ones]
    late = [shown[n] for n in sorted(late_ones - volatile)]
    fast = [shown[n] for n in sorted(volatile)]
    return Split(
        _rebuild(settled) if settled else None,
        _rebuild(late) if late else None,
        _pairs(fast) if fast else None,
        digests,
        moved - LATE,
        {n: h for n, h in history.items() if "1" in h},
        2 if volatile else 1 if moved - LATE else 0,
    )
