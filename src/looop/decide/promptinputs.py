"""What a decide prompt is made of, read from the data dir in one step (`gather_inputs`):
the prompt then renders from these values alone (prompt.render_prompt), so what it shows is
pinned by tests that need no data dir, and a beat reads each file once."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.core.readings import AGE_KEYS, Reading, Snapshot, read_reading, split_ages
from looop.decide.order import Record, digest, read_record
from looop.home import jsonio, store
from looop.home.clock import Clock
from looop.home.errors import CorruptState

JOURNAL_LINES = 20  # the journal's last lines the decider sees, at least
SHOWN = ("sensor-", "sys-")  # the readings the prompt shows: a hand-made snapshot is not one
JOURNAL_SPAN = 30  # and at most: the window keeps its first line while it can (promptshown)


@dataclass(frozen=True)
class PromptInputs:
    clock: Clock  # local times in the prompt: NOW, the last failure, the neglected goal
    data_dir: str
    constitution: str
    playbook: str | None = None  # None: no PLAYBOOK.md
    goals: tuple[tuple[str, str], ...] = ()  # (file name, body), by name
    readings: tuple[Reading, ...] = ()  # the sensor-* and sys-* readings, by name
    goal_activity: Mapping[str, Any] = field(default_factory=dict)  # goal id -> last acted
    journal: tuple[str, ...] | None = None  # its last lines; None: no journal to read
    # what the last decide's prompt showed (order.py)
    record: Record = field(default_factory=Record)


def read_lossy(path: Path) -> str | None:
    """Lossy text; None when missing; an unreadable file says so instead of failing the beat."""
    try:
        return store.read_text(path)
    except OSError as e:
        return f"(unreadable: {e.strerror or e})"


def constitution() -> str:
    return resources.files("looop.seed").joinpath("constitution.md").read_text("utf-8")


def gather_inputs(ctx: Ctx, snapshot: Snapshot | None = None) -> PromptInputs:
    """Every file the prompt shows, read once; the readings from the beat's `snapshot` when it
    has one (else from snapshots/)."""
    paths = ctx.paths
    try:
        activity = store.read_json_object(paths.goal_activity) or {}
    except (CorruptState, OSError):
        activity = {}
    try:
        journal: tuple[str, ...] | None = tuple(store.tail_lines(paths.journal, JOURNAL_SPAN))
    except OSError:
        journal = None
    return PromptInputs(
        clock=ctx.clock,
        data_dir=str(paths.data),
        constitution=constitution(),
        playbook=read_lossy(paths.playbook),
        goals=tuple((p.name, read_lossy(p) or "") for p in _goal_files(paths.goals)),
        readings=_readings(paths.snapshots, snapshot),
        goal_activity=activity,
        journal=journal,
        record=read_record(paths.data),
    )


def _goal_files(goals: Path) -> list[Path]:
    try:
        return sorted(p for p in goals.glob("*.md") if p.is_file())
    except OSError:
        return []


def _readings(snapshots: Path, snapshot: Snapshot | None) -> tuple[Reading, ...]:
    if snapshot is not None:
        return tuple(r for r in snapshot if r.name.startswith(SHOWN))
    try:
        found = sorted(p for p in snapshots.glob("*.json") if p.name.startswith(SHOWN))
        return tuple(read_reading(str(snapshots), p.stem) for p in found if p.is_file())
    except OSError:
        return ()


# How the prompt shows the sensor readings: each reading one item, except the system readings
# that list many things at once (sys-sessions' workers, sys-goals' goals), which show one item
# per worker or goal, so one worker's news moves one short item and not thirty workers' worth.
# The ages those two carry grow every beat: they are shown coarsely (a span such as `10-60m`, under
# "age"), so they move only when an age crosses into the next span.
# A sensor reading that names a worker (`detail.worker`: its id) or a worker's branch
# (`detail.branch`), each a string or a list of strings, is that worker's news: its signal is
# shown again under "news" in that worker's item, so the decider finds it beside its owner. A
# reading about many (github's open pull requests) lists them as entries naming theirs
# (`{"branch": …}` or `{"worker": …}`): a worker's news leaves out the entries naming others, so
# it is not cut short by theirs and moves only when its own do. Every worker on a branch named
# (the same name in two repositories) gets the news.


# the system readings shown one item per entry: reading name -> the label of one entry
EACH = {"sys-sessions": "worker", "sys-goals": "goal"}
# a key the prompt leaves out while another that says the same and changes less is shown (the
# snapshot keeps both): a busy worker's output time moves every beat, its idle span seldom; a
# goal's age crosses spans between acts, when it was last acted on changes once per act
SAID_BY = {"last_output_at": "idle_s", "age_s": "last_acted", "last_acted_unix": "last_acted"}
# detail keys of looop's own readings that move by their nature (a worker's output and spend,
# when a goal was acted on): shown late from the first prompt, not once seen moving
MOVES = {
    "sys-sessions": frozenset({"last_output_at", "spend_usd", "uncommitted"}),
    "sys-goals": frozenset({"last_acted", "last_acted_unix"}),
}


NEWS_CAP = 400  # one news signal, in characters of its JSON: a longer one is cut


def _dump(value: Any) -> str:
    return jsonio.canonical(value) + "\n"


def reading_ages(reading: Reading) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A system reading's value without its ages (None when it is not a JSON reading of
    AGE_KEYS), and the ages by item."""
    if reading.name not in AGE_KEYS or not reading.is_json:
        return None, {}
    return split_ages(reading)


