"""The readings as the prompt shows them, ordered by how often each part changes (issue 54):
their settled fields early (SENSOR READINGS), and late one item per reading with what moves of
it: its signal, its coarse ages and the detail fields that changed (READINGS THAT MOVE). In each
section the items unchanged since the last prompt keep their order there and the changed ones
follow, so a decide woken by one sensor repeats all but the items after that sensor's old
place. And the journal in two parts: the lines the last prompts showed (RECENT JOURNAL, early)
and the lines added since (NEWEST JOURNAL, late), so a decide adds its line at the end instead
of shifting every line up, until the first part is redrawn from the last lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from looop.decide.defuse import BREAKS
from looop.decide.order import Record, Shown, by_change, digest
from looop.decide.promptfields import split
from looop.decide.promptinputs import JOURNAL_LINES, JOURNAL_SPAN, PromptInputs
from looop.decide.promptparts import Body, Gap, Item, Part
from looop.decide.promptreadings import MOVES, reading_items, worker_news

__all__ = ["Seen", "Shown", "journal_window", "readings_sections"]

SNAPSHOT_CAP = 16000  # one reading's text, in characters

LATE_TITLE = "READINGS THAT MOVE (signals, ages, changing detail; latest change last)"
LATE_SAYS = (
    "What changes of each reading above, kept apart so the readings above stay the same from\n"
    "beat to beat: its signal (what wakes the loop), its ages (coarse) and the detail fields\n"
    "that have changed (counters, timestamps). A reading may appear only here.\n"
)
NEWEST_TITLE = "NEWEST JOURNAL (lines added after RECENT JOURNAL)"
NEWEST_MAX = JOURNAL_SPAN - JOURNAL_LINES  # lines NEWEST JOURNAL holds before both are redrawn


def one_line(s: str) -> str:
    return BREAKS.sub(" ", s).strip()


@dataclass
class Seen:
    """What this prompt shows, gathered section by section into the next prompt's record."""

    shown: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    moving: dict[str, frozenset[str]] = field(default_factory=dict)
    journal: tuple[str, str] = ("", "")

    def record(self) -> Record:
        return Record(tuple(self.shown), self.fields, self.moving, *self.journal)


def _body(label: str, text: str, notes: dict[str, str]) -> Body:
    body = Body(label, text)
    if len(text) > SNAPSHOT_CAP:
        body.keep = SNAPSHOT_CAP
        notes[label] = f"{label} cut at {SNAPSHOT_CAP} chars"
    return body


def readings_sections(
    inputs: PromptInputs, notes: dict[str, str], seen: Seen
) -> tuple[list[Part], list[Part]]:
    """(SENSOR READINGS with their settled fields, READINGS THAT MOVE): the first early in the
    prompt, the second late."""
    settled: list[tuple[str, str, str]] = []
    late: list[tuple[str, str, str]] = []
    news = worker_news(inputs.readings)  # each worker's news, shown in its item
    for reading in inputs.readings:
        for label, text in reading_items(reading, news):
            key = f"reading:{label}"
            got = split(key, text, inputs.record, MOVES.get(reading.name, frozenset()))
            if got.digests:
                seen.fields[key] = got.digests
            if got.moved:
                seen.moving[key] = got.moved
            if got.settled is not None:
                settled.append((key, got.settled, label))
            if got.late is not None:
                late.append((f"late:{label}", got.late, label))
    head: list[Part] = ["\n=== SENSOR READINGS ===\n"]
    head += _items("reading", settled, inputs.record.shown, notes, seen)
    if not inputs.readings:
        head.append("(no readings)\n")
    tail: list[Part] = []
    if late:
        tail += [f"\n=== {LATE_TITLE} ===\n", LATE_SAYS]
        tail += _items("moving", late, inputs.record.shown, notes, seen)
    return [*head, Gap("reading")], tail


def _items(
    kind: str,
    items: list[tuple[str, str, str]],
    before: Shown,
    notes: dict[str, str],
    seen: Seen,
) -> list[Part]:
    parts: list[Part] = []
    for n, (key, text, label) in enumerate(by_change(items, before)):
        seen.shown.append((key, digest(text)))
        name = one_line(label)
        body = _body(f"sensor reading {name}", text, notes)
        parts.append(Item(kind, [f"--- {name}\n", body], first=n if kind != "reading" else 0))
    return parts if kind == "reading" or not parts else [*parts, Gap(kind)]


def journal_window(
    lines: tuple[str, ...], record: Record, seen: Seen
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(RECENT JOURNAL, NEWEST JOURNAL) out of the journal's last lines: the lines the last
    prompt showed in RECENT JOURNAL again, while they are still among them, and the lines after
    them, up to NEWEST_MAX of them; otherwise the last JOURNAL_LINES, and none newer."""
    first, last = _find(lines, record.journal), _find(lines, record.journal_end)
    if first is None or last is None or last < first or len(lines) - 1 - last > NEWEST_MAX:
        first, last = max(0, len(lines) - JOURNAL_LINES), len(lines) - 1
    recent, newest = lines[first : last + 1], lines[last + 1 :]
    seen.journal = (digest(recent[0]), digest(recent[-1])) if recent else ("", "")
    return recent, newest


def _find(lines: tuple[str, ...], line: str) -> int | None:
    """Where the line of digest `line` is, the latest if it repeats (None: not there)."""
    for i in range(len(lines) - 1, -1, -1):
        if line and digest(lines[i]) == line:
            return i
    return None
