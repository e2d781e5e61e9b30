"""The readings as the prompt shows them, ordered by how often each part changes (issue 54):
their settled fields (SENSOR READINGS), then their signals (SIGNALS: one moves per decide),
the ages (AGES, coarse), then the detail fields that move (MOVING DETAIL); in each section
the items unchanged since the last prompt keep their order
there and the changed ones follow. Also which journal lines are shown: the window holds its
first line while it can, so a decide adds its journal line at the end instead of shifting
every line up."""

from __future__ import annotations

from dataclasses import dataclass, field

from looop.decide.defuse import BREAKS
from looop.decide.order import Record, Shown, by_change, digest
from looop.decide.promptfields import split
from looop.decide.promptinputs import JOURNAL_LINES, PromptInputs
from looop.decide.promptparts import Body, Gap, Item, Part
from looop.decide.promptreadings import ages_lines, reading_items

__all__ = ["Seen", "Shown", "journal_window", "readings_sections"]

SNAPSHOT_CAP = 16000  # one reading's text, in characters

SIGNALS_TITLE = "SIGNALS (what wakes the loop, per reading; latest change last)"
SIGNALS_SAYS = "The signal of each reading above (a reading may have only a signal):\n"
MOVING_TITLE = "MOVING DETAIL (detail fields that change, per reading; latest change last)"
MOVING_SAYS = (
    "The detail fields of the readings above that changed since looop began showing them\n"
    "(counters, timestamps), kept apart so the readings above stay the same from beat to beat:\n"
)


def one_line(s: str) -> str:
    return BREAKS.sub(" ", s).strip()


@dataclass
class Seen:
    """What this prompt shows, gathered section by section into the next prompt's record."""

    shown: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    moving: dict[str, frozenset[str]] = field(default_factory=dict)
    journal: str = ""

    def record(self) -> Record:
        return Record(tuple(self.shown), self.fields, self.moving, self.journal)


def _body(label: str, text: str, notes: dict[str, str]) -> Body:
    body = Body(label, text)
    if len(text) > SNAPSHOT_CAP:
        body.keep = SNAPSHOT_CAP
        notes[label] = f"{label} cut at {SNAPSHOT_CAP} chars"
    return body


def readings_sections(
    inputs: PromptInputs, notes: dict[str, str], seen: Seen
) -> tuple[list[Part], list[Part]]:
    """(SENSOR READINGS with their settled fields, then SIGNALS, AGES and MOVING DETAIL):
    the first early in the prompt, the second after the asks."""
    settled: list[tuple[str, str, str]] = []
    signals: list[tuple[str, str, str]] = []
    moving: list[tuple[str, str, str]] = []
    for file_name, raw in inputs.readings:
        for label, text in reading_items(file_name, raw):
            key = f"reading:{label}"
            got = split(key, text, inputs.record)
            if got.digests:
                seen.fields[key] = got.digests
            if got.moved:
                seen.moving[key] = got.moved
            if got.settled is not None:
                settled.append((key, got.settled, label))
            if got.signal is not None:
                signals.append((f"signal:{label}", got.signal, label))
            if got.moving is not None:
                moving.append((f"moving:{label}", got.moving, label))
    head: list[Part] = ["\n=== SENSOR READINGS ===\n"]
    head += _items("reading", settled, inputs.record.shown, notes, seen)
    if not inputs.readings:
        head.append("(no readings)\n")
    tail: list[Part] = []
    if signals:
        tail += [f"\n=== {SIGNALS_TITLE} ===\n", SIGNALS_SAYS]
        tail += _items("signal", signals, inputs.record.shown, notes, seen)
    tail += _ages(inputs, seen)
    if moving:
        tail += [f"\n=== {MOVING_TITLE} ===\n", MOVING_SAYS]
        tail += _items("moving", moving, inputs.record.shown, notes, seen)
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


def _ages(inputs: PromptInputs, seen: Seen) -> list[Part]:
    """The ages sys-sessions and sys-goals carry, coarsely, as of this beat: listed apart from
    SENSOR READINGS; the lines that did not move keep their order."""
    lines = [(f"age:{key}", one_line(line), "") for key, line in ages_lines(inputs.readings)]
    if not lines:
        return []
    ordered = by_change(lines, inputs.record.shown)
    seen.shown += [(k, digest(t)) for k, t, _ in ordered]
    return [
        "\n=== AGES (coarse, as of this beat) ===\n",
        "Ages from sys-sessions (workers) and sys-goals, kept out of SENSOR READINGS because\n"
        "they grow every beat:\n",
        *(Item("age", [Body("AGES", t)]) for _, t, _ in ordered),
        Gap("age"),
    ]


def journal_window(lines: tuple[str, ...], record: Record, seen: Seen) -> tuple[str, ...]:
    """The journal lines to show out of its last ones: from the first line the last prompt
    showed, while at least JOURNAL_LINES follow it and it is still among them; otherwise the
    last JOURNAL_LINES. So consecutive decides differ by the lines added, not by all of them."""
    start = max(0, len(lines) - JOURNAL_LINES)
    if record.journal:
        for i in range(start, -1, -1):
            if digest(lines[i]) == record.journal:
                start = i
                break
    shown = lines[start:]
    seen.journal = digest(shown[0]) if shown else ""
    return shown
