"""The readings as the prompt shows them, ordered by how often each part changes (issue 54):
their settled fields early (SENSOR READINGS), and late one item per reading with what moves of
it: its signal, its coarse ages and the detail fields that changed (READINGS THAT MOVE, drawn
now and then: promptbase.py), what changed of those since (SINCE THEN) and last the
fields that change every beat. In SENSOR READINGS the items unchanged since the last prompt
keep their order there and the changed ones follow. And the journal in two parts: the lines the
last prompts showed (RECENT JOURNAL, redrawn with READINGS THAT MOVE) and the lines added since
(in SINCE THEN, late), so a decide adds its line at the end instead of shifting every line up.
The first drawing (no record yet) puts the items presumed to change more (promptfields) last."""

from __future__ import annotations

from dataclasses import dataclass, field

from looop.decide.order import Record, Shown, by_change, digest
from looop.decide.promptbase import (
    Late,
    fast_section,
    item,
    moving_sections,
    one_line,
    since_log,
)
from looop.decide.promptbase import due as base_due
from looop.decide.promptfields import split
from looop.decide.promptinputs import JOURNAL_LINES, JOURNAL_SPAN, PromptInputs
from looop.decide.promptparts import Gap, Part, marker
from looop.decide.promptreadings import MOVES, reading_items, worker_news

__all__ = ["Late", "Readings", "Seen", "Shown", "readings_sections"]

JOURNAL_LINE_CAP = 500  # one journal line, in characters
NEWEST_MAX = JOURNAL_SPAN - JOURNAL_LINES  # newer lines told before RECENT JOURNAL is redrawn


@dataclass
class Seen:
    """What this prompt shows, gathered section by section into the next prompt's record."""

    shown: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    moving: dict[str, frozenset[str]] = field(default_factory=dict)
    history: dict[str, dict[str, str]] = field(default_factory=dict)
    journal: tuple[str, str] = ("", "")
    base: Record = field(default_factory=Record)  # READINGS THAT MOVE's drawing (promptbase)
    pending: set[str] = field(default_factory=set)  # items shown whole, late

    def record(self) -> Record:
        b = self.base
        return Record(
            tuple(self.shown),
            self.fields,
            self.moving,
            *self.journal,
            history=self.history,
            base=b.base,
            log=b.log,
            base_age=b.base_age,
            pending=frozenset(self.pending),
        )


@dataclass
class Readings:
    """The readings' sections: SENSOR READINGS (early), READINGS THAT MOVE (late), SINCE THEN
    (with the journal's new lines) and the fields that change every beat (last)."""

    settled: list[Part]
    moving: list[Part]
    since: list[Part]
    fast: list[Part]


def readings_sections(
    inputs: PromptInputs, notes: dict[str, str], seen: Seen
) -> tuple[Readings, tuple[str, ...]]:
    """The readings' sections, and RECENT JOURNAL's lines: it is redrawn with READINGS THAT
    MOVE, and the journal's lines after it are told in SINCE THEN."""
    settled: list[tuple[str, str, str]] = []
    late: list[Late] = []
    fast: list[tuple[str, str]] = []
    ranks: dict[str, int] = {}
    record, now = inputs.record, inputs.clock.now()
    known = {*record.fields, *(k for k, _ in record.shown if k.startswith("reading:"))}
    news = worker_news(inputs.readings)  # each worker's news, shown in its item
    for reading in inputs.readings:
        for label, text in reading_items(reading, news):
            key = f"reading:{label}"
            # an item that came after the first prompt stays out of SENSOR READINGS, whose
            # bytes it would move: it is shown whole under READINGS THAT MOVE / SINCE THEN
            whole = key in record.pending or bool(known and key not in known)
            if whole:
                seen.pending.add(key)
            moves = MOVES.get(reading.name, frozenset())
            got = split(key, text, record, moves, now, whole)
            if got.digests:
                seen.fields[key] = got.digests
            if got.moved:
                seen.moving[key] = got.moved
            if got.history:
                seen.history[key] = got.history
            if got.settled is not None:
                settled.append((key, got.settled, label))
            if got.late is not None:
                late.append((f"late:{label}", got.late, label))
                ranks[f"late:{label}"] = got.rank
            if got.volatile is not None:
                fast.append((label, got.volatile))
    head: list[Part] = ["\n=== SENSOR READINGS ===\n"]
    for key, text, label in by_change(settled, record.shown):
        seen.shown.append((key, digest(text)))
        head.append(item("reading", label, text, 0, notes))
    if not inputs.readings:
        head.append("(no readings)\n")
    if not record.base:  # the first drawing: what is presumed to change more comes later
        late.sort(key=lambda x: ranks[x[0]])
    lines = tuple(clip_line(ln, notes) for ln in inputs.journal or ())
    fold = journal_due(lines, record) or base_due(record, late)
    recent, newest = journal_window(lines, record, seen, redraw=fold)
    since = since_log(late, record, newest)
    moving, changed, seen.base = moving_sections(late, since, fold, record, notes)
    shown = Readings([*head, Gap("reading")], moving, changed, fast_section(fast, notes))
    return shown, recent


def clip_line(line: str, notes: dict[str, str]) -> str:
    """A journal line on one line, cut at JOURNAL_LINE_CAP chars (marked)."""
    s = one_line(line)
    if len(s) <= JOURNAL_LINE_CAP:
        return s
    notes["journal line"] = f"journal lines cut at {JOURNAL_LINE_CAP} chars"
    return s[:JOURNAL_LINE_CAP] + " " + marker(len(s) - JOURNAL_LINE_CAP)


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