def _named(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _brief(signal: Any) -> Any:
    text = jsonio.canonical(signal)
    return signal if len(text) <= NEWS_CAP else text[:NEWS_CAP] + " [… cut by looop …]"


def worker_news(readings: Iterable[Reading]) -> dict[str, dict[str, Any]]:
    """Worker id -> {reading file name: its signal} for each sensor reading whose detail names
    that worker or its branch (sys-sessions says each worker's branch)."""
    readings = list(readings)
    sessions = next((r for r in readings if r.name == "sys-sessions"), None)
    workers = sessions.items_of("workers") if sessions is not None else {}
    branch_of = {
        wid: str(w["branch"])
        for wid, w in workers.items()
        if isinstance(w, dict) and isinstance(w.get("branch"), str)
    }
    news: dict[str, dict[str, Any]] = {}
    for r in readings:
        detail = r.detail
        if r.name.startswith("sys-") or not isinstance(detail, dict):
            continue
        ids, branches = _named(detail.get("worker")), _named(detail.get("branch"))
        named = {w for w in ids if w in workers}
        named |= {wid for wid, b in branch_of.items() if b in branches}
        for wid in sorted(named):
            own = _own_entries(r.signal, wid, branch_of.get(wid))
            news.setdefault(wid, {})[r.file_name] = _brief(own)
    return news


def _own_entries(signal: Any, wid: str, branch: str | None) -> Any:
    """A signal as one worker's news: without the entries of its lists (the signal itself,
    or its top-level values) that name another worker or branch."""

    def elsewhere(e: Any) -> bool:  # names another worker or branch (and not this one's)
        if not isinstance(e, dict) or not ("worker" in e or "branch" in e):
            return False
        return e.get("worker") != wid and (branch is None or e.get("branch") != branch)

    def mine(entries: list[Any]) -> list[Any]:
        return [e for e in entries if not elsewhere(e)]

    if isinstance(signal, list):
        return mine(signal)
    if isinstance(signal, dict):
        return {k: mine(v) if isinstance(v, list) else v for k, v in signal.items()}
    return signal


def reading_items(
    reading: Reading, news: Mapping[str, dict[str, Any]] | None = None
) -> list[tuple[str, str]]:
    """(label, text) of each item one reading shows: itself, or for sys-sessions and sys-goals
    the rest of the reading and then one item per worker or goal (its signal entry and its
    detail, without ages, and its ages coarsely under "age"; a worker's `news` under "news")."""
    file_name, name, raw = reading.file_name, reading.name, reading.text
    kept, ages = reading_ages(reading)
    if kept is None:
        return [(file_name, raw)]
    detail = kept.get("detail") if isinstance(kept, dict) else None
    spec = AGE_KEYS[name][0]
    entries = detail.get(spec) if isinstance(detail, dict) else None
    if not isinstance(entries, dict):
        return [(file_name, raw)]
    signal = kept.get("signal")
    by_id: dict[str, Any] = {}
    if isinstance(signal, list):
        for entry in signal:
            if isinstance(entry, dict) and entry.get("id") in entries:
                by_id[str(entry["id"])] = entry
        signal = [e for e in signal if not (isinstance(e, dict) and str(e.get("id")) in by_id)]
    rest = {**kept, "detail": {k: v for k, v in detail.items() if k != spec}}  # type: ignore[union-attr]
    if isinstance(signal, list):
        rest["signal"] = signal
    items = [(file_name, _dump(rest))]
    for item_id, body in entries.items():
        said = body if isinstance(body, dict) else {}
        held = {
            k: v
            for k, v in ages.get(item_id, {}).items()
            if v is not None and said.get(SAID_BY.get(k, "")) is None
        }
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if not _said(SAID_BY.get(k), body, held)}
        one = {"detail": body, **({"signal": by_id[item_id]} if item_id in by_id else {})}
        if held:
            one["age"] = {k.removesuffix("_s"): coarse(v) for k, v in held.items()}
        if news and name == "sys-sessions" and item_id in news:
            one["news"] = news[item_id]
        items.append((f"{file_name} {EACH.get(name, 'item')} {item_id}", _dump(one)))
    return items


