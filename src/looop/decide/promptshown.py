"""The goals and readings as the prompt shows them, by how often each part changes (issue 54):
early the goals and the readings' settled fields (GOALS and SENSOR READINGS, as drawn: drawn()),
late one item per reading with what moves of it: its signal, its coarse ages and the detail
fields that changed (READINGS THAT MOVE, drawn now and then), what changed since (SINCE THEN)
and last the fields that change every beat. And the journal in two parts: the lines the
last prompts showed (RECENT JOURNAL, redrawn with READINGS THAT MOVE) and the lines added since
(in SINCE THEN, late), so a decide adds its line at the end instead of shifting every line up.
The first drawing (no record yet) puts the items presumed to change more (promptinputs) last."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from looop.decide.defuse import BREAKS
from looop.decide.order import Drawn, Record, by_change, digest
from looop.decide.promptfit import Body, Gap, Item, Part, marker
from looop.decide.promptinputs import (
    JOURNAL_LINES,
    JOURNAL_SPAN,
    MOVES,
    PromptInputs,
    fields_of,
    reading_items,
    split,
    worker_news,
)

JOURNAL_LINE_CAP = 500  # one journal line, in characters
NEWEST_MAX = JOURNAL_SPAN - JOURNAL_LINES  # newer lines told before RECENT JOURNAL is redrawn


@dataclass
class Seen:
    """What this prompt shows, gathered section by section into the next prompt's record."""

    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    moving: dict[str, frozenset[str]] = field(default_factory=dict)
    history: dict[str, dict[str, str]] = field(default_factory=dict)
    journal: tuple[str, str] = ("", "")
    base: Record = field(default_factory=Record)  # the drawings, SINCE THEN and when

    def record(self) -> Record:
        f, m, h, (j, end) = self.fields, self.moving, self.history, self.journal
        return replace(self.base, fields=f, moving=m, history=h, journal=j, journal_end=end)


@dataclass
class Readings:
    """The sections: GOALS and SENSOR READINGS (early), READINGS THAT MOVE (late), SINCE THEN
    (with the journal's new lines) and the fields that change every beat (last)."""

    goals: list[Part]
    settled: list[Part]
    moving: list[Part]
    since: list[Part]
    fast: list[Part]


def readings_sections(
    inputs: PromptInputs, notes: dict[str, str], seen: Seen
) -> tuple[Readings, tuple[str, ...]]:
    """The readings' sections, and RECENT JOURNAL's lines: it is redrawn with READINGS THAT
    MOVE, and the journal's lines after it are told in SINCE THEN."""
    current = [(f"goal:{name}", text, name, frozenset[str]()) for name, text in inputs.goals]
    late: list[Late] = []
    fast: list[tuple[str, str]] = []
    ranks: dict[str, int] = {}
    record, now = inputs.record, inputs.clock.now()
    news = worker_news(inputs.readings)  # each worker's news, shown in its item
    for reading in inputs.readings:
        for label, text in reading_items(reading, news):
            key = f"reading:{label}"
            moves = MOVES.get(reading.name, frozenset())
            got = split(key, text, record, moves, now)
            if got.digests:
                seen.fields[key] = got.digests
            if got.moved:
                seen.moving[key] = got.moved
            if got.history:
                seen.history[key] = got.history
            current.append((key, got.settled or "", label, got.moved))
            if got.late is not None:
                late.append((f"late:{label}", got.late, label))
                ranks[f"late:{label}"] = got.rank
            if got.volatile is not None:
                fast.append((label, got.volatile))
    held = latest(record.base)  # the goals' news a fold drew into READINGS THAT MOVE
    shown, told, fresh = drawn(current, record, now)
    first: list[Part] = ["\n=== GOALS ===\n", *([] if inputs.goals else ["(no goals yet)\n"])]
    head: list[Part] = ["\n=== SENSOR READINGS ===\n"]
    head += [] if inputs.readings else ["(no readings)\n"]
    for key, text, label in shown:
        (first if key.startswith("goal:") else head).append(shown_item(key, label, text, notes))
    if not record.base:  # the first drawing: what is presumed to change more comes later
        late.sort(key=lambda x: ranks[x[0]])
    lines = tuple(clip_line(ln, notes) for ln in inputs.journal or ())
    fold = fresh or journal_due(lines, record) or due(record, [*late, *held])
    if fold:  # SINCE THEN is drawn again below the fold: an item's last entry says it all
        held = [] if fresh else latest([*held, *told])  # a later redraw keeps it in place
        told = latest(told, "reading:")
    late += held
    recent, newest = journal_window(lines, record, seen, redraw=fold)
    since = since_log(late, record, newest)
    moving, changed, base = moving_sections(late, since, fold, record, notes, told, fresh)
    seen.base = replace(base, shown=shown, at=now)
    parts = [*first, Gap("goal")], [*head, Gap("reading")], moving, changed
    return Readings(*parts, fast_section(fast, notes)), recent


