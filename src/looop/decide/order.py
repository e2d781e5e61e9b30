"""The order of a prompt's items by how recently each changed, oldest change first.

A provider bills a prompt's cached prefix at about a tenth, and the cache holds only up to the
first byte that differs from the previous prompt. So within a section the items that did not
change since the last prompt keep the order they had there, and the ones that changed (or are
new) follow them: a decide woken by one sensor repeats everything before that sensor's old
place, and an item that changes every beat (a timestamp in a detail) settles at the end.

What the last prompt showed is one small file (`ORDER_FILE` in the data dir): GOALS and SENSOR
READINGS as drawn (each item's key, text and label in the order shown: shown again as drawn,
their news told late, promptshown.py), each reading's fields with a digest of their values
and which of them have moved (promptinputs.py), and the first and last line of RECENT JOURNAL.
Also each field's recent changes (one digit a prompt: which fields move nearly every beat) and
READINGS THAT MOVE as drawn (promptshown.py: shown again as it was until it is redrawn).
A missing or unreadable file is an empty record: the items then come in their given (name)
order, as they did before any prompt."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from looop.home import jsonio, store

ORDER_FILE = ".prompt-order.json"  # in the data dir: what the last decide's prompt showed

T = TypeVar("T")
Drawn = tuple[tuple[str, str, str], ...]  # (item key, text, label), in the order shown


@dataclass(frozen=True)
class Record:
    """What one prompt showed, for the next to keep its order (see the module's words)."""

    shown: Drawn = ()  # GOALS and SENSOR READINGS as drawn
    fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # item -> field -> digest
    moving: Mapping[str, frozenset[str]] = field(default_factory=dict)  # item -> fields that moved
    journal: str = ""  # digest of the first line RECENT JOURNAL showed ("" none)
    journal_end: str = ""  # and of its last line
    history: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # field: "0110" changes
    base: Drawn = ()  # READINGS THAT MOVE as drawn (with the goals changed since `shown`)
    log: Drawn = ()  # SINCE THEN: the readings that moved since `base`
    told: Drawn = ()  # SINCE THEN: the goals and settled readings changed since, not in `base`
    at: float = 0.0  # when it was shown (0: unknown)
    base_age: int = 0  # prompts shown since


def digest(text: str) -> str:
    return hashlib.sha256(store.encode(text)).hexdigest()[:16]


def by_change(items: Sequence[tuple[str, str, T]], shown: Drawn) -> list[tuple[str, str, T]]:
    """`items` as (key, text, payload), given in name order: the unchanged ones first in the
    order the last prompt showed them, then the changed or new ones in the given order."""
    place = {key: (i, text) for i, (key, text, _) in enumerate(shown)}
    same: list[tuple[int, tuple[str, str, T]]] = []
    moved: list[tuple[str, str, T]] = []
    for item in items:
        was = place.get(item[0])
        if was is not None and was[1] == item[1]:
            same.append((was[0], item))
        else:
            moved.append(item)
    return [item for _, item in sorted(same, key=lambda p: p[0])] + moved


def _rows(raw: Any, n: int) -> tuple[Any, ...]:
    """The lists of `n` strings in `raw`, as tuples (a shown pair, a drawn entry)."""
    return tuple(
        tuple(p)
        for p in _list(raw)
        if isinstance(p, list) and len(p) == n and all(isinstance(s, str) for s in p)
    )


def _strings(raw: Any) -> dict[str, str]:
    return {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}


def _number(raw: Any) -> float:
    ok = isinstance(raw, int | float) and not isinstance(raw, bool) and abs(raw) < 1e15
    return float(raw) if ok else 0.0  # NaN fails the comparison too


def _record(raw: Any) -> Record:
    if not isinstance(raw, dict):
        return Record()
    fields, moving = raw.get("fields"), raw.get("moving")
    journal, journal_end = raw.get("journal"), raw.get("journal_end")
    return Record(
        shown=_rows(raw.get("shown"), 3),
        fields={k: _strings(v) for k, v in _strings_of(fields).items()},
        moving={
            k: frozenset(f for f in v if isinstance(f, str))
            for k, v in (moving.items() if isinstance(moving, dict) else ())
            if isinstance(v, list)
        },
        journal=journal if isinstance(journal, str) else "",
        journal_end=journal_end if isinstance(journal_end, str) else "",
        history={k: _strings(v) for k, v in _strings_of(raw.get("history")).items()},
        base=_rows(raw.get("base"), 3),
        log=_rows(raw.get("log"), 3),
        told=_rows(raw.get("told"), 3),
        at=_number(raw.get("at")),
        base_age=int(_number(raw.get("base_age"))),
    )


def _list(raw: Any) -> list[Any]:
    return raw if isinstance(raw, list) else []


def _strings_of(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def read_record(data: Path) -> Record:
    """The last prompt's record; empty when there is none or it cannot be read (the cache is
    a saving, never a reason to fail a beat)."""
    try:
        text = store.read_text(data / ORDER_FILE)
        return _record(jsonio.loads(text)) if text is not None else Record()
    except (OSError, ValueError):
        return Record()


def write_shown(data: Path, record: Record) -> None:
    """Record what this prompt showed, for the next one to keep its order."""
    moving = {k: sorted(v) for k, v in record.moving.items() if v}
    raw = {**dataclasses.asdict(record), "moving": moving}
    store.atomic_write(data / ORDER_FILE, jsonio.dumps(raw, sort_keys=True) + "\n")