def _said(other: str | None, body: dict[str, Any], held: dict[str, Any]) -> bool:
    """Whether `other`, the key that says the same as one of `body`'s, is shown."""
    return other is not None and (other in held or body.get(other) is not None)


# an age's spans: (upper bound in seconds, how it is shown), the last one open
SPANS = ((60, "<1m"), (600, "1-10m"), (3600, "10-60m"), (6 * 3600, "1-6h"), (86400, "6-24h"),
         (7 * 86400, "1-7d"))  # fmt: skip


def coarse(age: Any) -> str:
    """An age in seconds as its span: the decider needs how long, not the exact second, and
    the exact second would move the line every beat."""
    if not isinstance(age, int | float) or isinstance(age, bool):
        return str(age)
    return next((shown for bound, shown in SPANS if age < bound), ">7d")


# Each reading split by how often its fields change, so one timestamp or counter in a detail
# never moves the bytes of the rest of the reading (issue 54).
#
# A JSON reading's fields are its top-level keys, and each key of its `detail`. Its `signal` is
# what wakes the loop, its coarse `age` grows and a worker's `news` is another reading's signal
# (below), so they change by design: they are always shown late (READINGS THAT
# MOVE). Any other field that changed between two prompts has moved, and stays moving while the
# reading is shown: the reading's settled fields keep their place in SENSOR READINGS, its moving
# ones join its signal late, where a change costs the provider's cache only that short item. A
# moving field whose value is a timestamp with a zone is shown as its coarse age (`<1m ago`): a
# sensor's `checked_at` then reads the same from beat to beat. A moving detail field that changed
# in two of the last three prompts is volatile (a counter, a worker's spend): it is shown apart,
# in the prompt's last readings section, so its item above stays the same. A reading that is not
# a JSON object is one whole: it moves as one item.
#
# No record says which fields of an item move before a prompt has shown it (a fresh home's first
# decide): then what a field looks like says (`presumed`, FRESH_S), so its sensor's clock and
# counters are not first shown among the settled fields and moved out of them a beat later.


FieldPath = tuple[str, ...]  # ("signal",) or ("detail", "branch")
# the signal, the coarse ages and a worker's news (below): always late
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


@dataclass(frozen=True)
class Split:
    settled: str | None  # the reading without its signal and moving fields (None: nothing left)
    late: str | None  # its signal, ages and moving fields, as one JSON object (None: none)
    volatile: str | None  # its volatile fields, as `name=value …` on one line (None: none)
    digests: dict[str, str]  # each field's digest as shown, for the next prompt's record
    moved: frozenset[str]  # the fields that move, for the next prompt's record
    history: dict[str, str]  # each field's recent changes, "1" a change, the latest last
    rank: int = 0  # how often it changes: 2 it has volatile fields, 1 moving ones, 0 neither


def fields_of(text: str) -> dict[str, tuple[FieldPath, Any]] | None:
    """The reading's fields by name (the JSON of its path), or None if it is not an object."""
    try:
        value = jsonio.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    out: dict[str, tuple[FieldPath, Any]] = {}
    for key, v in value.items():
        if key == "detail" and isinstance(v, dict) and v:
            for sub, sv in v.items():
                out[jsonio.dumps(["detail", sub])] = (("detail", sub), sv)
        else:
            out[jsonio.dumps([key])] = ((key,), v)
    return out


def _rebuild(chosen: list[tuple[FieldPath, Any]]) -> str:
    obj: dict[str, Any] = {}
    for path, v in chosen:
        if len(path) == 1:
            obj[path[0]] = v
        else:
            obj.setdefault(path[0], {})[path[1]] = v
    return _dump(obj)


def _pairs(chosen: list[tuple[FieldPath, Any]]) -> str:
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


def _words(path: FieldPath) -> set[str]:
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


def presumed(path: FieldPath, value: Any, now: float) -> bool:
    """Whether a detail field no prompt has shown yet is presumed to move (see FRESH_S)."""
    if path[0] != "detail" or len(path) != 2 or isinstance(value, bool):
        return False
    if not isinstance(value, int | float):
        return _fresh(value, now)
    return bool(_words(path) & (AGES | COUNTS)) or abs(now - value) <= FRESH_S


def active(fields: dict[str, tuple[FieldPath, Any]], now: float, born: set[FieldPath]) -> bool:
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
) -> Split:
    """`text` (the item `key`'s) split into its settled, moving and volatile fields, by the
    record of the last prompts: a field moves once its value differs from the one shown there;
    the detail keys in `moves` move from the start (and show as they are). Timestamps that
    were seen moving show as ages from `now`."""
    fields = fields_of(text)
    if fields is None:
        return Split(text, None, None, {}, frozenset(), {})
    was, before = record.moving.get(key, frozenset()), record.fields.get(key)
    born: set[FieldPath] = {(k,) for k in moves}
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
    settled = [shown[n] for n in shown if n not in moved]
    late = [shown[n] for n in sorted(moved - volatile)]
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
