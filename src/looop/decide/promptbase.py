"""READINGS THAT MOVE drawn now and then and shown again as drawn, with what happened since
appended after it under SINCE THEN (issue 54): a decide woken by one sensor adds that sensor's
news near the end of the prompt instead of moving it out of its old place, which would shift
every item after it out of the provider's cache. SINCE THEN holds, oldest first, the journal's
lines after RECENT JOURNAL and each reading that changed since it was drawn, as it is now (its
last entry is its current value). The drawing is redrawn with RECENT JOURNAL at most every
FOLD_EVERY prompts, or sooner when the news outgrows SINCE_CAP: only its last REDRAW_CHARS are
drawn again (the news of an earlier item stays listed), unless what stays listed would pass
LEFT_CAP: then those earlier items are drawn again at the end too, their old entries left as
they were (a redraw from the first of them would cost the cache the whole section); the
drawing is drawn whole once such superseded entries outgrow the rest of it. The volatile
fields (promptfields.py) are listed last of all, one line per reading."""

from __future__ import annotations

from looop.decide.defuse import BREAKS
from looop.decide.order import Record, by_change, digest
from looop.decide.promptparts import Body, Gap, Item, Part

FOLD_EVERY = 10  # prompts one drawing of READINGS THAT MOVE is shown for, at most
SINCE_CAP = 4000  # chars of SINCE THEN's readings past which the drawing is redrawn
REDRAW_CHARS = 1800  # chars at the end of the drawing a redraw draws again (unless whole)
LEFT_CAP = SINCE_CAP // 4  # chars of earlier items' news a redraw leaves under SINCE THEN
STALE_SHARE = 2  # a drawing is drawn whole once its superseded entries pass 1/2 of the rest
FULL, TAIL, MOVE = "full", "tail", "move"  # how a redraw draws again (drawing())
SNAPSHOT_CAP = 16000  # one reading's text, in characters
GONE = "(gone: no longer among the readings)\n"
JOURNAL = "journal"  # the key of the log's entries of journal lines

LATE_TITLE = "READINGS THAT MOVE (signals, ages, changing detail)"
LATE_SAYS = (
    "What changes of each reading above, kept apart so the readings above stay the same from\n"
    "beat to beat: its signal (what wakes the loop), its ages and the changed detail fields (a\n"
    "timestamp as its coarse age). A reading may be only here, or twice: the later counts.\n"
    "Shown as drawn: SINCE THEN, further down, gives what has changed since.\n"
)
SINCE_TITLE = "SINCE THEN (new journal lines and changed readings, oldest first)"
SINCE_SAYS = (
    "The journal's lines after RECENT JOURNAL (under --- journal) and each reading that changed\n"
    "since READINGS THAT MOVE drew it, as it is now: its last entry here is its current value.\n"
)
FAST_TITLE = "FIELDS THAT CHANGE EVERY BEAT (their current values)"

Late = tuple[str, str, str]  # (key, text, label)


def one_line(s: str) -> str:
    return BREAKS.sub(" ", s).strip()


def body(label: str, text: str, notes: dict[str, str]) -> Body:
    shown = Body(label, text)
    if len(text) > SNAPSHOT_CAP:
        shown.keep = SNAPSHOT_CAP
        notes[label] = f"{label} cut at {SNAPSHOT_CAP} chars"
    return shown


def item(kind: str, label: str, text: str, first: int, notes: dict[str, str]) -> Item:
    name = one_line(label)
    return Item(kind, [f"--- {name}\n", body(f"sensor reading {name}", text, notes)], first)


def _latest(record: Record) -> dict[str, tuple[str, str]]:
    """Each item's (text, label) as the last prompt left it: as drawn, or its last entry."""
    return {k: (t, lb) for k, t, lb in (*record.base, *record.log) if k != JOURNAL}


def since_log(late: list[Late], record: Record, newest: tuple[str, ...] = ()) -> list[Late]:
    """The last prompt's entries since the drawing; then the journal's lines it did not show
    yet, from `newest` (the lines after RECENT JOURNAL), as one entry; then one for each item
    whose text differs from what they left it at (a new item too, and one gone)."""
    left = _latest(record)
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
    if how == FULL:  # unchanged items keep their order (the drawing's, or an older record's)
        drawn = tuple((k, digest(t)) for k, t, _ in record.base) or record.shown
        return tuple(by_change(late, drawn))
    base, cut = record.base, len(record.base)
    while cut > 0 and _chars(base[cut - 1 :]) <= REDRAW_CHARS:
        cut -= 1
    now = {key: (key, text, label) for key, text, label in late}
    while cut < len(base) and now.get(base[cut][0]) == base[cut]:
        cut += 1  # an unchanged item keeps its place: the redraw starts at the first changed
    earlier = base[:cut]
    shown = {x[0]: x for x in earlier}  # each item's last entry among them
    kept = {k for k, x in shown.items() if how == TAIL or now.get(k) == x}
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
    later: set[str] = set()
    n = 0
    for x in reversed(base):
        if x[0] in later:
            n += _chars((x,))
        later.add(x[0])
    return n


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
) -> tuple[list[Part], list[Part], Record]:
    """(READINGS THAT MOVE, SINCE THEN, the record of both): `fold` redraws."""
    base, age = record.base, record.base_age + 1
    if fold:  # the end of the drawing; its earlier items' news too when it would crowd SINCE THEN
        for how in _redraws(record.base):
            base, age = drawing(late, record, log, how), 0
            log = since_log(late, Record(base=base))  # RECENT JOURNAL is redrawn with it
            if how != TAIL or _chars(log) <= LEFT_CAP:
                break
        order = {key: n for n, (key, _, _) in enumerate(record.log)}
        log.sort(key=lambda x: order.get(x[0], len(order)))
    head: list[Part] = []
    if base:
        head += [f"\n=== {LATE_TITLE} ===\n", LATE_SAYS]
        head += [item("moving", lb, t, n, notes) for n, (_, t, lb) in enumerate(base)]
        head.append(Gap("moving"))
    tail: list[Part] = []
    if log:
        tail += [f"\n=== {SINCE_TITLE} ===\n", SINCE_SAYS]
        for n, (key, text, label) in enumerate(log):
            if key == JOURNAL:  # the journal is never left out
                tail += ["--- journal\n", Body("journal", text)]
            else:
                tail.append(item("changed", label, text, n, notes))
        tail.append(Gap("changed"))
    return head, tail, Record(base=base, log=tuple(log), base_age=age)


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