def drawn(
    items: list[tuple[str, str, str, frozenset[str]]], record: Record, now: float
) -> tuple[Drawn, list[Late], bool]:
    """(GOALS and SENSOR READINGS as the last prompt drew them, their news since, drawn afresh
    now?): a goal edited or a reading's first changed field costs the cache only what follows
    its news in SINCE THEN (a goal's new text, a reading's settled fields, new or gone; a field
    that moved is READINGS THAT MOVE's news), until a fold draws it into READINGS THAT MOVE
    (each goal's last entry there: `held`). Drawn afresh (the unchanged in their order) when the
    news outgrows half of them or the provider's cache is gone (CACHE_S). `items`: (key, text,
    label, the fields that moved), a reading's text its settled fields ("" none)."""
    was = {key: text for key, text, _ in record.shown}
    kept = [(k, was[k] if k in was and _holds(was[k], t, m) else t, lb) for k, t, lb, m in items]
    news, held = [x for x in kept if x[1] or x[0] in was], latest(record.base)
    told = since_log(news, Record(base=(*record.shown, *held), log=record.told))
    stale = (_chars(told) + _chars(held)) * STALE_SHARE > _chars(record.shown)
    if record.at and not stale and 0 <= now - record.at < CACHE_S:
        return record.shown, told, False
    afresh = [(k, t, lb) for k, t, lb, _ in items if t or k.startswith("goal:")]
    return tuple(by_change(afresh, record.shown)), [], True


def latest(entries: list[Late] | tuple[Late, ...], kind: str = "goal:") -> list[Late]:
    """The last entry of each item of `kind` ("": every kind) among `entries`, in their order.
    A goal's news is drawn with READINGS THAT MOVE at a fold (whole, under its own name); a
    reading's settled fields stay told under SINCE THEN (drawn beside its moving part, under the
    same name, one would read as the other)."""
    keys = [k for k, _, _ in entries]
    return [x for n, x in enumerate(entries) if x[0].startswith(kind) and x[0] not in keys[n + 1 :]]


def _holds(old: str, text: str, moved: frozenset[str]) -> bool:
    """Whether `old` (as drawn) still says what `text` does, but for the fields since `moved`."""
    was, got = fields_of(old), fields_of(text) if text else {}
    kept = None if was is None else {n: v for n, v in was.items() if n not in moved}
    return old == text or (kept is not None and kept == got)


def shown_item(key: str, label: str, text: str, notes: dict[str, str], n: int = -1) -> Item:
    """A goal or a reading as drawn, or (`n` >= 0: its place) as told under SINCE THEN."""
    if not key.startswith("goal:"):
        return item("reading" if n < 0 else "changed", label, text, max(n, 0), notes)
    name, said = one_line(label), "" if n < 0 else "goal "
    return Item("goal", [f"--- {said}{name}\n", body(f"goal {name} body", text, notes, GOAL_CAP)])


def clip_line(
    line: str, notes: dict[str, str], cap: int = JOURNAL_LINE_CAP, what: str = "journal line"
) -> str:
    """A journal line (or another `what`) on one line, cut at `cap` chars (marked)."""
    s = one_line(line)
    if len(s) <= cap:
        return s
    notes[what] = f"{what}s cut at {cap} chars"
    return s[:cap] + " " + marker(len(s) - cap)


def journal_due(lines: tuple[str, ...], record: Record) -> bool:
    """Whether RECENT JOURNAL is redrawn now: its lines are gone or NEWEST_MAX lines follow."""
    if not lines:
        return False
    told = _told(lines, record)
    return told is None or len(lines) - 1 - told[1] > NEWEST_MAX


def _told(lines: tuple[str, ...], record: Record) -> tuple[int, int] | None:
    """Where RECENT JOURNAL's first and last lines as the last prompt showed them are among
    `lines` (None: not there). A last prompt that showed none (the journal was empty) told
    (0, -1): every line now is newer, told after it as any new line is."""
    if record != Record() and not record.journal and not record.journal_end:
        return 0, -1
    first, last = _find(lines, record.journal), _find(lines, record.journal_end)
    return None if first is None or last is None or last < first else (first, last)


def journal_window(
    lines: tuple[str, ...], record: Record, seen: Seen, redraw: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(RECENT JOURNAL, the newer lines) out of the journal's last lines: the lines the last
    prompt showed in RECENT JOURNAL again, while they are still among them, and the lines after
    them, up to NEWEST_MAX of them; otherwise the last JOURNAL_LINES, and none newer."""
    told = None if redraw or journal_due(lines, record) else _told(lines, record)
    first, last = told or (max(0, len(lines) - JOURNAL_LINES), len(lines) - 1)
    recent, newest = lines[first : last + 1], lines[last + 1 :]
    seen.journal = (digest(recent[0]), digest(recent[-1])) if recent else ("", "")
    return recent, newest


def _find(lines: tuple[str, ...], line: str) -> int | None:
    """Where the line of digest `line` is, the latest if it repeats (None: not there)."""
    for i in range(len(lines) - 1, -1, -1):
        if line and digest(lines[i]) == line:
            return i
    return None


# READINGS THAT MOVE drawn now and then and shown again as drawn, with what happened since
# appended after it under SINCE THEN (issue 54): a decide woken by one sensor adds that sensor's
# news near the end of the prompt instead of moving it out of its old place, which would shift
# every item after it out of the provider's cache. SINCE THEN holds, oldest first, the journal's
# lines after RECENT JOURNAL and each reading that changed since it was drawn, as it is now (its
# last entry is its current value). The drawing is redrawn with RECENT JOURNAL at most every
# FOLD_EVERY prompts, or sooner when the news outgrows SINCE_CAP: only its last REDRAW_CHARS are
# drawn again (the news of an earlier item stays listed), unless what stays listed would pass
# LEFT_CAP: then those earlier items are drawn again at the end too, their old entries left as
# they were (a redraw from the first of them would cost the cache the whole section); the
# drawing is drawn whole once such superseded entries outgrow the rest of it. A redraw draws
# the goals' news told so far into the drawing too (issue 68 item 5): told under SINCE THEN, a
# goal's new text would follow every later redraw, past the cache each time; in the drawing, a
# later redraw keeps it in place (a goal edited again is told, then drawn again at the end). A
# reading's settled news stays told (its moving part is drawn under the same name). The volatile
# fields (promptinputs.py) are listed last of all, one line per reading.


GOAL_CAP = 8000  # one goal's body, in characters
CACHE_S = 3600  # a provider's cache life: a prompt later draws GOALS and SENSOR READINGS anew
FOLD_EVERY = 10  # prompts one drawing of READINGS THAT MOVE is shown for, at most
SINCE_CAP = 4000  # chars of SINCE THEN's readings past which the drawing is redrawn
REDRAW_CHARS = 1800  # chars at the end of the drawing a redraw draws again (unless whole)
LEFT_CAP = SINCE_CAP // 4  # chars of earlier items' news a redraw leaves under SINCE THEN
STALE_SHARE = 2  # a drawing is drawn whole once its superseded entries pass 1/2 of the rest
FULL, TAIL, MOVE = "full", "tail", "move"  # how a redraw draws again (drawing())
SNAPSHOT_CAP = 16000  # one reading's text, in characters
GONE = "(gone: no longer there)\n"
JOURNAL = "journal"  # the key of the log's entries of journal lines

LATE_TITLE = "READINGS THAT MOVE (signals, ages, changing detail)"
LATE_SAYS = (
    "What changes of each reading above, kept apart so the readings above stay the same from\n"
    "beat to beat: its signal, its ages and the changed detail fields (a timestamp as its coarse\n"
    "age), and each goal edited since. A reading may be only here, or twice: the later counts.\n"
    "Shown as drawn: SINCE THEN, further down, gives what has changed since.\n"
)
SINCE_TITLE = "SINCE THEN (changed goals, new journal lines and changed readings, oldest first)"
SINCE_SAYS = (
    "Each goal (--- goal NAME) and reading changed since drawn above, and the journal's lines\n"
    "after RECENT JOURNAL (--- journal), as it is now: an item's last entry is its value.\n"
)
FAST_TITLE = "FIELDS THAT CHANGE EVERY BEAT (their current values)"

Late = tuple[str, str, str]  # (key, text, label)


def one_line(s: str) -> str:
    return BREAKS.sub(" ", s).strip()


def body(label: str, text: str, notes: dict[str, str], cap: int = SNAPSHOT_CAP) -> Body:
    shown = Body(label, text)
    if len(text) > cap:
        shown.keep = cap
        notes[label] = f"{label} cut at {cap} chars"
    return shown


def item(kind: str, label: str, text: str, first: int, notes: dict[str, str]) -> Item:
    name = one_line(label)
    return Item(kind, [f"--- {name}\n", body(f"sensor reading {name}", text, notes)], first)


def since_log(late: list[Late], record: Record, newest: tuple[str, ...] = ()) -> list[Late]:
    """The last prompt's entries since the drawing; then the journal's lines it did not show
    yet, from `newest` (the lines after RECENT JOURNAL), as one entry; then one for each item
    whose text differs from what they left it at (a new item too, and one gone)."""
    # each item's (text, label) as the last prompt left it: as drawn, or its last entry
    left = {k: (t, lb) for k, t, lb in (*record.base, *record.log) if k != JOURNAL}
    now = {key for key, _, _ in late}
    news = [x for x in late if left.get(x[0], ("", ""))[0] != x[1]]
    gone = [(k, GONE, lb) for k, (t, lb) in left.items() if k not in now and t != GONE]
    told = sum(t.count("\n") for k, t, _ in record.log if k == JOURNAL)
    lines = newest[told:] if told <= len(newest) else ()
    journal = [(JOURNAL, "".join(f"{ln}\n" for ln in lines), "journal")] if lines else []
    return [*record.log, *journal, *news, *gone]


def due(record: Record, late: list[Late]) -> bool:
    """Whether READINGS THAT MOVE is redrawn now (without a journal redraw to go with it): it
    has not been drawn, it is FOLD_EVERY prompts old, or what changed since outgrew SINCE_CAP."""
    if not record.base:
        return bool(late)
    return record.base_age + 1 >= FOLD_EVERY or _chars(since_log(late, record)) > SINCE_CAP


def _chars(items: list[Late] | tuple[Late, ...]) -> int:
    """The chars the readings among `items` take (not the journal's lines)."""
    return sum(len(text) + len(label) + 5 for key, text, label in items if key != JOURNAL)


def drawing(late: list[Late], record: Record, log: list[Late], how: str) -> tuple[Late, ...]:
    """A new drawing. FULL: every item, the unchanged in their order, the changed after them
    in the order they last changed. Otherwise only its last items are drawn again, as many as
    REDRAW_CHARS hold, so a redraw costs the cache only the end of the section; of those the
    unchanged keep their order and the changed follow. An earlier item stays as drawn: its
    news is listed under SINCE THEN (TAIL), or (MOVE) drawn again at the end, its earlier
    entry left as it was (a reading listed twice: its later entry is its value)."""
    if how == FULL:  # unchanged items keep their order
        return tuple(by_change(late, record.base))
    base, cut = record.base, len(record.base)
    while cut > 0 and _chars(base[cut - 1 :]) <= REDRAW_CHARS:
        cut -= 1
    now = {key: (key, text, label) for key, text, label in late}
    while cut < len(base) and now.get(base[cut][0]) == base[cut]:
        cut += 1  # an unchanged item keeps its place: the redraw starts at the first changed
    earlier = base[:cut]
    shown = {x[0]: x for x in earlier}  # each item's last entry among them
    # TAIL leaves a changed reading's news listed under SINCE THEN; a goal's is drawn again
    kept = {k for k, x in shown.items() if now.get(k) == x or (how == TAIL and k[:5] == "late:")}
    old: dict[str, int] = {}
    for n, x in enumerate(base[cut:]):
        if now.get(x[0]) == x:
            old.setdefault(x[0], n)
    last = {key: n for n, (key, _, _) in enumerate(log)}
    redrawn = [x for x in late if x[0] not in kept]
    same = sorted((x for x in redrawn if x[0] in old), key=lambda x: old[x[0]])
    moved = sorted((x for x in redrawn if x[0] not in old), key=lambda x: last.get(x[0], -1))
    return (*earlier, *same, *moved)


def stale_chars(base: tuple[Late, ...]) -> int:
    """The chars of a drawing's entries a later entry of the same item supersedes."""
    return _chars(base) - _chars(latest(base, ""))


def _redraws(base: tuple[Late, ...]) -> tuple[str, ...]:
    """How a redraw draws again, cheapest first: all of it when there is no drawing yet or
    its superseded entries outgrew the rest of it (STALE_SHARE)."""
    stale = stale_chars(base)
    if not base or stale * STALE_SHARE > _chars(base) - stale:
        return (FULL,)
    return (TAIL, MOVE)


def moving_sections(
    late: list[Late],
    log: list[Late],
    fold: bool,
    record: Record,
    notes: dict[str, str],
    told: list[Late],
    whole: bool = False,
) -> tuple[list[Part], list[Part], Record]:
    """(READINGS THAT MOVE, SINCE THEN, the record of both): `fold` redraws (`whole`: all of
    it); SINCE THEN tells the goals' and settled readings' news (`told`) first."""
    base, age = record.base, record.base_age + 1
    if fold:  # the end of the drawing; its earlier items' news too when it would crowd SINCE THEN
        for how in (FULL,) if whole else _redraws(record.base):
            base, age = drawing(late, record, log, how), 0
            log = since_log(late, Record(base=base))  # RECENT JOURNAL is redrawn with it
            if how != TAIL or _chars(log) <= LEFT_CAP:
                break
        order = {key: n for n, (key, _, _) in enumerate(record.log)}
        log.sort(key=lambda x: order.get(x[0], len(order)))
    head: list[Part] = []
    if base:
        head += [f"\n=== {LATE_TITLE} ===\n", LATE_SAYS]
        for n, (k, t, lb) in enumerate(base):  # a goal's news as SINCE THEN tells it
            goal = k.startswith("goal:")
            head.append(shown_item(k, lb, t, notes, n) if goal else item("moving", lb, t, n, notes))
        head.append(Gap("moving"))
    tail: list[Part] = []
    if told or log:
        tail += [f"\n=== {SINCE_TITLE} ===\n", SINCE_SAYS]
        tail += [shown_item(k, lb, t, notes, n) for n, (k, t, lb) in enumerate(told)]
        for n, (key, text, label) in enumerate(log):
            if key == JOURNAL:  # the journal is never left out
                tail += ["--- journal\n", Body("journal", text)]
            else:
                tail.append(item("changed", label, text, n, notes))
        tail.append(Gap("changed"))
    return head, tail, Record(base=base, log=tuple(log), base_age=age, told=tuple(told))


def fast_section(fast: list[tuple[str, str]], notes: dict[str, str]) -> list[Part]:
    """The volatile fields of each reading, in reading order."""
    if not fast:
        return []
    parts: list[Part] = [f"\n=== {FAST_TITLE} ===\n"]
    for label, text in fast:
        name = one_line(label)
        line = body(f"sensor reading {name}", f"{name}: {text}\n", notes)
        parts.append(Item("volatile", [line]))
    return [*parts, Gap("volatile")]
